"""Row-blocked, shardable evaluation of "each query row against a whole reference set".

Every set-to-set metric here (k-NN radii, precision/recall, density/coverage, KID subsets) is a
function of one query row and a reference set that is read whole. ``map_rows`` runs such a
function over blocks of ``block_size`` query rows with ``lax.map`` (so a 10k x 10k distance matrix
is never materialised: one block holds ``block_size x n_ref`` values), and, given a mesh, splits
the query rows over its data axis with ``jax.shard_map`` while the reference set is replicated.
Queries are padded to a multiple of ``shards * block_size`` and the padding is cut off again, so
any number of rows works; padded rows compute garbage that nobody sees.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def squared_distances(a: jax.Array, b: jax.Array, b_sq: jax.Array | None = None) -> jax.Array:
  """|a_i - b_j|^2 for all pairs, (n, m), via |a|^2 + |b|^2 - 2 a.b, clipped at 0.

  The matmul runs at ``Precision.HIGHEST``: the default precision lets GPUs use TF32 (10-bit
  mantissa) for float32, which moves k-NN radii by far more than float32 rounding does.
  """
  if b_sq is None:
    b_sq = jnp.sum(b * b, axis=-1)
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(jnp.sum(a * a, axis=-1)[:, None] + b_sq[None, :] - 2.0 * ab, 0.0)


def map_rows(fn: Callable, queries: tuple, refs: tuple, *, block_size: int,
             mesh: Mesh | None = None, data_axis: str | None = None):
  """``fn(query_block, refs)`` over row blocks of ``queries``, concatenated back to full length.

  Args:
    fn: maps a tuple of row-aligned arrays with leading size ``b`` (a block of query rows) and
      the tuple ``refs`` to a pytree of arrays with leading size ``b``. Must be hashable (a
      module-level function, or one built once and reused) because it is a static argument.
    queries: arrays sharing their leading (row) size ``n``.
    refs: arrays every row reads whole (replicated over the mesh).
    block_size: rows per block on each device.
    mesh, data_axis: when given, rows are split over ``mesh``'s ``data_axis``.
  Returns:
    ``fn``'s pytree with leading size ``n``.
  """
  n = queries[0].shape[0]
  shards = 1 if mesh is None else mesh.shape[data_axis]
  block = max(1, min(block_size, math.ceil(n / shards)))
  padded = math.ceil(n / (shards * block)) * shards * block
  return _map_rows(fn, tuple(queries), tuple(refs), n=n, padded=padded, block=block, mesh=mesh,
                   data_axis=data_axis)


@functools.partial(jax.jit, static_argnames=("fn", "n", "padded", "block", "mesh", "data_axis"))
def _map_rows(fn, queries, refs, *, n, padded, block, mesh, data_axis):
  pad = lambda q: jnp.pad(q, [(0, padded - n)] + [(0, 0)] * (q.ndim - 1))
  queries = tuple(pad(q) for q in queries)

  def local(qs, rs):
    blocks = tuple(q.reshape((-1, block) + q.shape[1:]) for q in qs)
    out = jax.lax.map(lambda qb: fn(qb, rs), blocks)
    return jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:]), out)

  if mesh is None:
    out = local(queries, refs)
  else:
    row, rep = P(data_axis), P()
    queries = tuple(jax.lax.with_sharding_constraint(q, NamedSharding(mesh, row)) for q in queries)
    out = jax.shard_map(local, mesh=mesh, in_specs=((row,) * len(queries), (rep,) * len(refs)),
                        out_specs=row, check_vma=False)(queries, refs)
  return jax.tree.map(lambda o: o[:n], out)
