"""Annealed importance sampling (AIS) for the partition function of an RBM.

Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks", ICML 2008. The
chain anneals from a base-rate model A (no weights, visible biases ``base_vbias``: the log-odds of
the training data's pixel means for Bernoulli units, their means for Gaussian ones; hidden biases 0)
to the RBM B through the intermediate unnormalised marginals

    log p*_b(v) = (1 - b) log p*_A(v) + b [-vis_B(v)] + sum_j softplus(b * (hbias + W^T v / s^2))

(``-vis_B(v)`` = vbias.v for Bernoulli units, -|v - vbias|^2 / 2s^2 for Gaussian ones), which at
b = 0 is A with H extra free hidden units (log Z_0 = H log 2 + log Z_A) and at b = 1 is the RBM's
marginal. Each run starts from an exact sample of A, and at every inverse temperature b_k adds
log p*_{b_k}(v) - log p*_{b_{k-1}}(v) to its log-weight before one block-Gibbs sweep that leaves
p_{b_k} invariant. The runs are a batch: one ``lax.scan`` over temperatures, jit-compiled.

The estimate is log Z_B = log Z_0 + log mean_r w_r; as in the paper (and its code), it is reported
with the band log(Z_hat -/+ 3 sigma_hat), where sigma_hat = std_r(w_r) / sqrt(runs) is the standard
deviation of the estimate Z_hat. AIS is unbiased for Z, so its log tends to *underestimate* log Z
(and hence to overestimate test log-likelihoods) when the runs are too few or too short.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.models.rbm import RBM

SCHEDULES = ("linear", "geometric", "piecewise")


def betas(kind: str, num: int, *, beta_min: float = 1e-4) -> np.ndarray:
  """``num`` inverse temperatures from 0 to 1 inclusive (float32).

  linear: evenly spaced. geometric: 0, then geometrically spaced from ``beta_min`` to 1 (equal
  ratios). piecewise: the schedule of Salakhutdinov & Murray (2008) scaled to ``num``: evenly
  spaced on [0, 0.5], [0.5, 0.9] and [0.9, 1] with 500, 4,000 and 10,000 of every 14,500 points.
  """
  if num < 2:
    raise ValueError(f"AIS needs at least 2 inverse temperatures (0 and 1), got {num}.")
  if kind == "linear":
    b = np.linspace(0.0, 1.0, num)
  elif kind == "geometric":
    b = np.concatenate([[0.0], np.geomspace(beta_min, 1.0, num - 1)])
  elif kind == "piecewise":
    n1 = max(1, round(num * 500 / 14500))
    n2 = max(1, round(num * 4000 / 14500))
    n3 = num - n1 - n2
    if n3 < 2:
      raise ValueError(f"the piecewise schedule needs more than {num} temperatures.")
    b = np.concatenate([np.linspace(0.0, 0.5, n1, endpoint=False),
                        np.linspace(0.5, 0.9, n2, endpoint=False), np.linspace(0.9, 1.0, n3)])
  else:
    raise ValueError(f"unknown AIS schedule {kind!r}; choose one of {', '.join(SCHEDULES)}.")
  b[-1] = 1.0
  return b.astype(np.float32)


def base_log_partition(rbm: RBM, base_vbias: jax.Array) -> jax.Array:
  """log Z_0 of the base-rate model with the RBM's H (free) hidden units."""
  hidden = rbm.num_hidden * math.log(2.0)
  if rbm.gaussian:
    return jnp.float32(hidden + 0.5 * rbm.num_visible * math.log(2 * math.pi * rbm.var))
  return hidden + jnp.sum(jax.nn.softplus(base_vbias))


def _softplus_diff(p_new: jax.Array, x_old: jax.Array, delta: jax.Array) -> jax.Array:
  """softplus(x_old + delta) - softplus(x_old), accurate when delta is small (the usual case):
  = -log1p(sigmoid(x_old + delta) * expm1(-delta)); ``p_new`` = sigmoid(x_old + delta)."""
  accurate = -jnp.log1p(p_new * jnp.expm1(-delta))
  direct = jax.nn.softplus(x_old + delta) - jax.nn.softplus(x_old)
  return jnp.where(jnp.abs(delta) < 10.0, accurate, direct)


def log_weights(key: jax.Array, params: dict, betas: jax.Array, base_vbias: jax.Array, *,
                rbm: RBM, num_runs: int, chunk: int = 100) -> jax.Array:
  """(num_runs,) AIS log-weights log w_r, so that log Z ~= log Z_0 + log mean_r w_r.

  ``betas`` is a traced (K,) array from 0 to 1, so one compilation serves every schedule of the
  same length. The per-step increments are summed ``chunk`` at a time before being added to the
  running log-weight, which keeps float32 rounding small over ~10^4 temperatures.
  """
  W, b_B, c = params["W"], params["vbias"], params["hbias"]
  b_A = base_vbias
  k0, key = jax.random.split(key)
  if rbm.gaussian:
    v = b_A + rbm.sigma * jax.random.normal(k0, (num_runs, rbm.num_visible), jnp.float32)
  else:
    v = jax.random.bernoulli(k0, jax.nn.sigmoid(b_A), (num_runs, rbm.num_visible)).astype(jnp.float32)

  def visible_term_diff(v):
    """[-vis_B(v)] - log p*_A(v): the visible part of log p*_b(v) is its b-weighted blend."""
    if rbm.gaussian:
      return (jnp.sum((v - b_A) ** 2, -1) - jnp.sum((v - b_B) ** 2, -1)) / (2 * rbm.var)
    return v @ (b_B - b_A)

  def step(v, xs):
    b_old, b_new, t = xs
    a = c + (v @ W) / rbm.var                                   # (R, H) hidden inputs at b = 1
    p = jax.nn.sigmoid(b_new * a)
    inc = (b_new - b_old) * visible_term_diff(v) + jnp.sum(
        _softplus_diff(p, b_old * a, (b_new - b_old) * a), -1)
    kh, kv = jax.random.split(jax.random.fold_in(key, t))
    h = jax.random.bernoulli(kh, p).astype(v.dtype)
    mean = (1 - b_new) * b_A + b_new * (b_B + h @ W.T)
    if rbm.gaussian:
      v = mean + rbm.sigma * jax.random.normal(kv, v.shape, v.dtype)
    else:
      v = jax.random.bernoulli(kv, jax.nn.sigmoid(mean)).astype(v.dtype)
    return v, inc

  num_steps = betas.shape[0] - 1
  num_chunks = -(-num_steps // chunk)
  # Pad with steps at b = 1 (zero increments, a Gibbs sweep that leaves the RBM invariant).
  padded = jnp.concatenate([betas, jnp.ones((num_chunks * chunk - num_steps,), betas.dtype)])
  xs = (padded[:-1].reshape(num_chunks, chunk), padded[1:].reshape(num_chunks, chunk),
        jnp.arange(num_chunks * chunk, dtype=jnp.int32).reshape(num_chunks, chunk))

  def chunk_step(carry, xs):
    v, log_w = carry
    v, incs = jax.lax.scan(step, v, xs)
    return (v, log_w + incs.sum(0)), None

  (_, log_w), _ = jax.lax.scan(chunk_step, (v, jnp.zeros((num_runs,), jnp.float32)), xs)
  return log_w


def estimate(log_w: jax.Array, log_z0: jax.Array) -> dict[str, jax.Array]:
  """log Z_hat and the band log(Z_hat -/+ 3 sigma_hat) from the log-weights of independent runs.

  sigma_hat = std(w, ddof=1) / sqrt(runs); ``log_z_lo`` is -inf when Z_hat - 3 sigma_hat <= 0.
  """
  m = log_w.shape[0]
  top = jnp.max(log_w)
  w = jnp.exp(log_w - top)
  log_z = log_z0 + top + jnp.log(jnp.mean(w))
  log_sd = log_z0 + top + jnp.log(jnp.std(w, ddof=1)) - 0.5 * math.log(m)
  log_3sd = math.log(3.0) + log_sd
  ratio = jnp.exp(log_3sd - log_z)
  log_z_lo = jnp.where(ratio < 1, log_z + jnp.log1p(-jnp.minimum(ratio, 1 - 1e-7)), -jnp.inf)
  return {"log_z": log_z, "log_z_lo": log_z_lo, "log_z_hi": jnp.logaddexp(log_z, log_3sd),
          "log_z_sd": log_sd}


@functools.partial(jax.jit, static_argnames=("rbm", "num_runs", "chunk"))
def log_partition(key: jax.Array, params: dict, betas: jax.Array, base_vbias: jax.Array, *,
                  rbm: RBM, num_runs: int, chunk: int = 100) -> dict[str, jax.Array]:
  """The AIS estimate of log Z with its 3-sigma band (see :func:`estimate`), and the log-weights."""
  log_w = log_weights(key, params, betas, base_vbias, rbm=rbm, num_runs=num_runs, chunk=chunk)
  return {**estimate(log_w, base_log_partition(rbm, base_vbias)), "log_w": log_w}
