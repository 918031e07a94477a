"""Representation: the linear probe against scikit-learn, PCA against numpy's SVD,
trustworthiness against scikit-learn's, k-NN, and --mode=probe / --mode=compress end to end."""

import json

import jax
import numpy as np
import pytest
from sklearn import datasets as sk_datasets
from sklearn import linear_model, manifold

from conftest import tiny_config
from gen_jax import train
from gen_jax.representation import compress, knn, linear, probe, reduce


@pytest.fixture(scope="module")
def digits():
  x, y = sk_datasets.load_digits(return_X_y=True)
  return x.astype(np.float32), y.astype(np.int32)


# ---- the linear probe ---------------------------------------------------------------------------


@pytest.mark.parametrize("l2", [1e-3, 1e-1])
def test_logistic_regression_equals_scikit_learns(digits, l2):
  x, y = digits[0][:500], digits[1][:500]
  mean, scale = linear.standardizer(x)
  xs = (x - mean) / scale
  w, b = linear.fit(xs, y, l2, num_classes=10, max_iter=2000, tol=1e-6)
  # mean CE + l2/2 ||W||^2  ==  (1 / n) * (sum CE + 1/(2C) ||W||^2)  with  C = 1 / (l2 n)
  ref = linear_model.LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=20000)
  ref.fit(xs, y)
  probs = np.asarray(jax.nn.softmax(xs @ w + b))
  np.testing.assert_allclose(probs, ref.predict_proba(xs), atol=2e-3)
  np.testing.assert_allclose(np.asarray(w).T, ref.coef_, atol=5e-3 * np.abs(ref.coef_).max())


def test_balanced_subsets_hold_each_class_equally_and_raise_clearly():
  labels = np.repeat(np.arange(10), 50)
  idx = linear.balanced_subset(labels, 100, jax.random.PRNGKey(0))
  assert len(np.unique(idx)) == 100 and np.all(np.bincount(labels[idx]) == 10)
  other = linear.balanced_subset(labels, 100, jax.random.PRNGKey(1))
  assert not np.array_equal(idx, other)
  assert np.bincount(labels[linear.balanced_subset(labels, 13, jax.random.PRNGKey(0))]).tolist() \
      == [2, 2, 2] + [1] * 7
  with pytest.raises(ValueError, match="only 500 are available"):
    linear.balanced_subset(labels, 501, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="at least one label per class"):
    linear.balanced_subset(labels, 5, jax.random.PRNGKey(0))


def test_the_probe_never_looks_at_the_test_labels(digits):
  x, y = digits
  a = linear.probe(x[:1000], y[:1000], x[1000:], y[1000:], key=jax.random.PRNGKey(0),
                   l2s=(1e-4, 1e-2, 1.0))
  shuffled = np.random.default_rng(0).permutation(y[1000:])
  b = linear.probe(x[:1000], y[:1000], x[1000:], shuffled, key=jax.random.PRNGKey(0),
                   l2s=(1e-4, 1e-2, 1.0))
  assert a.l2 == b.l2 and a.val_accuracy == b.val_accuracy
  assert a.accuracy > 0.9 > 0.2 > b.accuracy       # digits are linearly separable; chance is 0.1
  assert set(a.val_accuracy) == {1e-4, 1e-2, 1.0} and a.num_labels == 1000


def test_label_efficiency_draws_each_size_and_runs_the_whole_split_once(digits):
  x, y = digits
  out = linear.label_efficiency(x[:1000], y[:1000], x[1000:], y[1000:], sizes=(50, 1000),
                                draws=3, key=jax.random.PRNGKey(0), l2s=(1e-2,))
  assert [len(out[50]), len(out[1000])] == [3, 1]
  assert len({r.accuracy for r in out[50]}) > 1                     # three different subsets
  assert np.mean([r.accuracy for r in out[50]]) < out[1000][0].accuracy


# ---- PCA, neighbourhoods, k-NN ------------------------------------------------------------------


def test_pca_equals_numpys_svd(digits):
  x = digits[0]
  pca = reduce.pca_fit(x, 5)
  _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
  np.testing.assert_allclose(np.abs(pca.components @ vt[:5].T), np.eye(5), atol=1e-4)
  np.testing.assert_allclose(pca.variances, s[:5] ** 2 / (len(x) - 1), rtol=1e-4)
  z = reduce.pca_encode(pca, x)
  proj = (x - x.mean(0)) @ vt[:5].T @ vt[:5] + x.mean(0)
  np.testing.assert_allclose(reduce.pca_decode(pca, z), proj, atol=1e-3)
  with pytest.raises(ValueError, match="between 1 and the data's 64"):
    reduce.pca_fit(x, 65)


def test_trustworthiness_equals_scikit_learns(digits):
  x = digits[0][:400] + np.random.default_rng(0).random((400, 64), np.float32) * 1e-3  # no ties
  z = reduce.pca_encode(reduce.pca_fit(x, 2), x)
  for k in (1, 5, 12):
    assert reduce.trustworthiness(x, z, k) == pytest.approx(
        manifold.trustworthiness(x, z, n_neighbors=k), abs=1e-12)
  assert reduce.trustworthiness(x, x, 5) == 1.0
  assert reduce.knn_preservation(x, x[:, ::-1] * 3.0, 10) == 1.0        # an isometry up to scale
  noise = np.random.default_rng(1).random((400, 2))
  assert reduce.knn_preservation(x, noise, 10) < 0.1 < reduce.knn_preservation(x, z, 10)


def test_knn_accuracies_of_several_k_equal_one_k_at_a_time(digits):
  x, y = digits
  both = knn.knn_accuracies(x[:1000], y[:1000], x[1000:], y[1000:], (1, 5))
  for k in (1, 5):
    pred = knn.knn_predict(x[:1000], y[:1000], x[1000:], k)
    assert both[k] == pytest.approx(float(np.mean(np.asarray(pred) == y[1000:])))
  assert both[1] > 0.95


def test_bits_at_accuracy_interpolates_in_log_bits():
  assert compress.bits_at([(10, 0.5), (100, 0.99)], 0.99) == 100
  assert compress.bits_at([(100, 0.9), (10, 0.5)], 0.7) == pytest.approx(np.sqrt(10 * 100))
  assert compress.bits_at([(10, 0.96)], 0.95) == 10
  assert compress.bits_at([(10, 0.5), (20, 0.6)], 0.95) is None


# ---- the commands -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory, tfds_dir):
  del tfds_dir
  workdir = tmp_path_factory.mktemp("repr") / "vae2"
  config = tiny_config("vae_mnist", num_steps=40)
  config.model.latent_dim = 2
  train.train_and_evaluate(config, str(workdir))
  return config, workdir


@pytest.mark.heavy
def test_probe_mode_writes_a_card_per_probe_and_source(trained_vae):
  config, workdir = trained_vae
  p = config.probe
  p.num_train, p.num_test, p.sizes, p.draws = 2000, 500, (20, 2000), 2
  p.l2s, p.trust_num, p.max_iter = (1e-3, 1e-1), 300, 100
  written = probe.evaluate_workdir(config, workdir, command="test")
  by = {(c["model"], c["metric"], c.get("labels"), c.get("k")): c for c in written}
  assert {c["features"] for c in written} == {"encoder", "pixels", "pca"}
  lp = by[(workdir.name, "linear_probe_accuracy", 20, None)]
  assert lp["dim"] == 2 and lp["std"] is not None and "2 class-balanced draw(s)" in lp["notes"]
  assert by[(workdir.name, "linear_probe_accuracy", 2000, None)]["std"] is None   # one run
  # The cards hold what the probes give on the same features.
  run, state = probe.run_lib.restore(config, workdir)
  tr_x, tr_y = probe.labelled_split("mnist", "train", num=2000)
  te_x, te_y = probe.labelled_split("mnist", "test", num=500)
  f_tr = probe.features(run.family.encode, state, tr_x, batch_size=p.batch_size)
  f_te = probe.features(run.family.encode, state, te_x, batch_size=p.batch_size)
  assert by[(workdir.name, "knn_accuracy", 2000, 5)]["value"] == pytest.approx(
      knn.knn_accuracy(f_tr, tr_y, f_te, te_y, 5))
  assert by[(workdir.name, "trustworthiness", None, 10)]["value"] == pytest.approx(
      reduce.trustworthiness(te_x[:300].reshape(300, -1), f_te[:300], 10))
  assert by[("raw pixels (mnist)", "linear_probe_accuracy", 2000, None)]["dim"] == 784
  assert by[("PCA-2 (mnist)", "knn_accuracy", 2000, 1)]["family"] == "data"
  assert (workdir / "probe" / "scatter_encoder.png").stat().st_size > 10_000
  lines = (workdir / "probe_cards.jsonl").read_text().splitlines()
  assert len(lines) == len(written) == 3 * (2 + 2 + 2)


@pytest.mark.heavy
def test_compress_mode_codes_the_latents_and_the_baselines(trained_vae):
  config, workdir = trained_vae
  c = config.compress
  c.num_train, c.num_test, c.steps = 2000, 300, (1.0, 0.25)
  c.jpeg_qualities, c.webp_qualities = (10, 90), (50,)
  written = compress.evaluate_workdir(config, workdir, command="test")
  by = {(c_["codec"], c_["metric"], c_.get("quant_step"), c_.get("method")): c_ for c_ in written}
  code = f"{workdir.name} code"
  coarse, fine = by[(code, "codec_bits", 1.0, None)], by[(code, "codec_bits", 0.25, None)]
  assert 0 < coarse["value"] < fine["value"]
  assert by[(code, "codec_psnr", 1.0, None)]["value"] < by[(code, "codec_psnr", 0.25, None)]["value"]
  assert by[("PNG", "codec_mse", None, None)]["value"] == 0.0
  assert ("PNG", "codec_psnr", None, None) not in by                 # lossless: no PSNR
  assert by[("JPEG", "codec_bits", None, "quality 10")]["value"] < \
      by[("JPEG", "codec_bits", None, "quality 90")]["value"]
  assert by[("bits-back (KL)", "codec_bits", None, None)]["value"] > 0
  assert ("PCA-2", "codec_accuracy", 0.25, None) in by
  assert all(c_["model"] == "PNG (mnist)" for c_ in written if c_["codec"] == "PNG")
  assert (workdir / "compress" / "rate_distortion.png").stat().st_size > 10_000
  assert len(json.loads((workdir / "compress_cards.jsonl").read_text().splitlines()[0])) > 10


def test_probe_and_compress_reject_bad_settings(trained_vae):
  config, workdir = trained_vae
  config.probe.baselines = ("pixels", "umap")
  with pytest.raises(ValueError, match="unknown probe.baselines"):
    probe.evaluate_workdir(config, workdir)
  config.probe.baselines = ("pixels",)
  config.compress.steps = (1.0, 0.0)
  with pytest.raises(ValueError, match="positive quantisation steps"):
    compress.evaluate_workdir(config, workdir)
  config.compress.steps = (1.0,)
  gan = tiny_config("gan_mnist")
  with pytest.raises(ValueError, match="no encoder and decoder pair"):
    compress.evaluate_workdir(gan, workdir)


@pytest.mark.parametrize("name", ["gan_mnist", "dcgan_mnist"])
def test_discriminator_features_are_the_layer_its_output_reads(name):
  """D(x) = the last Dense of the features: they are D's last hidden layer, batch-normalised with
  the batch's own statistics as in training."""
  from gen_jax.steps import gan
  config = tiny_config(name)
  family = gan.from_config(config, (28, 28, 1))
  state = family.init(jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (16, 28, 28, 1))
  feats = family.discriminator_features(state, x)
  gen, disc = gan.create_models(config, (28, 28, 1))
  del gen
  logits, _ = gan.apply(disc, state.params["disc"], gan.batch_stats(state, "disc"),
                        gan.to_model_range(x, config.model.gen_output))
  last = [k for k in state.params["disc"] if k.startswith("Dense")][-1]
  w, b = state.params["disc"][last]["kernel"], state.params["disc"][last]["bias"]
  np.testing.assert_allclose(np.asarray(feats @ w + b)[:, 0], np.asarray(logits), atol=1e-4)
  assert feats.shape[0] == 16 and feats.shape[1] == w.shape[0]
