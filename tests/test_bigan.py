"""BiGAN / ALI steps: shapes, the pairs the discriminator sees, gradient routing, the loop, k-NN."""

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config
from gen_jax import train
from gen_jax.losses import densities
from gen_jax.models.autoencoders import MLPDecoder, MLPEncoder
from gen_jax.models.gan import JointDiscriminator
from gen_jax.representation import knn, probe
from gen_jax.steps import bigan

SHAPE = (8, 8, 1)
Z = 3


def _nets(encoder="deterministic", dropout=0.0):
  return dict(enc=MLPEncoder(hidden=(16,), out_dim=Z * (2 if encoder == "gaussian" else 1)),
              gen=MLPDecoder(hidden=(16,), image_shape=SHAPE),
              disc=JointDiscriminator(x_hidden=(16,), z_hidden=(8,), joint_hidden=(16,),
                                      dropout=dropout))


def _state(nets, encoder="deterministic", tx=None, ema=True):
  tx = tx or {}
  adam = optax.adam(1e-3)
  return bigan.init_state(jax.random.PRNGKey(0), **nets, z_dim=Z, tx_enc=tx.get("enc", adam),
                          tx_gen=tx.get("gen", adam), tx_disc=tx.get("disc", adam),
                          image_shape=SHAPE, encoder=encoder, ema=ema)


def _batch(n=6, seed=1):
  return {"image": jax.random.uniform(jax.random.PRNGKey(seed), (n, *SHAPE))}


def _apply(module, params, *args, **kw):
  return module.apply({"params": params}, *args, **kw)


@pytest.mark.parametrize("encoder", ["deterministic", "gaussian"])
def test_shapes_ranges_and_metrics(encoder):
  nets = _nets(encoder, dropout=0.2)
  state = _state(nets, encoder)
  step = jax.jit(functools.partial(bigan.train_step, **nets, z_dim=Z, encoder=encoder,
                                   ema_decay=0.999))
  state, metrics = step(state, _batch())
  assert int(state.step) == 1
  assert {"loss", "disc_loss", "gen_loss", "enc_loss", "d_real", "d_fake", "disc_grad_norm",
          "gen_grad_norm", "enc_grad_norm", "fake_pixel_std", "code_std"} == set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
  s = bigan.sample(state, jax.random.PRNGKey(2), 5, gen=nets["gen"], z_dim=Z)
  r = bigan.reconstruct(state, _batch(4), enc=nets["enc"], gen=nets["gen"], encoder=encoder)
  assert s.shape == (5, *SHAPE) and r.shape == (4, *SHAPE)
  assert 0 <= float(s.min()) and float(s.max()) <= 1
  assert bigan.encode(state, _batch(4)["image"], enc=nets["enc"], encoder=encoder).shape == (4, Z)
  ev = bigan.eval_step(state, _batch(4), jax.random.PRNGKey(3), **nets, z_dim=Z, encoder=encoder)
  assert {k: v.shape for k, v in ev.items()} == {
      k: (4,) for k in ("d_real", "d_fake", "disc_loss", "recon_mse", "latent_mse")}


def test_discriminator_sees_real_x_with_e_of_x_and_g_of_z_with_z():
  nets = _nets()
  state = _state(nets)
  x, z = _batch()["image"], jax.random.normal(jax.random.PRNGKey(5), (6, Z))
  (xr, zr), (xf, zf) = bigan.pairs(state.params["enc"], state.params["gen"], x, z, enc=nets["enc"],
                                   gen=nets["gen"])
  np.testing.assert_array_equal(xr, x)
  np.testing.assert_allclose(zr, _apply(nets["enc"], state.params["enc"], x), rtol=1e-6)
  np.testing.assert_allclose(xf, jax.nn.sigmoid(_apply(nets["gen"], state.params["gen"], z)),
                             rtol=1e-6)
  np.testing.assert_array_equal(zf, z)


def test_gaussian_encoder_draws_around_its_mean_and_encode_gives_the_mean():
  nets = _nets("gaussian")
  state = _state(nets, "gaussian", ema=False)
  x = _batch()["image"]
  mean, logvar = jnp.split(_apply(nets["enc"], state.params["enc"], x), 2, axis=-1)
  key = jax.random.PRNGKey(9)
  drawn = bigan.encode_codes(nets["enc"], state.params["enc"], x, key, encoder="gaussian")
  np.testing.assert_allclose(drawn, mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape),
                             rtol=1e-5)
  np.testing.assert_allclose(bigan.encode(state, x, enc=nets["enc"], encoder="gaussian"), mean,
                             rtol=1e-6)


def _only(name, lr=0.1):
  """Optimizers that move network ``name`` by plain SGD and leave the other two untouched."""
  return {n: optax.sgd(lr) if n == name else optax.set_to_zero() for n in ("enc", "gen", "disc")}


@pytest.mark.parametrize("name", ["enc", "gen", "disc"])
def test_each_network_moves_by_its_own_loss_gradient_and_the_others_stay(name):
  """A known-value check of the whole step: with SGD on one network and frozen others, that
  network's update is -lr times the gradient of its loss written out by hand."""
  nets = _nets()
  state = _state(nets, tx=_only(name), ema=False)
  x = _batch()["image"]
  new, _ = bigan.train_step(state, {"image": x}, **nets, z_dim=Z, ema_decay=0.999)
  for other in {"enc", "gen", "disc"} - {name}:
    for a, b in zip(jax.tree.leaves(state.params[other]), jax.tree.leaves(new.params[other])):
      np.testing.assert_array_equal(a, b)
  p = state.params
  d = lambda dp, xx, zz: _apply(nets["disc"], dp, xx, zz, train=False)
  e = lambda ep, xx: _apply(nets["enc"], ep, xx)
  g = lambda gp, zz: jax.nn.sigmoid(_apply(nets["gen"], gp, zz))
  if name == "disc":     # noise of the D step: the first of three keys of step_key(0)
    z = jax.random.normal(jax.random.split(state.step_key(0), 3)[0], (6, Z))
    loss = lambda dp: jnp.mean(densities.softplus(-d(dp, x, e(p["enc"], x)))
                               + densities.softplus(d(dp, g(p["gen"], z), z)))
  else:                  # noise of the E/G step: the first of two keys of step_key(1)
    z = jax.random.normal(jax.random.split(state.step_key(1))[0], (6, Z))
    if name == "enc":    # labels flipped: -log(1 - D(x, E(x)))
      loss = lambda ep: jnp.mean(densities.softplus(d(p["disc"], x, e(ep, x))))
    else:                # -log D(G(z), z)
      loss = lambda gp: jnp.mean(densities.softplus(-d(p["disc"], g(gp, z), z)))
  want = jax.tree.map(lambda w, gr: w - 0.1 * gr, p[name], jax.grad(loss)(p[name]))
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(new.params[name])):
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6)


def test_ema_follows_the_trained_weights_with_the_warm_up_decay():
  nets = _nets()
  state = _state(nets)
  new, _ = bigan.train_step(state, _batch(), **nets, z_dim=Z, ema_decay=0.999)
  for name in ("enc", "gen"):   # decay at step 0 is 1/10: ema = 0.1 * init + 0.9 * new
    want = jax.tree.map(lambda a, b: 0.1 * a + 0.9 * b, state.params[name], new.params[name])
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(new.extra["ema"][name])):
      np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
  assert "disc" not in new.extra["ema"]


def test_bad_choices_are_clear_errors():
  nets = _nets()
  with pytest.raises(ValueError, match="wgan_gp.*not supported by the BiGAN family"):
    bigan.train_step(_state(nets), _batch(), **nets, z_dim=Z, ema_decay=0.999, loss="wgan_gp")
  with pytest.raises(ValueError, match="encoder gives 3 outputs but a gaussian encoder"):
    _state(nets, "gaussian")
  with pytest.raises(ValueError, match="unknown model.prior 'cauchy'"):
    bigan.check(loss="hinge", encoder="gaussian", prior="cauchy")


# ---------------------------------------------------------------------------------------------
# k-NN against a NumPy brute force.


def _numpy_knn(train, train_y, test, k, metric):
  train, test = np.asarray(train, np.float64), np.asarray(test, np.float64)
  if metric == "cosine":
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
  d = ((test[:, None, :] - train[None, :, :]) ** 2).sum(-1)
  nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
  return np.array([np.bincount(train_y[row], minlength=10).argmax() for row in nearest])


@pytest.mark.parametrize("k,metric", [(1, "euclidean"), (5, "euclidean"), (1, "cosine"), (4, "cosine")])
def test_knn_matches_numpy_brute_force(k, metric):
  rng = np.random.default_rng(k)
  centres = rng.normal(size=(10, 6)) * 1.5
  train_y, test_y = rng.integers(0, 10, 300), rng.integers(0, 10, 77)
  train = centres[train_y] + rng.normal(size=(300, 6))
  test = centres[test_y] + rng.normal(size=(77, 6))
  want = _numpy_knn(train, train_y, test, k, metric)
  # blocks of 16 test rows (77 is not a multiple): the blocking and padding are exercised
  got = knn.knn_predict(train, train_y, test, k, metric=metric, block_size=16)
  np.testing.assert_array_equal(np.asarray(got), want)
  acc = knn.knn_accuracy(train, train_y, test, test_y, k, metric=metric, block_size=16)
  assert acc == pytest.approx(np.mean(want == test_y))
  assert 0.3 < acc < 1.0   # a task that is neither trivial nor hopeless


def test_knn_on_a_mesh_equals_one_device_and_exact_copies_are_found():
  from gen_jax import sharding
  import ml_collections
  rng = np.random.default_rng(0)
  train, train_y = rng.normal(size=(200, 5)), rng.integers(0, 10, 200)
  mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(shape=(8,), axes=("data",),
                                                           data_axis="data")))
  one = knn.knn_predict(train, train_y, train[:50], 1, block_size=8)
  eight = knn.knn_predict(train, train_y, train[:50], 1, block_size=8, mesh=mesh,
                                    data_axis="data")
  np.testing.assert_array_equal(one, eight)
  np.testing.assert_array_equal(one, train_y[:50])   # each point's nearest is itself
  with pytest.raises(ValueError, match="k=201 must be between 1 and the number of train rows"):
    knn.knn_predict(train, train_y, train, 201)
  with pytest.raises(ValueError, match="2-D features of one width"):
    knn.knn_predict(train, train_y, train[:, :3], 1)


# ---------------------------------------------------------------------------------------------
# The real loop.


SMALL = {"model.disc_x_hidden": (32,), "model.disc_z_hidden": (16,),
         "model.disc_joint_hidden": (32,)}


def _rows(workdir):
  return [json.loads(line) for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]


@pytest.mark.heavy
def test_tiny_config_trains_through_the_loop_and_the_probes_read_its_checkpoint(tfds_dir,
                                                                                  tmp_path):
  config = tiny_config("bigan_mnist", **SMALL)
  train.train_and_evaluate(config, str(tmp_path))
  rows = _rows(tmp_path)
  last_train = [r for r in rows if "train/loss" in r][-1]
  for k in ("disc_loss", "gen_loss", "enc_loss", "d_real", "d_fake", "disc_grad_norm",
            "gen_grad_norm", "enc_grad_norm"):
    assert np.isfinite(last_train[f"train/{k}"]), k
  assert [r["step"] for r in rows if "eval/latent_mse" in r] == [10, 20]
  assert {p.name for p in tmp_path.glob("*.png")} >= {"samples_00000020.png",
                                                       "reconstructions_00000020.png"}
  # The probes (launch.py --mode=probe) on that run's encoder, shrunk.
  p = config.probe
  p.num_train, p.num_test, p.sizes, p.draws, p.l2s = 1000, 200, (1000,), 1, (1e-2,)
  p.knn_ks, p.baselines, p.trust_num = (1,), (), 0
  cards = probe.evaluate_workdir(config, tmp_path, command="test")
  assert [(c["metric"], c["features"], c["step"]) for c in cards] == [
      ("linear_probe_accuracy", "encoder", 20), ("knn_accuracy", "encoder", 20)]
  assert 0.1 < cards[1]["value"] <= 1.0 and cards[1]["k"] == 1
  assert json.loads((tmp_path / "probe_cards.jsonl").read_text().splitlines()[1]) == cards[1]


@pytest.mark.slow
def test_resume_is_bit_identical_and_eight_devices_match_one(tfds_dir, tmp_path):
  from test_train import check_devices, check_resume
  make_config = functools.partial(tiny_config, "bigan_mnist", **SMALL)
  check_resume(make_config, tmp_path / "resume")
  check_devices(make_config, tmp_path / "devices", rel=1e-4)
