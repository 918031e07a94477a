"""Adversarial losses: pure array functions of the discriminator's raw outputs, one value per example.

``real`` and ``fake`` are the discriminator's raw outputs (logits, or critic values for the
Wasserstein and hinge losses) on real and generated examples, each (batch,); the caller takes the
mean. With D(x) = sigmoid(logit):

================  ======================================  ================================
loss              discriminator minimises                 generator minimises
================  ======================================  ================================
``minimax``       -log D(x) - log(1 - D(G(z)))             log(1 - D(G(z)))  (saturates)
``non_saturating``  same                                   -log D(G(z))
``wasserstein``   f(G(z)) - f(x)                           -f(G(z))
``wgan_gp``       same, plus :func:`gradient_penalty`      -f(G(z))
``hinge``         relu(1 - f(x)) + relu(1 + f(G(z)))       -f(G(z))
================  ======================================  ================================

References: Goodfellow et al. 2014 (minimax and non-saturating), Arjovsky et al. 2017 (Wasserstein
with weight clipping), Gulrajani et al. 2017 (gradient penalty), Lim & Ye 2017 / Miyato et al. 2018
(hinge).

A zero-centred penalty on real data, R1 (Mescheder et al. 2018; :func:`r1_penalty`), works with
any of the losses. Two tricks on top: one-sided label smoothing (Salimans et al. 2016;
``label_smoothing`` > 0 in :func:`disc_loss`, logit losses only) and top-k generator updates
(Sinha et al. 2020; :func:`top_k_mean` with the fraction of :func:`top_k_fraction`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from gen_jax.losses.densities import softplus

LOSSES = ("minimax", "non_saturating", "wasserstein", "wgan_gp", "hinge")
# Losses whose discriminator is a critic (unbounded real output, not a logit).
CRITIC_LOSSES = ("wasserstein", "wgan_gp", "hinge")


def check(kind: str) -> None:
  if kind not in LOSSES:
    raise ValueError(f"unknown GAN loss {kind!r} (config.model.loss); choose one of "
                     f"{', '.join(LOSSES)}.")


def check_label_smoothing(kind: str, label_smoothing: float) -> None:
  if label_smoothing and (kind in CRITIC_LOSSES or not 0.0 < label_smoothing < 1.0):
    raise ValueError(f"model.label_smoothing={label_smoothing} needs a logit loss (minimax, "
                     f"non_saturating) and a value in [0, 1); loss is {kind!r}: set "
                     "model.label_smoothing=0.")


def disc_loss(kind: str, real: jax.Array, fake: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """The discriminator's loss per example pair (real_i, fake_i), without any gradient penalty.

  ``label_smoothing`` > 0 (logit losses only): one-sided label smoothing, the cross-entropy of D(x)
  against the target 1 - ``label_smoothing`` instead of 1; the fakes' target stays 0.
  """
  check(kind)
  check_label_smoothing(kind, label_smoothing)
  if kind in ("minimax", "non_saturating"):
    # -log sigmoid(r) = softplus(-r);  -log(1 - sigmoid(f)) = softplus(f).
    return ((1.0 - label_smoothing) * softplus(-real) + label_smoothing * softplus(real)
            + softplus(fake))
  if kind in ("wasserstein", "wgan_gp"):
    return fake - real
  return jax.nn.relu(1.0 - real) + jax.nn.relu(1.0 + fake)   # hinge


def gen_loss(kind: str, fake: jax.Array) -> jax.Array:
  """The generator's loss per generated example."""
  check(kind)
  if kind == "minimax":
    return -softplus(fake)            # log(1 - sigmoid(f))
  if kind == "non_saturating":
    return softplus(-fake)            # -log sigmoid(f)
  return -fake                        # Wasserstein, WGAN-GP, hinge


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
  """eps_i x_i + (1 - eps_i) G(z_i) with ONE mixing weight per example: ``eps`` is (batch,).

  The points lie on straight lines between pairs of real and fake examples, where Gulrajani et
  al.'s optimal critic has gradient norm 1. (A weight per pixel would put them elsewhere: a
  classic silent bug.)
  """
  if eps.shape != real.shape[:1]:
    raise ValueError(f"interpolate: eps has shape {eps.shape}; it needs one weight per example, "
                     f"shape {real.shape[:1]}.")
  eps = eps.reshape(eps.shape + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     eps: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(||grad_x critic(x_hat_i)||_2 - 1)^2 per example at the interpolates x_hat of
  :func:`interpolate`, and the gradient norms themselves.

  ``critic`` maps (batch, ...) to (batch,) and must treat examples independently (no batch norm),
  so that the gradient of the sum of its outputs holds each example's own gradient. The norm is
  taken over all of an example's pixels and channels. ``real`` and ``fake`` should carry no
  gradient to the generator (``stop_gradient`` the fakes).
  """
  x_hat = interpolate(real, fake, eps)
  grads = jax.grad(lambda x: critic(x).sum())(x_hat)
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + 1e-12)
  return (norms - 1.0) ** 2, norms


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """||grad_x critic(x_i)||_2^2 per real example: Mescheder et al.'s R1, which the discriminator
  adds as gamma / 2 times its mean. Zero-centred: it pulls D's gradient on the data to 0, where
  an equilibrium with p_g = p_data has it. ``critic`` must treat examples independently (no batch
  norm), as for :func:`gradient_penalty`."""
  grads = jax.grad(lambda x: critic(x).sum())(real)
  return jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


def top_k_fraction(step: jax.Array, nu: float, gamma: float, every: int) -> jax.Array:
  """max(nu, gamma ** (step / every)): the fraction of a batch's fakes the generator learns from
  after ``step`` generator steps (Sinha et al. 2020 anneal it by ``gamma`` = 0.99 per epoch down to
  ``nu`` = 0.5-0.75). ``nu`` = 1 keeps every fake."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.maximum(nu, jnp.power(gamma, step / every))


def top_k_mean(values: jax.Array, scores: jax.Array, fraction: jax.Array) -> jax.Array:
  """Mean of ``values`` over the ceil(fraction * batch) examples with the highest ``scores``.

  Top-k training (Sinha et al. 2020): the generator's loss over the fakes the discriminator finds
  most realistic only; the others get no gradient. ``fraction`` may be traced (annealed during
  training): the k examples are selected by rank, not with a static ``lax.top_k``.
  """
  n = values.shape[0]
  k = jnp.clip(jnp.ceil(fraction * n), 1, n)
  rank = jnp.argsort(jnp.argsort(-scores))          # 0 = highest score
  mask = (rank < k).astype(values.dtype)
  return jnp.sum(values * jax.lax.stop_gradient(mask)) / k


def info_ce(q_logits: jax.Array, codes: jax.Array) -> jax.Array:
  """Mean cross-entropy of Q's q(c | G(z, c)) against the codes the fakes were drawn with: the
  InfoGAN term (log cat_dim minus it is a lower bound on the mutual information I(c; G(z, c)))."""
  return optax.softmax_cross_entropy_with_integer_labels(q_logits, codes).mean()


def clip_weights(params, clip: float):
  """Every weight clipped to [-clip, clip] (WGAN: all of the critic's parameters, norms included)."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)
