"""Kernel Inception Distance (Binkowski et al., 2018): unbiased MMD^2 with the cubic kernel.

k(x, y) = (x.y / d + 1)^3 with d the feature dimension. For one subset of m real rows X and m
fake rows Y,

  MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
            - 2 sum_{i, j} k(x_i, y_j) / m^2,

and KID is its mean (and std, ddof=0, as torch-fidelity and the paper's code report) over
``num_subsets`` subsets of ``subset_size`` rows drawn without replacement from each set, the
subsets fixed by ``seed`` (``kid_subsets`` returns them so others can reproduce a number).

Kernels are float32 (``Precision.HIGHEST`` matmuls). The three large sums are not formed
separately: each row's contribution to MMD^2 (its three kernel-row sums, already divided by the
normalisers, combined) is a small number when X and Y are alike, and only these are summed, which
keeps float32 within ~1e-6 absolute of a float64 computation (tests/test_metrics.py checks it).
Subsets are mapped with ``rows.map_rows``: one subset per step per device, split over the mesh's
data axis when one is given; memory is 3 m^2 floats per device.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gen_jax.metrics import rows


def polynomial_kernel(a: jax.Array, b: jax.Array) -> jax.Array:
  """(a.b / d + 1)^3 for all pairs of rows, (n, m)."""
  d = a.shape[-1]
  return (jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST) / d + 1.0) ** 3


def mmd2_unbiased(x: jax.Array, y: jax.Array) -> jax.Array:
  """Unbiased MMD^2 between equal-size row sets ``x`` and ``y`` under ``polynomial_kernel``."""
  m = x.shape[0]
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  per_row = ((kxx.sum(1) - jnp.diagonal(kxx) + kyy.sum(1) - jnp.diagonal(kyy)) / (m * (m - 1))
             - (kxy.sum(1) + kxy.sum(0)) / (m * m))
  return per_row.sum()


@functools.partial(jax.jit, static_argnames=("n_real", "n_fake", "subset_size", "num_subsets"))
def _subsets(key, *, n_real, n_fake, subset_size, num_subsets):
  def one(k):
    kr, kf = jax.random.split(k)
    return (jax.random.permutation(kr, n_real)[:subset_size],
            jax.random.permutation(kf, n_fake)[:subset_size])
  return jax.vmap(one)(jax.random.split(key, num_subsets))


def kid_subsets(n_real: int, n_fake: int, *, subset_size: int, num_subsets: int,
                seed: int = 0) -> tuple[jax.Array, jax.Array]:
  """Row indices of each subset, (num_subsets, subset_size) for real and for fake, from ``seed``."""
  if not 2 <= subset_size <= min(n_real, n_fake):
    raise ValueError(f"subset_size={subset_size} must be in [2, min(#real, #fake)] = "
                     f"[2, {min(n_real, n_fake)}].")
  return _subsets(jax.random.key(seed), n_real=n_real, n_fake=n_fake, subset_size=subset_size,
                  num_subsets=num_subsets)


def _subset_rows(qs, refs):
  (ix, iy), (x, y) = qs, refs
  return jax.vmap(lambda i, j: mmd2_unbiased(x[i], y[j]))(ix, iy)


def kid_per_subset(real, fake, *, subset_size: int = 1000, num_subsets: int = 100, seed: int = 0,
                   mesh: Mesh | None = None, data_axis: str | None = None) -> jax.Array:
  """MMD^2_u of each random subset, (num_subsets,)."""
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  ix, iy = kid_subsets(real.shape[0], fake.shape[0], subset_size=subset_size,
                       num_subsets=num_subsets, seed=seed)
  return rows.map_rows(_subset_rows, (ix, iy), (real, fake), block_size=1, mesh=mesh,
                       data_axis=data_axis)


def kid(real, fake, *, subset_size: int = 1000, num_subsets: int = 100, seed: int = 0,
        mesh: Mesh | None = None, data_axis: str | None = None) -> tuple[float, float]:
  """(mean, std) over subsets of the unbiased MMD^2; std has ddof=0."""
  v = np.asarray(kid_per_subset(real, fake, subset_size=subset_size, num_subsets=num_subsets,
                                seed=seed, mesh=mesh, data_axis=data_axis), np.float64)
  return float(v.mean()), float(v.std())
