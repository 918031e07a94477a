"""k-nearest-neighbour classification on features, and features of a trained model.

The BiGAN paper's measure (Donahue et al. 2017, Table 1): label each test image by its k nearest
train features, report the test accuracy. ``launch.py --mode=probe``
(:mod:`gen_jax.representation.probe`) runs it for every feature source of a workdir, next to the
linear probe::

    from gen_jax.representation import knn
    acc = knn.knn_accuracy(train_f, train_y, test_f, test_y, k=5, metric="cosine")
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gen_jax.metrics import rows

METRICS = ("euclidean", "cosine")


# ---------------------------------------------------------------------------------------------
# k-NN.


def _normalize(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=None)
def _neighbour_labels_fn(k: int):
  """(query block, (train features, their squared norms, labels)) -> labels of the k nearest."""
  def fn(qs, refs):
    (q,), (ref, ref_sq, labels) = qs, refs
    d = rows.squared_distances(q, ref, ref_sq)            # (block, n_train), never the whole matrix
    idx = jnp.arange(d.shape[0])

    def take_nearest(_, carry):
      d, out, i = carry
      j = jnp.argmin(d, axis=1)                           # ties: the lower train index first
      return d.at[idx, j].set(jnp.inf), out.at[:, i].set(labels[j]), i + 1

    out = jnp.zeros((d.shape[0], k), labels.dtype)
    return jax.lax.fori_loop(0, k, take_nearest, (d, out, 0))[1]
  return fn


def _check(train_feats, train_labels, test_feats, k: int, metric: str):
  if metric not in METRICS:
    raise ValueError(f"unknown k-NN metric {metric!r}; choose one of {', '.join(METRICS)}.")
  if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
    raise ValueError(f"k-NN needs 2-D features of one width; got train {train_feats.shape} and "
                     f"test {test_feats.shape} (flatten images first).")
  if train_labels.shape != train_feats.shape[:1]:
    raise ValueError(f"{train_labels.shape[0] if train_labels.ndim else 0} train labels for "
                     f"{train_feats.shape[0]} train rows.")
  if not 1 <= k <= train_feats.shape[0]:
    raise ValueError(f"k={k} must be between 1 and the number of train rows "
                     f"({train_feats.shape[0]}).")


def neighbour_labels(train_feats, train_labels, test_feats, k: int, *, metric: str = "euclidean",
                     block_size: int = 256, mesh: Optional[Mesh] = None,
                     data_axis: Optional[str] = None) -> jax.Array:
  """(n_test, k) int32: the labels of each test row's ``k`` nearest train rows, nearest first.

  Distances are Euclidean (``metric='cosine'``: Euclidean between unit-normalised rows, which
  ranks neighbours as cosine similarity does); ties go to the lower train index. Test rows go in
  blocks of ``block_size`` (one block holds ``block_size x n_train`` distances), split over
  ``mesh``'s ``data_axis`` when given.
  """
  train_feats = jnp.asarray(train_feats, jnp.float32)
  test_feats = jnp.asarray(test_feats, jnp.float32)
  train_labels = jnp.asarray(train_labels, jnp.int32)
  _check(train_feats, train_labels, test_feats, k, metric)
  if metric == "cosine":
    train_feats, test_feats = _normalize(train_feats), _normalize(test_feats)
  return rows.map_rows(
      _neighbour_labels_fn(k), (test_feats,),
      (train_feats, jnp.sum(train_feats * train_feats, -1), train_labels),
      block_size=block_size, mesh=mesh, data_axis=data_axis)


def vote(neighbours: jax.Array, k: int, num_classes: int) -> jax.Array:
  """The majority label among the first ``k`` columns of ``neighbours``; ties: the lower class."""
  if k == 1:
    return neighbours[:, 0]
  votes = jax.nn.one_hot(neighbours[:, :k], num_classes, dtype=jnp.int32).sum(axis=1)
  return jnp.argmax(votes, axis=-1).astype(jnp.int32)


def knn_predict(train_feats, train_labels, test_feats, k: int = 1, *, metric: str = "euclidean",
                num_classes: Optional[int] = None, block_size: int = 256,
                mesh: Optional[Mesh] = None, data_axis: Optional[str] = None) -> jax.Array:
  """The majority label of each test row's ``k`` nearest train rows, (n_test,) int32
  (:func:`neighbour_labels`, then :func:`vote`)."""
  neighbours = neighbour_labels(train_feats, train_labels, test_feats, k, metric=metric,
                                block_size=block_size, mesh=mesh, data_axis=data_axis)
  return vote(neighbours, k, num_classes or int(np.max(train_labels)) + 1)


def knn_accuracies(train_feats, train_labels, test_feats, test_labels, ks: Sequence[int] = (1,),
                   *, metric: str = "euclidean", block_size: int = 256,
                   mesh: Optional[Mesh] = None, data_axis: Optional[str] = None
                   ) -> dict[int, float]:
  """{k: fraction of test rows whose k-NN majority label is their label} for every k of ``ks``,
  from one search for the ``max(ks)`` nearest neighbours."""
  neighbours = neighbour_labels(train_feats, train_labels, test_feats, max(ks), metric=metric,
                                block_size=block_size, mesh=mesh, data_axis=data_axis)
  test_labels = np.asarray(test_labels)
  if test_labels.shape != neighbours.shape[:1]:
    raise ValueError(f"{test_labels.shape[0]} test labels for {neighbours.shape[0]} test rows.")
  num_classes = int(np.max(train_labels)) + 1
  return {k: float(np.mean(np.asarray(vote(neighbours, k, num_classes)) == test_labels))
          for k in ks}


def knn_accuracy(train_feats, train_labels, test_feats, test_labels, k: int = 1, *,
                 metric: str = "euclidean", block_size: int = 256, mesh: Optional[Mesh] = None,
                 data_axis: Optional[str] = None) -> float:
  """Fraction of test rows whose k-NN majority label (:func:`knn_predict`) is their label."""
  return knn_accuracies(train_feats, train_labels, test_feats, test_labels, (k,), metric=metric,
                        block_size=block_size, mesh=mesh, data_axis=data_axis)[k]
