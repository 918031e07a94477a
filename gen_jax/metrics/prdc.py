"""Improved precision and recall (Kynkaanniemi et al., 2019) and density and coverage (Naeem et
al., 2020) on feature vectors.

Each real (fake) point gets a ball whose radius is the distance to its k-th nearest neighbour in
its own set, the point itself not counted (the reference code of both papers takes the (k+1)-th
smallest distance, the 0-th being the point itself; so do we). Then, with real X (n) and fake Y (m):

  precision = 1/m sum_j 1[ exists i: |y_j - x_i| <= r_i ]        (fake samples on the real manifold)
  recall    = 1/n sum_i 1[ exists j: |x_i - y_j| <= s_j ]        (real samples on the fake manifold)
  density   = 1/(k m) sum_j sum_i 1[ |y_j - x_i| <= r_i ]
  coverage  = 1/n sum_i 1[ min_j |x_i - y_j| <= r_i ]

``*_per_example`` functions return the per-sample indicators/counts; ``prdc`` reduces them.
Distances are float32 (``Precision.HIGHEST`` matmuls) and compared squared; all four quantities
need only row-wise passes (fake rows against all reals, real rows against all fakes), computed in
blocks by ``rows.map_rows`` so that 10k x 10k never sits in memory at once, and split over a
mesh's data axis when one is given.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from gen_jax.metrics import rows


def kth_smallest(v: jax.Array, k: int) -> jax.Array:
  """The k-th smallest (0-based) entry of each row, ties counted with multiplicity.

  k rounds of "remove one row minimum", then a minimum: for small k this is ~20x faster than
  ``lax.top_k`` on XLA:CPU (k=3 radii of 10k x 128 features in 1024-row blocks, 2 cores:
  1.3 s against 25 s).
  """
  rows_ = jnp.arange(v.shape[0])
  drop_min = lambda _, u: u.at[rows_, jnp.argmin(u, axis=1)].set(jnp.inf)
  return jax.lax.fori_loop(0, k, drop_min, v).min(axis=1)


@functools.lru_cache(maxsize=None)
def _kth_neighbour_fn(k: int):
  def fn(qs, refs):
    (q,), (ref, ref_sq) = qs, refs
    # (k+1)-th smallest, 0-based index k: the point itself is its own 0-th neighbour.
    return kth_smallest(rows.squared_distances(q, ref, ref_sq), k)
  return fn


def knn_radii_sq(x: jax.Array, *, k: int = 3, block_size: int = 1024, mesh: Mesh | None = None,
                 data_axis: str | None = None) -> jax.Array:
  """Squared distance from each row of ``x`` to its k-th nearest other row of ``x``, (n,)."""
  if not 1 <= k < x.shape[0]:
    raise ValueError(f"k={k} needs 1 <= k < number of points ({x.shape[0]}).")
  x = jnp.asarray(x, jnp.float32)
  return rows.map_rows(_kth_neighbour_fn(k), (x,), (x, jnp.sum(x * x, -1)), block_size=block_size,
                       mesh=mesh, data_axis=data_axis)


def _fake_rows(qs, refs):
  """For fake rows y_j: is y_j in some real ball, and in how many."""
  (y,), (x, x_sq, r_sq) = qs, refs
  inside = rows.squared_distances(y, x, x_sq) <= r_sq[None, :]
  return inside.any(axis=1), inside.sum(axis=1, dtype=jnp.int32)


def _real_rows(qs, refs):
  """For real rows x_i with own radius r_i: is x_i in some fake ball; is some fake in x_i's ball."""
  (x, r_sq), (y, y_sq, s_sq) = qs, refs
  d2 = rows.squared_distances(x, y, y_sq)
  return (d2 <= s_sq[None, :]).any(axis=1), d2.min(axis=1) <= r_sq


def prdc_per_example(real: jax.Array, fake: jax.Array, *, k: int = 3, block_size: int = 1024,
                     mesh: Mesh | None = None, data_axis: str | None = None) -> dict:
  """Per-sample quantities behind precision, recall, density and coverage.

  Returns a dict of: ``precision`` (m,) bool, fake j in some real ball; ``density`` (m,) int32,
  number of real balls holding fake j; ``recall`` (n,) bool, real i in some fake ball;
  ``coverage`` (n,) bool, the nearest fake lies in real i's ball.
  """
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  kw = dict(block_size=block_size, mesh=mesh, data_axis=data_axis)
  r_sq = knn_radii_sq(real, k=k, **kw)
  s_sq = knn_radii_sq(fake, k=k, **kw)
  precision, density = rows.map_rows(_fake_rows, (fake,), (real, jnp.sum(real * real, -1), r_sq),
                                     **kw)
  recall, coverage = rows.map_rows(_real_rows, (real, r_sq), (fake, jnp.sum(fake * fake, -1), s_sq),
                                   **kw)
  return dict(precision=precision, recall=recall, density=density, coverage=coverage)


def prdc(real: jax.Array, fake: jax.Array, *, k: int = 3, block_size: int = 1024,
         mesh: Mesh | None = None, data_axis: str | None = None) -> dict[str, float]:
  """Precision, recall, density and coverage of ``fake`` against ``real`` (feature rows)."""
  per = prdc_per_example(real, fake, k=k, block_size=block_size, mesh=mesh, data_axis=data_axis)
  n, m = real.shape[0], fake.shape[0]
  count = lambda v: int(jnp.sum(v, dtype=jnp.int32))  # exact counts; divided on the host
  return dict(precision=count(per["precision"]) / m, recall=count(per["recall"]) / n,
              density=count(per["density"]) / (k * m), coverage=count(per["coverage"]) / n)
