import jax
import numpy as np
import pytest
import scipy.linalg
from ml_collections import ConfigDict
from scipy.spatial.distance import cdist

from gen_jax import sharding
from gen_jax.metrics import classifier, fid, kid, prdc, sample_quality


def _mesh(shape=(-1,), axes=("data",)):
  return sharding.make_mesh(ConfigDict(dict(shape=shape, axes=axes, data_axis="data")))


def _features(seed, n, d, shift=0.0, scale=1.0):
  """Non-negative, correlated float32 rows, like post-ReLU CNN features."""
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return (np.abs(rng.normal(size=(n, d)) @ mix) * scale + shift).astype(np.float32)


def _fid_reference(a, b):
  a, b = a.astype(np.float64), b.astype(np.float64)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  diff = a.mean(0) - b.mean(0)
  return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


# FID -------------------------------------------------------------------------------------------

def test_fid_matches_scipy_sqrtm_reference():
  x, y = _features(0, 700, 48), _features(1, 500, 48, shift=0.2, scale=1.3)
  expected = _fid_reference(x, y)
  assert expected > 1.0
  np.testing.assert_allclose(fid.fid(x, y, batch_size=128), expected, rtol=1e-10)


def test_fid_of_a_set_with_itself_is_zero_even_with_singular_covariance():
  x = _features(2, 500, 48)
  assert abs(fid.fid(x, x)) < 1e-9
  few = x[:20]  # 20 rows in 48 dimensions: rank-19 covariance, where sqrtm(S1 S2) struggles
  stats = fid.stats_of(few)
  assert abs(fid.fid_from_stats(stats, stats)) < 1e-6 * np.trace(fid.mean_and_cov(stats)[1])


def test_frechet_distance_equals_closed_form_for_commuting_gaussians():
  rng = np.random.default_rng(3)
  d = 16
  a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # a shared rotation keeps them commuting
  s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
  closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(fid.frechet_distance(mu1, s1, mu2, s2), closed, rtol=1e-10)
  # Non-commuting 2x2 case with a hand-derivable answer: tr sqrt(S1^1/2 S2 S1^1/2) for
  # S1 = diag(4, 1), S2 = [[2, 1], [1, 2]] is sqrt(tr M + 2 sqrt(det M)), M = S1^1/2 S2 S1^1/2.
  s1, s2 = np.diag([4.0, 1.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
  m = np.diag([2.0, 1.0]) @ s2 @ np.diag([2.0, 1.0])
  tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
  np.testing.assert_allclose(fid.frechet_distance(np.zeros(2), s1, np.ones(2), s2),
                             2 + 5 + 4 - 2 * tr_sqrt, rtol=1e-12)


def test_fid_of_gaussian_samples_approaches_closed_form():
  rng = np.random.default_rng(4)
  n, d = 20000, 4
  a, b = np.array([1.0, 2.0, 0.5, 1.5]), np.array([2.0, 0.5, 0.5, 1.0])
  x = (rng.normal(size=(n, d)) * np.sqrt(a)).astype(np.float32)
  y = (rng.normal(size=(n, d)) * np.sqrt(b) + 1.0).astype(np.float32)
  closed = d * 1.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(fid.fid(x, y), closed, rtol=0.03)


def test_streaming_moments_equal_one_shot_float64_and_shard_over_the_mesh():
  x = _features(5, 1001, 32, shift=1.0)
  stats = fid.init_stats(32)
  for lo, hi in [(0, 1), (1, 300), (300, 301), (301, 1001)]:  # uneven batches, one of size 1
    stats = fid.update_stats(stats, x[lo:hi])
  mu, cov = fid.mean_and_cov(stats)
  x64 = x.astype(np.float64)
  np.testing.assert_allclose(mu, x64.mean(0), rtol=1e-13)
  np.testing.assert_allclose(cov, np.cov(x64, rowvar=False), rtol=1e-11, atol=1e-14)
  merged = fid.merge_stats(fid.stats_of(x[:500]), fid.stats_of(x[500:]))
  np.testing.assert_allclose(merged.outer, stats.outer, rtol=1e-13)
  # 8 devices, and batches (77 rows) that do not divide over them: zero-padded, same sums.
  sharded = fid.stats_of(x, batch_size=77, mesh=_mesh(), data_axis="data")
  assert sharded.count == 1001
  np.testing.assert_allclose(sharded.outer, stats.outer, rtol=1e-13)
  np.testing.assert_allclose(sharded.sum, stats.sum, rtol=1e-13)


def test_fid_leaves_the_program_in_32_bit_mode():
  fid.fid(_features(6, 50, 4), _features(7, 50, 4))
  assert jax.numpy.zeros(1).dtype == np.float32


# KID -------------------------------------------------------------------------------------------

def _mmd_reference(x, y):
  x, y = x.astype(np.float64), y.astype(np.float64)
  m, d = x.shape
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
          - 2 * kxy.mean())


@pytest.mark.parametrize("shift", [0.0, 0.1])
def test_kid_matches_numpy_reference_on_the_same_subsets(shift):
  x, y = _features(8, 600, 64), _features(9, 450, 64, shift=shift)
  ix, iy = (np.asarray(i) for i in kid.kid_subsets(600, 450, subset_size=200, num_subsets=12))
  assert ix.shape == (12, 200) and len(set(ix[0])) == 200  # without replacement
  ref = np.array([_mmd_reference(x[i], y[j]) for i, j in zip(ix, iy)])
  got = np.asarray(kid.kid_per_subset(x, y, subset_size=200, num_subsets=12))
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
  mean, std = kid.kid(x, y, subset_size=200, num_subsets=12)
  np.testing.assert_allclose([mean, std], [ref.mean(), ref.std()], rtol=1e-4, atol=1e-6)
  sharded = kid.kid(x, y, subset_size=200, num_subsets=12, mesh=_mesh(), data_axis="data")
  np.testing.assert_allclose(sharded, (mean, std), rtol=1e-6, atol=1e-9)
  if shift:
    assert mean > 10 * std > 0  # a shifted set is clearly farther than subset noise


def test_kid_subsets_are_fixed_by_the_seed_and_checked():
  a = kid.kid_subsets(100, 100, subset_size=10, num_subsets=3, seed=1)
  b = kid.kid_subsets(100, 100, subset_size=10, num_subsets=3, seed=1)
  c = kid.kid_subsets(100, 100, subset_size=10, num_subsets=3, seed=2)
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.array_equal(a[0], c[0])
  with pytest.raises(ValueError, match="subset_size=200"):
    kid.kid_subsets(100, 300, subset_size=200, num_subsets=3)


# Precision / recall, density / coverage --------------------------------------------------------

def _prdc_reference(x, y, k):
  x, y = x.astype(np.float64), y.astype(np.float64)
  r = np.sort(cdist(x, x), axis=1)[:, k]  # column 0 is the point itself
  s = np.sort(cdist(y, y), axis=1)[:, k]
  dxy = cdist(x, y)
  return dict(precision=(dxy <= r[:, None]).any(0).mean(), recall=(dxy <= s[None, :]).any(1).mean(),
              density=(dxy <= r[:, None]).sum() / (k * len(y)), coverage=(dxy.min(1) <= r).mean())


_PR_REAL, _PR_FAKE = _features(10, 301, 16), _features(11, 257, 16, shift=0.15, scale=1.2)


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_numpy_reference(k):
  x, y = _PR_REAL, _PR_FAKE
  ref = _prdc_reference(x, y, k)
  assert 0.05 < min(ref.values()) and max(ref["precision"], ref["coverage"]) < 0.95  # informative
  got = prdc.prdc(x, y, k=k, block_size=32)  # 301 and 257 rows: padded last blocks
  for name in ref:
    np.testing.assert_allclose(got[name], ref[name], rtol=1e-12, err_msg=name)


def test_prdc_radii_and_sharding():
  x, y = _PR_REAL, _PR_FAKE
  np.testing.assert_allclose(np.sqrt(prdc.knn_radii_sq(x, k=3, block_size=32)),
                             np.sort(cdist(x.astype(np.float64), x), axis=1)[:, 3], rtol=1e-4)
  v = np.array([[3.0, 1.0, 1.0, 2.0], [0.0, 5.0, 4.0, 4.0]], np.float32)  # ties count twice
  np.testing.assert_array_equal([prdc.kth_smallest(v, k) for k in range(4)],
                                np.sort(v, axis=1).T)
  plain = prdc.prdc(x, y, block_size=32)
  two_axis = _mesh((-1, 2), ("data", "model"))  # rows split 4 ways, replicated over "model"
  assert prdc.prdc(x, y, block_size=32, mesh=two_axis, data_axis="data") == plain
  same = prdc.prdc(x, x, block_size=32)
  assert same["precision"] == same["recall"] == same["coverage"] == 1.0
  with pytest.raises(ValueError, match="k=400"):
    prdc.knn_radii_sq(x[:10], k=400)


def test_sample_quality_bundles_all_feature_metrics():
  x, y = _PR_REAL, _PR_FAKE
  out = sample_quality.sample_quality(x, y, kid_num_subsets=4, block_size=32)  # KID subsets: 257
  assert set(out) == {"fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
  np.testing.assert_allclose(out["fid"], _fid_reference(x, y), rtol=1e-9)
  assert out["precision"] == prdc.prdc(x, y, block_size=32)["precision"]
  without_kid = sample_quality.sample_quality(x, y, kid_num_subsets=0, block_size=32)
  assert set(without_kid) == set(out) - {"kid_mean", "kid_std"}
  assert all(without_kid[k] == out[k] for k in without_kid)


# Classifier scores -----------------------------------------------------------------------------

def _is_reference(p, splits):
  p = p.astype(np.float64)
  scores = []
  part = len(p) // splits
  for i in range(splits):
    q = p[i * part:(i + 1) * part]
    py = q.mean(0)
    kl = (q * (np.log(np.where(q > 0, q, 1)) - np.log(py))).sum(1)
    scores.append(np.exp(kl.mean()))
  return np.mean(scores), np.std(scores)


def test_inception_score_of_uniform_one_hot_predictions_is_the_class_count():
  p = np.eye(10, dtype=np.float32)[np.arange(1000) % 10]
  np.testing.assert_allclose(classifier.inception_score(p), (10.0, 0.0), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(classifier.inception_score(np.full((50, 10), 0.1, np.float32))[0], 1.0,
                             rtol=1e-6)


@pytest.mark.parametrize("splits", [1, 3])
def test_inception_score_matches_numpy_reference_and_streams(splits):
  rng = np.random.default_rng(16)
  p = rng.dirichlet(np.full(10, 0.3), size=1001).astype(np.float32)
  p[0] = np.eye(10)[2]  # exact zeros: 0 log 0 = 0
  np.testing.assert_allclose(classifier.inception_score(p, num_splits=splits),
                             _is_reference(p, splits), rtol=1e-6, atol=1e-9)
  n, ne, s = 0, 0.0, 0.0
  for lo in range(0, 1001, 300):
    bn, bne, bs = classifier.classifier_sums(p[lo:lo + 300])
    n, ne, s = n + bn, ne + bne, s + bs
  np.testing.assert_allclose(classifier.inception_score_from_sums(n, ne, s),
                             _is_reference(p, 1)[0], rtol=1e-6)


def test_mode_coverage():
  p = np.eye(10, dtype=np.float32)[np.arange(200) % 10]
  counts = classifier.label_histogram(p)
  np.testing.assert_array_equal(counts, np.full(10, 20))
  assert classifier.mode_coverage(counts) == dict(kl_to_uniform=0.0, modes_covered=10)
  one = classifier.mode_coverage([0, 0, 7, 0])
  np.testing.assert_allclose(one["kl_to_uniform"], np.log(4), rtol=1e-12)
  assert one["modes_covered"] == 1
  q = np.array([1.0, 2.0, 3.0, 4.0]) / 10
  np.testing.assert_allclose(classifier.mode_coverage([1, 2, 3, 4])["kl_to_uniform"],
                             np.sum(q * np.log(4 * q)), rtol=1e-12)


def test_code_purity_counts_each_codes_majority_class():
  eye = np.eye(3, dtype=np.float32)
  # Code 0 draws classes 0, 0, 0, 1 (purity 3/4), code 1 draws 2, 2, 2, 2 (1), code 2 draws
  # 2, 2, 1, 0 (1/2): mean 3/4; the majorities are 0, 2, 2, two distinct classes.
  probs = np.stack([eye[[0, 0, 0, 1]], eye[[2, 2, 2, 2]], eye[[2, 2, 1, 0]]])
  assert classifier.code_purity(probs) == dict(code_purity=0.75, code_classes=2)
  assert classifier.code_purity(np.stack([eye[[k] * 5] for k in range(3)])) == dict(
      code_purity=1.0, code_classes=3)
