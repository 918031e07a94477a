"""The classifier family: augmentation, steps, the loop passing labels, and export to a weights file."""

import functools
import json
import pathlib

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from gen_jax import checkpoint, train
from gen_jax.metrics import networks
from gen_jax.models.classifier import CNN
from gen_jax.steps import classifier
from tools import export_network

SHAPE = (28, 28, 1)


def _tiny_config(**overrides):
  """configs/classifier_mnist.py:tiny with a 1-conv model and 60 steps: seconds on a CPU."""
  c = export_network.load_config(str(ROOT / "configs" / "classifier_mnist.py") + ":tiny")
  c.model.stages = ((8,),)
  c.model.extra_pools = 2
  c.model.feature_dim = 32
  c.batch_size = 64
  c.num_steps = 60
  c.steps_per_dispatch = 30
  c.optimizer.learning_rate = 3e-3
  c.eval.every_steps = 60
  c.checkpoint.every_steps = 60
  c.checkpoint.async_save = False
  c.tensorboard = False
  c.mesh.shape = (8,)   # labels sharded like the images: a misaligned gather would be at chance
  for path, value in overrides.items():
    node = c
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.fixture(scope="module")
def tiny_run(tfds_dir, tmp_path_factory):
  """One tiny classifier run through the loop, shared by the loop and export tests."""
  workdir = tmp_path_factory.mktemp("classifier_run")
  config = _tiny_config()
  final = train.train_and_evaluate(config, str(workdir))
  return config, workdir, final


def test_default_cnn_has_the_registered_size_and_a_128d_feature_layer():
  model = CNN()
  x = jnp.zeros((2, *SHAPE))
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  # 3x3 convs 1->32->32, 32->64->64, dense 4*4*64->128, dense 128->10: 0.79 MB in float32.
  assert sum(v.size for v in jax.tree.leaves(variables)) == (
      (9 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64)
      + (1024 * 128 + 128) + (128 * 10 + 10)) == 197_482
  logits, features = jax.eval_shape(
      lambda v: model.apply(v, x, return_features=True), variables)
  assert logits.shape == (2, 10) and features.shape == (2, 128)


def test_augment_without_shift_or_flip_is_the_identity():
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, *SHAPE))
  np.testing.assert_array_equal(classifier.augment(jax.random.PRNGKey(1), x), x)


def test_augment_shifts_each_image_by_at_most_max_shift_pixels():
  x = jnp.zeros((256, *SHAPE)).at[:, 14, 14, 0].set(1.0)   # one lit pixel in the middle
  y = np.asarray(classifier.augment(jax.random.PRNGKey(0), x, max_shift=2))
  assert np.all(y.sum(axis=(1, 2, 3)) == 1.0)                # moved, never lost or duplicated
  rows, cols = np.nonzero(y[..., 0])[1:]
  offsets = set(zip(rows - 14, cols - 14))
  assert all(abs(dr) <= 2 and abs(dc) <= 2 for dr, dc in offsets)
  assert len(offsets) == 25                                  # every offset in [-2, 2]^2 occurs


def test_augment_flips_about_half_of_the_images_left_right():
  x = jax.random.uniform(jax.random.PRNGKey(0), (200, *SHAPE))
  y = np.asarray(classifier.augment(jax.random.PRNGKey(3), x, flip=True))
  x = np.asarray(x)
  same = np.all(y == x, axis=(1, 2, 3))
  mirrored = np.all(y == x[:, :, ::-1], axis=(1, 2, 3))
  assert np.all(same ^ mirrored)
  assert 70 < mirrored.sum() < 130


def _state(model):
  init = functools.partial(classifier.init_state, model=model, tx=optax.adam(1e-2),
                           image_shape=SHAPE)
  return jax.jit(init)(jax.random.key_data(jax.random.key(0)))


def test_eval_step_gives_per_example_accuracy_and_cross_entropy():
  model = CNN(stages=((4,),), extra_pools=2, hidden=16)
  state = _state(model)
  x = jax.random.uniform(jax.random.PRNGKey(1), (8, *SHAPE))
  labels = jnp.arange(8) % 10
  out = jax.jit(functools.partial(classifier.eval_step, model=model))(
      state, {"image": x, "label": labels}, jax.random.PRNGKey(2))
  logits = np.asarray(jax.jit(model.apply)({"params": state.params[classifier.NET]}, x), np.float64)
  log_p = logits - logits.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  np.testing.assert_allclose(out["cross_entropy"], -log_p[np.arange(8), labels], rtol=1e-5)
  np.testing.assert_array_equal(out["accuracy"], (logits.argmax(-1) == np.asarray(labels)))


def test_train_steps_learn_a_separable_batch():
  model = CNN(stages=((4,),), extra_pools=0, hidden=16)
  state = _state(model)
  labels = jnp.arange(20) % 10
  rows = jnp.arange(28)[None, :] // 2 == labels[:, None] + 2         # class c lights rows 2c+4..
  image = jnp.broadcast_to(rows[:, :, None, None], (20, *SHAPE)).astype(jnp.float32)
  step = jax.jit(lambda s, b: classifier.train_step(s, b, model=model))
  losses = []
  for _ in range(40):
    state, metrics = step(state, {"image": image, "label": labels})
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 40
  assert losses[-1] < 0.25 * losses[0]
  out = classifier.eval_step(state, {"image": image, "label": labels}, None, model=model)
  np.testing.assert_array_equal(out["accuracy"], 1.0)


def test_a_batch_without_labels_is_a_clear_error():
  model = CNN(stages=((4,),), extra_pools=2, hidden=16)
  with pytest.raises(ValueError, match="labelled data"):
    classifier.train_step(_state(model), {"image": jnp.zeros((2, *SHAPE))}, model=model)


def test_the_loop_passes_labels_and_the_classifier_learns(tiny_run):
  _, workdir, final = tiny_run
  assert final["step"] == 60
  assert final["eval/accuracy"] > 0.4          # chance is 0.1; ~0.6 after 60 steps
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train_acc = [r["train/accuracy"] for r in rows if "train/accuracy" in r]
  assert len(train_acc) == 2 and train_acc[-1] > train_acc[0]


def test_unlabelled_dataset_is_refused_by_the_classifier(tfds_dir, tmp_path):
  with pytest.raises(ValueError, match="labelled data"):
    train.train_and_evaluate(_tiny_config(**{"dataset.name": "binarized_mnist"}), str(tmp_path))


def test_export_round_trip_gives_the_checkpoint_network(tiny_run, tmp_path):
  config, workdir, _ = tiny_run
  path, digest, spec = export_network.export(config, workdir, "tiny-cnn-v1", out_dir=tmp_path)
  assert path == tmp_path / "tiny_cnn_v1.msgpack"
  assert spec.sha256 == digest and spec.dataset == "mnist"
  assert spec.arch == dict(stages=((8,),), extra_pools=2, hidden=32, num_classes=10)

  family = classifier.from_config(config, SHAPE)
  ckpt = checkpoint.Checkpointer(pathlib.Path(workdir) / "checkpoints")
  try:
    state = ckpt.restore(jax.jit(family.init)(jax.random.PRNGKey(0)))
  finally:
    ckpt.close()
  params = jax.device_get(state.params[classifier.NET])
  # The file holds exactly the checkpoint's parameters ...
  restored = flax.serialization.msgpack_restore(path.read_bytes())
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(params), strict=True):
    np.testing.assert_array_equal(a, b)
  # ... and the loaded network computes what the checkpoint's model does.
  net = networks.load("tiny-cnn-v1", registry={"tiny-cnn-v1": spec})
  x = jax.random.uniform(jax.random.PRNGKey(5), (16, *SHAPE))
  features, probs = net.apply(x)
  model = CNN(**spec.arch, precision="highest")
  logits, want_features = model.apply({"params": params}, x, return_features=True)
  np.testing.assert_allclose(features, want_features, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-6, atol=1e-7)


def test_export_refuses_a_new_file_under_a_registered_name(tiny_run, tmp_path, monkeypatch):
  config, workdir, _ = tiny_run
  registered = networks.NetworkSpec(file="x.msgpack", sha256="0" * 64, arch={}, dataset="mnist")
  monkeypatch.setitem(networks.NETWORKS, "tiny-cnn-v1", registered)
  with pytest.raises(networks.WeightsHashError, match="new version name"):
    export_network.export(config, workdir, "tiny-cnn-v1", out_dir=tmp_path)
  assert not (tmp_path / "tiny_cnn_v1.msgpack").exists()


def test_export_command_prints_the_sha256_and_the_registry_entry(tiny_run, tmp_path, capsys):
  _, workdir, _ = tiny_run
  config_file = tmp_path / "tiny_classifier.py"
  config_file.write_text(
      "import sys\nsys.path.insert(0, %r)\nfrom test_classifier import _tiny_config\n"
      "def get_config(arg=None):\n  return _tiny_config()\n" % str(ROOT / "tests"))
  rc = export_network.main([f"--config={config_file}", f"--workdir={workdir}",
                            "--name=tiny-cnn-v1", f"--out_dir={tmp_path}", "--skip_accuracy"])
  out = capsys.readouterr().out
  digest = networks._sha256((tmp_path / "tiny_cnn_v1.msgpack").read_bytes())
  assert rc == 0
  assert f"sha256 {digest}" in out
  assert f"'tiny-cnn-v1': NetworkSpec(file='{tmp_path / 'tiny_cnn_v1.msgpack'}'" in out


def test_export_of_a_workdir_without_checkpoints_is_a_clear_error(tmp_path, capsys):
  rc = export_network.main([f"--config={ROOT / 'configs' / 'classifier_mnist.py'}",
                            f"--workdir={tmp_path}", "--name=x-v1", f"--out_dir={tmp_path}"])
  assert rc == 1
  assert "no checkpoint in" in capsys.readouterr().err
