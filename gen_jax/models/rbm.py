"""Restricted Boltzmann machines as pure functions of a parameter dict.

An RBM over visible units v (V of them) and binary hidden units h (H of them) has parameters
``{"W": (V, H), "vbias": (V,), "hbias": (H,)}`` and energy

    Bernoulli visible:  E(v, h) = -vbias.v - hbias.h - v.W.h                       v in {0, 1}^V
    Gaussian visible:   E(v, h) = |v - vbias|^2 / (2 s^2) - hbias.h - v.W.h / s^2   v in R^V

with ``s = sigma`` fixed (Cho et al. 2011 parametrisation, so that p(v | h) = N(vbias + W h, s^2)).
An RBM is not a feed-forward network, so it is not a Flax module: :class:`RBM` holds the static
choices (sizes, unit type) and its methods are pure functions of ``params`` and explicit PRNG keys,
safe to ``jax.jit`` with the RBM bound by ``functools.partial`` or closed over (it is hashable).

Everything works on flat visible vectors ``(batch, V)``; callers flatten images.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

VISIBLE_TYPES = ("bernoulli", "gaussian")


@dataclasses.dataclass(frozen=True)
class RBM:
  """The static description of an RBM: sizes and visible-unit type."""
  num_visible: int
  num_hidden: int
  visible: str = "bernoulli"
  sigma: float = 1.0          # standard deviation of Gaussian visible units (unused for Bernoulli)

  def __post_init__(self):
    if self.visible not in VISIBLE_TYPES:
      raise ValueError(f"unknown visible unit type {self.visible!r} (config.model.visible); "
                       f"choose one of {', '.join(VISIBLE_TYPES)}.")
    if self.sigma <= 0:
      raise ValueError(f"sigma={self.sigma} must be positive.")

  @property
  def gaussian(self) -> bool:
    return self.visible == "gaussian"

  @property
  def var(self) -> float:
    """s^2 for Gaussian visible units, 1 for Bernoulli (so one formula serves both)."""
    return self.sigma ** 2 if self.gaussian else 1.0

  # ---- parameters ----------------------------------------------------------------------------

  def init(self, key: jax.Array, *, scale: float = 0.01, data_mean: jax.Array | None = None) -> dict:
    """W ~ N(0, scale^2); hidden biases 0; visible biases 0, or from the data mean if given
    (log-odds for Bernoulli units, as in Hinton's practical guide; the mean for Gaussian ones)."""
    vbias = jnp.zeros((self.num_visible,), jnp.float32)
    if data_mean is not None:
      vbias = data_mean if self.gaussian else base_rate_logits(data_mean)
    return {"W": scale * jax.random.normal(key, (self.num_visible, self.num_hidden), jnp.float32),
            "vbias": jnp.asarray(vbias, jnp.float32),
            "hbias": jnp.zeros((self.num_hidden,), jnp.float32)}

  # ---- conditionals and sampling -------------------------------------------------------------

  def hidden_logits(self, params: dict, v: jax.Array) -> jax.Array:
    """log-odds of p(h_j = 1 | v): hbias + W^T v / s^2."""
    return params["hbias"] + (v @ params["W"]) / self.var

  def hidden_probs(self, params: dict, v: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(self.hidden_logits(params, v))

  def visible_input(self, params: dict, h: jax.Array) -> jax.Array:
    """vbias + W h: the log-odds of p(v_i = 1 | h) (Bernoulli) or the mean of p(v | h) (Gaussian)."""
    return params["vbias"] + h @ params["W"].T

  def visible_mean(self, params: dict, h: jax.Array) -> jax.Array:
    a = self.visible_input(params, h)
    return a if self.gaussian else jax.nn.sigmoid(a)

  def sample_hidden(self, key: jax.Array, params: dict, v: jax.Array) -> jax.Array:
    return jax.random.bernoulli(key, self.hidden_probs(params, v)).astype(v.dtype)

  def sample_visible(self, key: jax.Array, params: dict, h: jax.Array) -> jax.Array:
    a = self.visible_input(params, h)
    if self.gaussian:
      return a + self.sigma * jax.random.normal(key, a.shape, a.dtype)
    return jax.random.bernoulli(key, jax.nn.sigmoid(a)).astype(a.dtype)

  def gibbs_step(self, key: jax.Array, params: dict, v: jax.Array) -> jax.Array:
    """One block-Gibbs sweep v -> h ~ p(h | v) -> v' ~ p(v | h)."""
    kh, kv = jax.random.split(key)
    return self.sample_visible(kv, params, self.sample_hidden(kh, params, v))

  def gibbs(self, key: jax.Array, params: dict, v: jax.Array, num_steps: int) -> jax.Array:
    """``num_steps`` block-Gibbs sweeps from ``v``; the step keys are ``fold_in(key, t)``."""
    return jax.lax.fori_loop(
        0, num_steps, lambda t, v: self.gibbs_step(jax.random.fold_in(key, t), params, v), v)

  def clamped_gibbs(self, key: jax.Array, params: dict, v: jax.Array, known: jax.Array,
                    num_steps: int) -> jax.Array:
    """Block-Gibbs sweeps with the ``known`` visible units (a boolean mask broadcastable to ``v``)
    clamped to their values in ``v``: samples the other units from p(v_unknown | v_known) -- the
    RBM's inpainting. Step keys are ``fold_in(key, t)``."""
    def sweep(t, x):
      return jnp.where(known, v, self.gibbs_step(jax.random.fold_in(key, t), params, x))
    return jax.lax.fori_loop(0, num_steps, sweep, v)

  # ---- energies ------------------------------------------------------------------------------

  def energy(self, params: dict, v: jax.Array, h: jax.Array) -> jax.Array:
    """E(v, h), one value per row."""
    inter = jnp.einsum("bi,ij,bj->b", v, params["W"], h) / self.var
    if self.gaussian:
      vis = jnp.sum((v - params["vbias"]) ** 2, -1) / (2 * self.var)
    else:
      vis = -v @ params["vbias"]
    return vis - h @ params["hbias"] - inter

  def free_energy(self, params: dict, v: jax.Array) -> jax.Array:
    """F(v) = -log sum_h exp(-E(v, h)), one value per row; p(v) = exp(-F(v)) / Z."""
    if self.gaussian:
      vis = jnp.sum((v - params["vbias"]) ** 2, -1) / (2 * self.var)
    else:
      vis = -v @ params["vbias"]
    return vis - jnp.sum(jax.nn.softplus(self.hidden_logits(params, v)), -1)

  def hidden_free_energy(self, params: dict, h: jax.Array) -> jax.Array:
    """-log sum_v exp(-E(v, h)) (an integral for Gaussian units), one value per row of ``h``."""
    a = self.visible_input(params, h)
    if self.gaussian:
      b = params["vbias"]
      log_int = (jnp.sum(a ** 2, -1) - jnp.sum(b ** 2)) / (2 * self.var) \
          + 0.5 * self.num_visible * math.log(2 * math.pi * self.var)
    else:
      log_int = jnp.sum(jax.nn.softplus(a), -1)
    return -(h @ params["hbias"]) - log_int

  # ---- learning signal -----------------------------------------------------------------------

  def sufficient_stats(self, params: dict, v: jax.Array) -> dict:
    """Batch means of -dF(v)/dtheta: <v p(h|v)^T> / s^2, <(v - vbias)> / s^2 (Gaussian) or <v>,
    and <p(h|v)>. The log-likelihood gradient is these stats under the data minus the model's."""
    ph = self.hidden_probs(params, v)
    n = v.shape[0]
    dv = (v - params["vbias"]) / self.var if self.gaussian else v
    return {"W": v.T @ ph / (n * self.var), "vbias": dv.mean(0), "hbias": ph.mean(0)}

  def nll_grads(self, params: dict, v_data: jax.Array, v_model: jax.Array) -> dict:
    """The gradient estimate of the mean negative log-likelihood: model stats - data stats.

    With ``v_model`` the end of k Gibbs sweeps from ``v_data`` this is CD-k; with persistent
    chains, PCD; with exact model samples, an unbiased estimate of the true gradient. It is the
    sign optax minimises, so it goes straight to ``TrainState.apply_gradients``.
    """
    pos = self.sufficient_stats(params, v_data)
    neg = self.sufficient_stats(params, v_model)
    return jax.tree.map(lambda p, n: n - p, pos, neg)

  # ---- training monitors ---------------------------------------------------------------------

  def reconstruction_error(self, params: dict, v: jax.Array) -> jax.Array:
    """Per-row squared error between v and the mean of p(v | h = p(h | v)) (mean field)."""
    return jnp.sum((v - self.visible_mean(params, self.hidden_probs(params, v))) ** 2, -1)

  def pseudo_nll(self, key: jax.Array, params: dict, v: jax.Array) -> jax.Array:
    """Stochastic pseudo-likelihood, per row: -V log p(v_i | v_-i) for one random unit i per row,
    an unbiased estimate of -sum_i log p(v_i | v_-i). Bernoulli visible units only."""
    if self.gaussian:
      raise ValueError("pseudo-likelihood is computed for Bernoulli visible units only.")
    i = jax.random.randint(key, (v.shape[0],), 0, self.num_visible)
    flip = jax.nn.one_hot(i, self.num_visible, dtype=v.dtype)
    v_flip = v + flip * (1 - 2 * v)
    # log p(v_i | v_-i) = log sigmoid(F(v_flip) - F(v)).
    return -self.num_visible * jax.nn.log_sigmoid(
        self.free_energy(params, v_flip) - self.free_energy(params, v))

  def exact_pseudo_nll(self, params: dict, v: jax.Array) -> jax.Array:
    """-sum_i log p(v_i | v_-i), per row, flipping every unit in turn ((B, V, H) memory)."""
    a = self.hidden_logits(params, v)                                       # (B, H)
    delta = 1 - 2 * v                                                       # (B, V)
    a_flip = a[:, None, :] + delta[:, :, None] * params["W"][None]          # (B, V, H)
    dF = (-delta * params["vbias"]
          - jnp.sum(jax.nn.softplus(a_flip), -1) + jnp.sum(jax.nn.softplus(a), -1)[:, None])
    return -jnp.sum(jax.nn.log_sigmoid(dF), -1)


def base_rate_logits(mean: jax.Array, eps: float = 1e-3) -> jax.Array:
  """log-odds of per-pixel frequencies, clipped to [eps, 1 - eps] so constant pixels stay finite."""
  p = jnp.clip(mean, eps, 1 - eps)
  return jnp.log(p) - jnp.log1p(-p)


# ---- exact computations by enumeration (tiny RBMs: tests and references) -------------------------


def all_binary_states(n: int) -> np.ndarray:
  """(2^n, n) float32, every binary vector of length n (row r is r in binary, MSB first)."""
  return np.asarray(list(itertools.product((0.0, 1.0), repeat=n)), np.float32)


def exact_log_partition(rbm: RBM, params: dict, max_units: int = 24) -> jax.Array:
  """log Z by summing over every state of the smaller binary layer (the hidden layer for Gaussian
  visible units)."""
  if not rbm.gaussian and rbm.num_visible <= rbm.num_hidden:
    if rbm.num_visible > max_units:
      raise ValueError(f"exact log Z needs 2^{rbm.num_visible} terms; over max_units={max_units}.")
    return jax.nn.logsumexp(-rbm.free_energy(params, jnp.asarray(all_binary_states(rbm.num_visible))))
  if rbm.num_hidden > max_units:
    raise ValueError(f"exact log Z needs 2^{rbm.num_hidden} terms; over max_units={max_units}.")
  return jax.nn.logsumexp(-rbm.hidden_free_energy(params, jnp.asarray(all_binary_states(rbm.num_hidden))))


def exact_log_prob(rbm: RBM, params: dict, v: jax.Array) -> jax.Array:
  """log p(v) per row (a density for Gaussian visible units), by enumeration of log Z."""
  return -rbm.free_energy(params, v) - exact_log_partition(rbm, params)


def exact_visible_distribution(rbm: RBM, params: dict) -> jax.Array:
  """p(v) for every row of :func:`all_binary_states` (Bernoulli visible units)."""
  states = jnp.asarray(all_binary_states(rbm.num_visible))
  return jax.nn.softmax(-rbm.free_energy(params, states))
