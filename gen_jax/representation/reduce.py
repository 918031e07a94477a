"""Dimensionality reduction: PCA (the linear baseline every code is read against) and how well a
low-dimensional embedding keeps the neighbourhoods of the images.

    from gen_jax.representation import reduce
    pca = reduce.pca_fit(train_x, dim=20)        # train_x: (n, D) float
    z = reduce.pca_encode(pca, test_x)           # (n, 20)
    x_hat = reduce.pca_decode(pca, z)            # the best rank-20 linear reconstruction
    reduce.trustworthiness(test_x, z, k=10)      # 1.0: no false neighbours in the embedding

``trustworthiness`` is Venna & Kaski's (2001) measure (scikit-learn's
``sklearn.manifold.trustworthiness``, which the tests check it against): it penalises points that
are among an embedded point's ``k`` nearest neighbours but far down its ranking in the input
space. ``knn_preservation`` is the plainer share of each point's ``k`` input-space neighbours that
stay among its ``k`` embedded neighbours.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PCA:
  mean: np.ndarray         # (D,)
  components: np.ndarray   # (dim, D), orthonormal rows, by decreasing variance
  variances: np.ndarray    # (dim,) the variance along each component


def pca_fit(train_x: np.ndarray, dim: int) -> PCA:
  """The top ``dim`` principal components of ``train_x`` (n, D): an eigendecomposition of the
  D x D covariance in float64 (cheaper than an SVD of the data when n >> D)."""
  x = np.asarray(train_x, np.float64).reshape(len(train_x), -1)
  if not 1 <= dim <= x.shape[1]:
    raise ValueError(f"PCA dimension {dim} must be between 1 and the data's {x.shape[1]}.")
  mean = x.mean(0)
  xc = x - mean
  cov = xc.T @ xc / max(len(x) - 1, 1)
  vals, vecs = np.linalg.eigh(cov)
  order = np.argsort(vals)[::-1][:dim]
  comps = vecs[:, order].T
  comps *= np.sign(comps[np.arange(dim), np.argmax(np.abs(comps), 1)])[:, None]  # a fixed sign
  return PCA(mean.astype(np.float32), comps.astype(np.float32), vals[order].astype(np.float32))


def pca_encode(pca: PCA, x: np.ndarray) -> np.ndarray:
  return ((np.asarray(x, np.float32).reshape(len(x), -1) - pca.mean) @ pca.components.T)


def pca_decode(pca: PCA, z: np.ndarray) -> np.ndarray:
  return np.asarray(z, np.float32) @ pca.components + pca.mean


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances in float64 (near-ties decide ranks here)."""
  return np.maximum(np.sum(a * a, 1)[:, None] - 2 * a @ b.T + np.sum(b * b, 1)[None], 0.0)


def _flat64(x: np.ndarray) -> np.ndarray:
  return np.asarray(x, np.float64).reshape(len(x), -1)


def _neighbours(x: np.ndarray, k: int, block: int = 1000) -> np.ndarray:
  """(n, k) indices of each row's k nearest other rows (Euclidean), nearest first."""
  x = _flat64(x)
  out = []
  for lo in range(0, len(x), block):
    d = _sq_dists(x[lo:lo + block], x)
    d[np.arange(len(d)), lo + np.arange(len(d))] = np.inf          # not itself
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
    out.append(np.take_along_axis(part, order, 1))
  return np.concatenate(out)


def _input_ranks(x: np.ndarray, cols: np.ndarray, block: int = 1000) -> np.ndarray:
  """rank (1 = nearest) of point ``cols[i, j]`` among the other points by distance from point
  ``i`` in ``x``."""
  x = _flat64(x)
  ranks = np.empty(cols.shape, np.int64)
  for lo in range(0, len(x), block):
    d = _sq_dists(x[lo:lo + block], x)
    rows = np.arange(len(d))
    d[rows, lo + rows] = -np.inf                          # itself first: rank 0
    ranks[lo:lo + block] = _ranks_of(d, cols[lo:lo + block])
  return ranks


def _ranks_of(d: np.ndarray, cols: np.ndarray) -> np.ndarray:
  order = np.argsort(d, axis=1, kind="stable")
  inv = np.empty_like(order)
  inv[np.arange(len(d))[:, None], order] = np.arange(d.shape[1])[None]
  return np.take_along_axis(inv, cols, axis=1)


def trustworthiness(x: np.ndarray, embedded: np.ndarray, k: int = 5) -> float:
  """Venna & Kaski's trustworthiness of ``embedded`` (n, d) for the points ``x`` (n, D), in
  [0, 1]: ``1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^emb(i) \\ N_k^in(i)} (r(i, j) - k)``
  with r the rank in the input space."""
  n = len(x)
  if not 1 <= k < n / 2:
    raise ValueError(f"trustworthiness needs 1 <= k < n / 2; got k={k} for {n} points.")
  emb_nn = _neighbours(embedded, k)
  ranks = _input_ranks(x, emb_nn)
  penalty = np.sum(np.maximum(ranks - k, 0))
  return float(1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def knn_preservation(x: np.ndarray, embedded: np.ndarray, k: int = 10) -> float:
  """The mean share of each point's ``k`` nearest input-space neighbours that are also among its
  ``k`` nearest embedded neighbours (1.0: every neighbourhood kept)."""
  a, b = _neighbours(x, k), _neighbours(embedded, k)
  return float(np.mean([len(np.intersect1d(p, q)) / k for p, q in zip(a, b)]))
