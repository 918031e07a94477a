"""Image completion (inpainting): the unknown pixels of an image given its known ones.

Each family completes by its own method; the methods are here, as pure functions of the family's
networks (passed as callables), and each family's ``inpaint(state, batch, mask, key)`` binds one
(:class:`gen_jax.steps.Family`; ``Family.inpaint_method`` names it):

* :func:`metropolis_within_gibbs` (VAE; Mattei & Frellsen 2018): a Markov chain on (z, x_missing)
  whose stationary law is exactly p(z, x_missing | x_known); the z-move is an independent
  Metropolis-Hastings proposal from the encoder q(z | x), the x-move an exact draw from p(x | z).
* :func:`pseudo_gibbs` (VAE; Rezende et al. 2014): the same chain that always accepts -- it is
  exact only if q(z | x) is the true posterior.
* :func:`iterated_projection` (AE): reconstruct, keep the known pixels, repeat.
* :func:`latent_optimisation` (GAN, DCGAN, WGAN; BiGAN and VAE-GAN from the encoder's code; Yeh
  et al. 2017): the code whose image matches the known pixels (context loss) and that the
  discriminator accepts (prior loss).
* clamped Gibbs sampling (RBM, DBN): :meth:`gen_jax.models.rbm.RBM.clamped_gibbs`, bound in
  :mod:`gen_jax.steps.rbm` and :mod:`gen_jax.steps.dbn`.

Two estimators over any of them, and one reference:

* :func:`mean_of_chains`: the mean of several independent completions, a Monte-Carlo estimate of
  the posterior mean E[x_missing | x_known] (the completion of least expected squared error) where
  one completion is a draw from the model's conditional;
* :func:`nearest_neighbour`: the missing pixels of the training image closest on the known ones --
  the non-parametric reference every generative completion should beat.

Every method returns images whose known pixels are bit-identical to the input's (:func:`paste`).
:func:`missing_pixel_errors` gives the per-image MSE and PSNR over the missing pixels only (the
suite, :mod:`gen_jax.applications.suite`, adds the domain classifier's accuracy on the completed
images).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import optax

from gen_jax.applications import masks as masks_lib
from gen_jax.losses import densities


def paste(images: jax.Array, mask: jax.Array, filled: jax.Array) -> jax.Array:
  """The known pixels from ``images``, the others from ``filled``, clipped to [0, 1]."""
  return jnp.where(mask, images, jnp.clip(filled, 0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# VAE: posterior-guided chains.


def _log_joint(x: jax.Array, z: jax.Array, decode_logits: Callable,
               log_prior: Callable) -> jax.Array:
  """log p(x | z) + log p(z), per example."""
  return densities.bernoulli_log_prob(decode_logits(z), x) + log_prior(z)


def vae_chain(key: jax.Array, images: jax.Array, mask: jax.Array, *, encode: Callable,
              decode_logits: Callable, num_steps: int, metropolis: bool, sample_pixels: bool,
              log_prior: Callable = densities.standard_normal_log_prob,
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The chain of :func:`metropolis_within_gibbs` (``metropolis=True``) or :func:`pseudo_gibbs`.

  ``encode(x) -> (mean, logvar)`` of a Gaussian proposal q(z | x); ``decode_logits(z)`` ->
  Bernoulli logits of p(x | z); ``log_prior(z)`` -> log p(z) (N(0, I) unless given). Any Gaussian
  proposal keeps the Metropolis chain exact: a flow's base distribution, or a hierarchical
  posterior's Gaussian at its means, serve.
  The missing pixels start at the mean of the known ones (:func:`masks.known_mean_fill`). With
  ``sample_pixels`` the x-move draws binary pixels from p(x | z) (the exact chain); without, it
  sets them to the Bernoulli means (the usual choice for grey-level images).
  Returns (the last x, the last z, the acceptance rate of each chain).
  """
  x = masks_lib.known_mean_fill(images, mask)
  k0, key = jax.random.split(key)
  mean, logvar = encode(x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(k0, mean.shape, mean.dtype)

  def step(t, carry):
    x, z, accepted = carry
    k_z, k_u, k_x = jax.random.split(jax.random.fold_in(key, t), 3)
    mean, logvar = encode(x)
    z_new = mean + jnp.exp(0.5 * logvar) * jax.random.normal(k_z, mean.shape, mean.dtype)
    if metropolis:
      log_ratio = (_log_joint(x, z_new, decode_logits, log_prior)
                   - densities.gaussian_log_prob(z_new, mean, logvar)
                   - _log_joint(x, z, decode_logits, log_prior)
                   + densities.gaussian_log_prob(z, mean, logvar))
      accept = jnp.log(jax.random.uniform(k_u, log_ratio.shape)) < log_ratio
      z = jnp.where(accept[:, None], z_new, z)
      accepted = accepted + accept
    else:
      z, accepted = z_new, accepted + 1
    probs = jax.nn.sigmoid(decode_logits(z))
    new = jax.random.bernoulli(k_x, probs).astype(x.dtype) if sample_pixels else probs
    return jnp.where(mask, images, new), z, accepted

  accepted = jnp.zeros(images.shape[0], jnp.float32)
  x, z, accepted = jax.lax.fori_loop(0, num_steps, step, (x, z, accepted))
  return x, z, accepted / max(num_steps, 1)


def metropolis_within_gibbs(key: jax.Array, images: jax.Array, mask: jax.Array, *,
                            encode: Callable, decode_logits: Callable, num_steps: int,
                            log_prior: Callable = densities.standard_normal_log_prob) -> jax.Array:
  """Completed images: the chain of :func:`vae_chain` with the Metropolis-Hastings z-move and
  exact binary x-moves, then the Bernoulli means of p(x | z) at its last z on the missing pixels."""
  _, z, _ = vae_chain(key, images, mask, encode=encode, decode_logits=decode_logits,
                      num_steps=num_steps, metropolis=True, sample_pixels=True,
                      log_prior=log_prior)
  return paste(images, mask, jax.nn.sigmoid(decode_logits(z)))


def pseudo_gibbs(key: jax.Array, images: jax.Array, mask: jax.Array, *, encode: Callable,
                 decode_logits: Callable, num_steps: int,
                 log_prior: Optional[Callable] = None) -> jax.Array:
  """Completed images: z ~ q(z | x), missing pixels <- the means of p(x | z), ``num_steps`` times
  (``log_prior`` unused: the chain always accepts)."""
  del log_prior
  x, _, _ = vae_chain(key, images, mask, encode=encode, decode_logits=decode_logits,
                      num_steps=num_steps, metropolis=False, sample_pixels=False)
  return x


# ---------------------------------------------------------------------------------------------
# AE: iterated projection.


def iterated_projection(images: jax.Array, mask: jax.Array, *, reconstruct: Callable,
                        num_steps: int) -> jax.Array:
  """x <- paste(known pixels, reconstruct(x)), ``num_steps`` times from the known-mean fill: a
  fixed point is an image that the autoencoder maps onto itself on the missing pixels."""
  x0 = masks_lib.known_mean_fill(images, mask)
  return jax.lax.fori_loop(0, num_steps, lambda _, x: paste(images, mask, reconstruct(x)), x0)


# ---------------------------------------------------------------------------------------------
# GANs: latent optimisation.


def context_loss(generated: jax.Array, images: jax.Array, mask: jax.Array) -> jax.Array:
  """Per example, the L1 distance on the known pixels (Yeh et al.'s context loss, unweighted)."""
  diff = jnp.where(mask, jnp.abs(generated - images), 0.0)
  return diff.reshape(diff.shape[0], -1).sum(-1)


def latent_optimisation(z0: jax.Array, images: jax.Array, mask: jax.Array, *, generate: Callable,
                        num_steps: int, learning_rate: float, prior_weight: float = 0.0,
                        adversarial: Optional[Callable] = None,
                        z_weight: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """(completed images, the optimised codes): Adam on z from ``z0`` for ``num_steps`` steps on

      context_loss(generate(z), x, mask) + prior_weight * adversarial(generate(z), z)
                                         + z_weight * ||z||^2 / 2,

  summed over the batch (every example's z has its own gradient). ``generate(z)`` -> images in
  [0, 1]; ``adversarial(images, z)`` -> per-example generator loss under the discriminator (Yeh
  et al.'s prior loss; None: no such term); the last term is the Gaussian prior's -log p(z).
  ``z0`` of shape (restarts, batch, d): that many starts per image, all optimised together; each
  image keeps the code of the lowest final loss.
  """
  if prior_weight and adversarial is None:
    raise ValueError("latent optimisation: prior_weight > 0 needs the discriminator's loss "
                     "(adversarial=...).")
  restarts = z0.shape[0] if z0.ndim == 3 else 1
  z0 = z0.reshape(-1, z0.shape[-1])
  tiled = lambda a: jnp.tile(a, (restarts,) + (1,) * (a.ndim - 1))
  all_images, all_mask = tiled(images), tiled(mask)

  def per_example(z):
    x = generate(z)
    total = context_loss(x, all_images, all_mask) + 0.5 * z_weight * jnp.sum(z * z, axis=-1)
    if prior_weight:
      total = total + prior_weight * adversarial(x, z)
    return total

  tx = optax.adam(learning_rate)

  def step(_, carry):
    z, opt = carry
    grads = jax.grad(lambda z: jnp.sum(per_example(z)))(z)
    updates, opt = tx.update(grads, opt, z)
    return optax.apply_updates(z, updates), opt

  z, _ = jax.lax.fori_loop(0, num_steps, step, (z0, tx.init(z0)))
  if restarts > 1:
    best = jnp.argmin(per_example(z).reshape(restarts, -1), axis=0)
    z = jnp.take_along_axis(z.reshape(restarts, -1, z.shape[-1]), best[None, :, None], 0)[0]
  return paste(images, mask, generate(z)), z


# ---------------------------------------------------------------------------------------------
# Metrics.


def missing_pixel_errors(completed: jax.Array, images: jax.Array, mask: jax.Array
                         ) -> dict[str, jax.Array]:
  """Per example: ``mse`` over the missing pixels only and ``psnr`` = 10 log10(1 / mse) in dB
  (pixels in [0, 1]; an exact completion's PSNR is capped at 100 dB)."""
  missing = ~mask
  axes = tuple(range(1, images.ndim))
  count = jnp.maximum(jnp.sum(missing, axis=axes), 1)
  mse = jnp.sum(jnp.where(missing, (completed - images) ** 2, 0.0), axis=axes) / count
  return {"mse": mse, "psnr": 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10))}


# ---------------------------------------------------------------------------------------------
# Estimators over the methods, and the non-parametric reference.


def mean_of_chains(inpaint: Callable, num: int) -> Callable:
  """``inpaint(state, batch, mask, key)`` -> the mean of ``num`` completions with keys
  ``fold_in(key, i)`` (``num`` = 1: the completion itself). For a method that draws from the
  model's conditional this estimates the posterior mean of the missing pixels; it trades the
  look of a sample for a lower expected error and a completion nearer the likely classes."""
  if num < 1:
    raise ValueError(f"apps.num_chains={num}: the number of chains averaged must be >= 1.")
  if num == 1:
    return inpaint

  def averaged(state, batch, mask, key):
    def one(total, i):
      return total + inpaint(state, batch, mask, jax.random.fold_in(key, i)), None
    total, _ = jax.lax.scan(one, jnp.zeros_like(batch["image"]), jnp.arange(num))
    return paste(batch["image"], mask, total / num)
  return averaged


def nearest_neighbour(images: jax.Array, mask: jax.Array, train: jax.Array) -> jax.Array:
  """Each image's missing pixels from the row of ``train`` (N, ...) nearest to it in squared
  distance over its known pixels: ||m (x - t)||^2 = sum m x^2 - 2 (m x) . t + m . t^2, two matrix
  products against the training set."""
  b = images.shape[0]
  x = images.reshape(b, -1)
  m = mask.reshape(b, -1).astype(x.dtype)
  t = train.reshape(train.shape[0], -1).astype(x.dtype)
  dist = (jnp.sum(m * x * x, -1, keepdims=True) - 2.0 * (m * x) @ t.T + m @ (t * t).T)
  nearest = t[jnp.argmin(dist, axis=-1)].reshape(images.shape)
  return paste(images, mask, nearest)
