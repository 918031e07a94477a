"""The eval command: sample export, metrics on the domain network, the likelihood k sweep, cards."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, tiny_config
from gen_jax import cards, evaluate, train


def test_samples_are_exported_as_uint8_nhwc_npz_with_a_png(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
  path = evaluate.export_samples(tmp_path, 12, images)
  assert path == tmp_path / "samples" / "samples_00000012.npz"
  with np.load(path) as f:
    np.testing.assert_array_equal(f["images"], images)
  assert path.with_suffix(".png").stat().st_size > 0
  with pytest.raises(ValueError, match="uint8 NHWC"):
    evaluate.export_samples(tmp_path, 12, images.astype(np.float32))


def test_to_uint8_maps_both_value_ranges_onto_0_255():
  np.testing.assert_array_equal(evaluate.to_uint8(np.array([0.0, 0.5, 1.0])), [0, 128, 255])
  np.testing.assert_array_equal(evaluate.to_uint8(np.array([0, 1]), max_value=1), [0, 255])
  np.testing.assert_array_equal(evaluate.to_uint8(np.array([0, 255]), max_value=255), [0, 255])


def test_inception_features_are_computed_once_per_image_set(tmp_path, monkeypatch):
  from gen_jax.metrics import inception
  monkeypatch.setenv("GEN_JAX_CACHE_DIR", str(tmp_path))
  calls = []

  def fake_features(images, **kw):   # stands in for the 87 MB network: one row per image
    calls.append(len(images))
    return images.reshape(len(images), -1)[:, :3].astype(np.float32) + len(calls)

  monkeypatch.setattr(inception, "features", fake_features)
  images = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 1), dtype=np.uint8)
  first = evaluate.cached_inception_features(images, params=None)
  again = evaluate.cached_inception_features(images.copy(), params=None)
  np.testing.assert_array_equal(first, again)      # read back, not recomputed (that adds 1)
  assert calls == [5] and len(list((tmp_path / "inception" / "features").glob("*.npy"))) == 1
  changed = images.copy()
  changed[0, 0, 0, 0] ^= 1
  evaluate.cached_inception_features(changed, params=None)        # another set: computed
  evaluate.cached_inception_features(images, params=None, cache=False)   # asked to recompute
  assert calls == [5, 5, 5]


@pytest.fixture(scope="module")
def trained(tfds_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("vae")
  config = tiny_config(**{"num_steps": 200, "steps_per_dispatch": 100, "eval.every_steps": 200,
                          "checkpoint.every_steps": 200, "eval.iwae_k": 0,
                          "eval.num_samples": 500, "eval.num_real": 500, "eval.batch_size": 250,
                          "eval.iwae_ks": (1, 10), "eval.iwae_batch_size": 500})
  train.train_and_evaluate(config, str(workdir))
  return config, workdir, evaluate.evaluate_workdir(config, workdir, command="pytest")


def test_eval_writes_samples_and_one_card_per_metric(trained):
  config, workdir, out = trained
  by_name = {(c["metric"], c.get("k")): c for c in out}
  for m in ("fid", "kid", "precision", "recall", "density", "coverage", "inception_score",
            "mode_kl_to_uniform", "modes_covered"):
    c = by_name[(m, None)]
    assert c["n_gen"] == 500 and c["n_real"] == 500 and c["real_split"] == "test"
    assert c["feature_network"] == "mnist-cnn-v1" and len(c["feature_network_sha256"]) == 64
    assert c["step"] == 200 and c["config_hash"] == cards.config_hash(config)
    assert c["device_count"] >= 1 and c["packages"]["jax"]
  assert by_name[("kid", None)]["std"] is not None and by_name[("inception_score", None)]["std"] > 0
  assert 1.0 <= by_name[("inception_score", None)]["value"] <= 10.0
  with np.load(workdir / "samples" / "samples_00000200.npz") as f:
    assert f["images"].shape == (500, 28, 28, 1) and f["images"].dtype == np.uint8
  recon = by_name[("recon_accuracy", None)]
  assert 0.1 < recon["value"] <= 1.0 and recon["n_real"] == 10000
  assert recon["feature_network"] == "mnist-cnn-v1" and "on the inputs" in recon["notes"]
  # The k sweep: a tighter bound with more samples (on the same 10k test images), in nats and bits.
  nll1, nll10 = by_name[("nll_iwae", 1)], by_name[("nll_iwae", 10)]
  assert nll10["value"] < nll1["value"] and nll1["std"] > 0 and nll1["n_real"] == 10000
  np.testing.assert_allclose(by_name[("bpd_iwae", 10)]["value"],
                             nll10["value"] / (784 * np.log(2)), rtol=1e-12)


def test_reconstruction_accuracy_counts_the_classes_the_reconstructions_keep(tfds_dir):
  import jax
  import ml_collections
  from gen_jax import data, sharding
  from gen_jax.metrics import networks
  net = networks.load("mnist-cnn-v1")
  mesh = sharding.make_mesh(ml_collections.ConfigDict(
      dict(shape=(-1,), axes=("data",), data_axis="data")))   # the 8 test devices
  rows, labels = data.read_rows("mnist", "test", 0, 504)
  put = lambda a: jax.device_put(a, sharding.data_sharded(mesh, "data"))   # noqa: E731
  images, labels_d = put(rows.astype(np.float32) / 255), put(labels)
  kw = dict(num_examples=500, batch_size=200, mesh=mesh, data_axis="data")  # a partial last batch
  predicted = np.argmax(np.asarray(net.apply(rows[:500].astype(np.float32) / 255)[1]), -1)
  expected = float(np.mean(predicted == labels[:500]))
  same, inputs = evaluate.reconstruction_accuracy(lambda st, b: b["image"], None, images,
                                                  labels_d, net, **kw)
  assert same == inputs == pytest.approx(expected, abs=1e-12) and expected > 0.97
  blank, _ = evaluate.reconstruction_accuracy(lambda st, b: 0 * b["image"], None, images,
                                              labels_d, net, **kw)
  blank_class = int(np.argmax(np.asarray(net.apply(np.zeros((1, 28, 28, 1), np.float32))[1])))
  assert blank == pytest.approx(float(np.mean(labels[:500] == blank_class)), abs=1e-12)


def test_a_better_model_scores_better_and_real_data_sets_the_floor(trained):
  """Real train images against real test images beat a 200-step VAE on every distance."""
  config, _, out = trained
  model = {c["metric"]: c["value"] for c in out if c.get("k") is None}
  floor = {c["metric"]: c["value"] for c in evaluate.real_floor(config, num=500)}
  assert floor["fid"] < model["fid"] / 3
  assert floor["kid"] < model["kid"]
  assert floor["inception_score"] > 9.0 and floor["modes_covered"] == 10
  assert floor["precision"] > 0.6 and floor["recall"] > 0.6


def test_eval_without_a_checkpoint_says_to_train_first(tfds_dir, tmp_path):
  r = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--config=configs/vae_mnist.py:tiny",
                      f"--workdir={tmp_path}", "--mode=eval"], cwd=ROOT, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 1
  assert "no checkpoint" in r.stderr and "train first" in r.stderr
  assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def real_features(tfds_dir):
  from gen_jax.metrics import networks
  net = networks.load("mnist-cnn-v1")
  test, _ = evaluate.real_images("mnist", "test", 1000, seed=0)
  train_, _ = evaluate.real_images("mnist", "train", 1000, seed=0)
  return net, test, evaluate.network_outputs(net, test)[0], evaluate.network_outputs(net, train_)[0]


def _fid(a, b):
  from gen_jax.metrics import fid
  return float(fid.fid(a, b))


@pytest.mark.parametrize("corruption", ["noise", "blur"])
def test_fid_grows_monotonically_as_test_images_are_corrupted(real_features, corruption):
  """FID(train, corrupted test) on the domain network: the floor (clean) first, then rising."""
  from scipy import ndimage
  net, test, test_f, train_f = real_features
  levels = (0.0, 0.1, 0.2, 0.4) if corruption == "noise" else (0.0, 0.5, 1.0, 2.0)
  x = test.astype(np.float32) / 255
  fids = []
  for level in levels:
    if corruption == "noise":
      y = x + level * np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    else:
      y = ndimage.gaussian_filter(x, sigma=(0, level, level, 0)) if level else x
    fids.append(_fid(train_f, evaluate.network_outputs(net, evaluate.to_uint8(np.clip(y, 0, 1)))[0]))
  assert all(a < b for a, b in zip(fids, fids[1:])), fids
  assert fids[-1] > 10 * fids[0], fids
