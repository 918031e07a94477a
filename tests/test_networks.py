"""The shipped domain feature networks: accuracy on the real test splits, hash pinning, errors."""

import dataclasses
import hashlib
import shutil
import tomllib

import jax
import numpy as np
import pytest

from conftest import ROOT
from gen_jax.metrics import classifier as clf
from gen_jax.metrics import networks


@pytest.fixture(scope="module")
def mnist_outputs(tfds_dir):
  net = networks.load("mnist-cnn-v1")
  images, labels = networks.labelled_test_split("mnist")
  features, probs = networks.outputs(net, images)
  return features, probs, labels


def test_every_registered_network_ships_with_its_pinned_hash():
  assert set(networks.DEFAULT_FOR_DATASET.values()) <= set(networks.NETWORKS)
  for name, spec in networks.NETWORKS.items():
    assert spec.path.parent == networks.WEIGHTS_DIR
    assert spec.path.name == networks.weights_file_name(name)
    data = spec.path.read_bytes()
    assert len(data) < 1_000_000
    assert hashlib.sha256(data).hexdigest() == spec.sha256
    net = networks.load(name)
    assert (net.name, net.sha256, net.num_classes, net.feature_dim) == (name, spec.sha256, 10, 128)


def test_weights_are_package_data():
  """A non-editable install carries the files the registry names (pyproject package-data)."""
  config = tomllib.loads((ROOT / "pyproject.toml").read_text())
  patterns = config["tool"]["setuptools"]["package-data"]["gen_jax.metrics"]
  package_dir = ROOT / "gen_jax" / "metrics"
  shipped = {p for pattern in patterns for p in package_dir.glob(pattern)}
  assert {spec.path for spec in networks.NETWORKS.values()} <= shipped


def test_mnist_network_accuracy_inception_score_and_mode_coverage(mnist_outputs):
  features, probs, labels = mnist_outputs
  assert features.shape == (10_000, 128) and probs.shape == (10_000, 10)
  assert features.dtype == probs.dtype == np.float32
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  assert np.mean(probs.argmax(-1) == labels) >= 0.993       # measured 0.9960
  score, _ = clf.inception_score(probs)
  assert score > 9.5                                         # measured 9.87 (at most 10)
  coverage = clf.mode_coverage(clf.label_histogram(probs))
  assert coverage["kl_to_uniform"] < 0.01                   # measured 0.0018
  assert coverage["modes_covered"] == 10


def test_fashion_mnist_network_accuracy(tfds_dir):
  net = networks.load("fashion-mnist-cnn-v1")
  images, labels = networks.labelled_test_split("fashion_mnist")
  assert networks.accuracy(net, images, labels) >= 0.915    # measured 0.9390


def test_apply_is_a_pure_jittable_function_of_each_image():
  net = networks.load("mnist-cnn-v1")
  x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (6, 28, 28, 1)))
  features, probs = net.apply(x)
  jit_features, jit_probs = jax.jit(net.apply)(x)
  np.testing.assert_allclose(jit_features, features, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jit_probs, probs, rtol=1e-5, atol=1e-7)
  part_features, _ = net.apply(x[:2])                       # no batch statistics: row by row
  np.testing.assert_allclose(part_features, features[:2], rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"shape \(N, 28, 28, 1\)"):
    net.apply(np.zeros((2, 32, 32, 3), np.float32))


def test_outputs_streams_uint8_and_float_images_alike():
  net = networks.load("mnist-cnn-v1")
  pixels = np.asarray(jax.random.randint(jax.random.PRNGKey(0), (25, 28, 28), 0, 256), np.uint8)
  f8, p8 = networks.outputs(net, pixels, batch_size=10)     # (N, H, W), a padded last batch
  want_f, want_p = net.apply(pixels[..., None].astype(np.float32) / 255.0)
  np.testing.assert_allclose(f8, want_f, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(p8, want_p, rtol=1e-5, atol=1e-6)
  ff, _ = networks.outputs(net, pixels[..., None].astype(np.float32) / 255.0, batch_size=7)
  np.testing.assert_allclose(ff, f8, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match=r"\[0, 1\].*divide by 255"):
    networks.outputs(net, pixels.astype(np.float32))
  with pytest.raises(ValueError, match="uint8"):
    networks.outputs(net, pixels.astype(np.int32))


def test_a_changed_weights_file_is_refused(tmp_path):
  spec = networks.NETWORKS["mnist-cnn-v1"]
  data = bytearray(spec.path.read_bytes())
  data[len(data) // 2] ^= 0x01                              # one bit of one weight
  path = tmp_path / "mnist_cnn_v1.msgpack"
  path.write_bytes(bytes(data))
  changed = hashlib.sha256(bytes(data)).hexdigest()
  registry = {"mnist-cnn-v1": dataclasses.replace(spec, file=str(path))}
  with pytest.raises(networks.WeightsHashError) as e:
    networks.load("mnist-cnn-v1", registry=registry)
  message = str(e.value)
  assert str(path) in message and changed in message and spec.sha256 in message
  assert "new version name" in message


def test_weights_of_another_architecture_are_refused(tmp_path):
  spec = networks.NETWORKS["mnist-cnn-v1"]
  path = tmp_path / "w.msgpack"
  shutil.copy(spec.path, path)
  other = dataclasses.replace(spec, file=str(path), arch=dict(spec.arch, hidden=64))
  with pytest.raises(ValueError, match="registered architecture|has shape"):
    networks.load("x", registry={"x": other})


def test_unknown_name_lists_the_known_networks():
  with pytest.raises(ValueError, match="unknown feature network 'mnist-cnn-v9'.*mnist-cnn-v1"):
    networks.load("mnist-cnn-v9")


def test_missing_weights_file_is_a_clear_error(tmp_path):
  spec = dataclasses.replace(networks.NETWORKS["mnist-cnn-v1"], file=str(tmp_path / "gone.msgpack"))
  with pytest.raises(FileNotFoundError, match="gone.msgpack.*ship inside the package"):
    networks.load("x", registry={"x": spec})
