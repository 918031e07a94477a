"""Frechet distance between Gaussians fitted to feature vectors (FID), with streaming moments.

Precision design. Features arrive as float32 (a jitted feature network's output). For each batch
a jitted function, traced under a scoped ``jax.enable_x64(True)`` (the rest of the program stays
in 32-bit mode; nothing global is switched), casts them to float64 on the device and returns the
batch's sum and sum of outer products ``X^T X``. A product of two float32 numbers is exact in
float64 (24 + 24 significant bits < 53), so the only rounding is float64 summation. The sums
are added into a ``GaussianStats`` of host NumPy float64 arrays: they are plain sums, so batches
of any size, devices and hosts combine by addition in any order, and the result matches a
one-shot float64 computation to ~1e-15 relative. Keeping sums instead of running means costs
the cancellation in ``sum_xx - n mu mu^T``; in float64 that loses ~log10((|mu|/sigma)^2) of the
~16 digits, harmless for CNN features (|mu|/sigma ~ 1). When the batch is sharded over a mesh's
data axis the device work (O(B d^2)) is split across devices and XLA all-reduces the (d, d)
result. float64 is fast on CPUs and GPUs; TPUs emulate it (slow but exact).

The distance ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2`` is computed in
float64 by two symmetric eigendecompositions: S1^1/2 = V sqrt(max(L, 0)) V^T, then the
eigenvalues of the symmetric PSD matrix S1^1/2 S2 S1^1/2 (symmetrised, negative round-off
clipped to 0), whose square roots sum to the trace term. This equals tr sqrtm(S1 S2) (AB and BA
share their non-zero eigenvalues) but, unlike ``scipy.linalg.sqrtm`` on the non-symmetric S1 S2,
needs no ``eps * I`` offset for singular covariances (fewer samples than dimensions) and never
returns complex values.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class GaussianStats(NamedTuple):
  """Running float64 sums over feature rows; add two of them with ``merge_stats``."""
  count: int
  sum: np.ndarray    # (d,) float64
  outer: np.ndarray  # (d, d) float64, sum of x x^T


def init_stats(dim: int) -> GaussianStats:
  return GaussianStats(0, np.zeros(dim, np.float64), np.zeros((dim, dim), np.float64))


@jax.jit
def _batch_sums(x: jax.Array):
  x = x.astype(jnp.float64)
  return x.sum(axis=0), jnp.matmul(x.T, x, precision=jax.lax.Precision.HIGHEST)


def batch_sums(features, *, mesh: Mesh | None = None,
               data_axis: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(sum x, sum x x^T) of a (B, d) batch in float64, computed on the device(s)."""
  with jax.enable_x64(True):
    if mesh is not None:
      extra = -features.shape[0] % mesh.shape[data_axis]
      if extra:  # zero rows add nothing to either sum: pad to a multiple of the shard count
        features = jnp.pad(jnp.asarray(features), ((0, extra), (0, 0)))
      features = jax.device_put(features, NamedSharding(mesh, P(data_axis)))
    s, o = _batch_sums(features)
    return np.asarray(jax.device_get(s)), np.asarray(jax.device_get(o))


def update_stats(stats: GaussianStats, features, *, mesh: Mesh | None = None,
                 data_axis: str | None = None) -> GaussianStats:
  """``stats`` plus one (B, d) batch of feature rows (a new value; ``stats`` is not changed)."""
  if features.ndim != 2 or features.shape[1] != stats.sum.shape[0]:
    raise ValueError(f"features of shape {features.shape} do not match stats of dimension "
                     f"{stats.sum.shape[0]}.")
  s, o = batch_sums(features, mesh=mesh, data_axis=data_axis)
  return GaussianStats(stats.count + features.shape[0], stats.sum + s, stats.outer + o)


def merge_stats(a: GaussianStats, b: GaussianStats) -> GaussianStats:
  return GaussianStats(a.count + b.count, a.sum + b.sum, a.outer + b.outer)


def stats_of(features, *, batch_size: int = 4096, mesh: Mesh | None = None,
             data_axis: str | None = None) -> GaussianStats:
  """Sums over all rows of ``features``, ``batch_size`` rows at a time."""
  stats = init_stats(features.shape[1])
  for start in range(0, features.shape[0], batch_size):
    stats = update_stats(stats, features[start:start + batch_size], mesh=mesh, data_axis=data_axis)
  return stats


def mean_and_cov(stats: GaussianStats) -> tuple[np.ndarray, np.ndarray]:
  """Sample mean and unbiased covariance (``np.cov``'s ddof=1), float64."""
  n = stats.count
  if n < 2:
    raise ValueError(f"a covariance needs at least 2 feature rows, got {n}.")
  mu = stats.sum / n
  cov = (stats.outer - n * np.outer(mu, mu)) / (n - 1)
  return mu, (cov + cov.T) / 2


@jax.jit
def _frechet(mu1, s1, mu2, s2):
  def sqrt_psd(s):
    w, v = jnp.linalg.eigh((s + s.T) / 2)
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T
  r1 = sqrt_psd(s1)
  m = r1 @ s2 @ r1
  w = jnp.linalg.eigvalsh((m + m.T) / 2)
  diff = mu1 - mu2
  return diff @ diff + jnp.trace(s1) + jnp.trace(s2) - 2.0 * jnp.sum(jnp.sqrt(jnp.maximum(w, 0.0)))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Frechet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2), float64."""
  with jax.enable_x64(True):
    args = [np.asarray(a, np.float64) for a in (mu1, sigma1, mu2, sigma2)]
    return float(_frechet(*args))


def fid_from_stats(a: GaussianStats, b: GaussianStats) -> float:
  return frechet_distance(*mean_and_cov(a), *mean_and_cov(b))


def fid(real, fake, *, batch_size: int = 4096, mesh: Mesh | None = None,
        data_axis: str | None = None) -> float:
  """FID between two sets of feature rows (held whole; stream with ``update_stats`` otherwise)."""
  kw = dict(batch_size=batch_size, mesh=mesh, data_axis=data_axis)
  return fid_from_stats(stats_of(real, **kw), stats_of(fake, **kw))
