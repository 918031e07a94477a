"""VAE-GAN steps: shapes, the feature-space reconstruction term, gradient routing, EMA, the loop."""

import functools
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config
from gen_jax import train
from gen_jax.losses import gan as gan_losses
from gen_jax.losses import densities
from gen_jax.models.autoencoders import MLPDecoder, MLPEncoder
from gen_jax.models.gan import FeatureDiscriminator
from gen_jax.steps import vaegan

SHAPE = (8, 8, 1)
Z = 3


def _nets(disc_arch="mlp"):
  return dict(enc=MLPEncoder(hidden=(16,), out_dim=2 * Z),
              dec=MLPDecoder(hidden=(16,), image_shape=SHAPE),
              disc=FeatureDiscriminator(arch=disc_arch, hidden=(16, 8), channels=(4,)))


def _state(nets, tx=None, ema=True):
  tx = tx or {}
  adam = optax.adam(1e-3)
  return vaegan.init_state(jax.random.PRNGKey(0), **nets, latent_dim=Z, tx_enc=tx.get("enc", adam),
                           tx_dec=tx.get("dec", adam), tx_disc=tx.get("disc", adam),
                           image_shape=SHAPE, ema=ema)


def _batch(n=6, seed=1):
  return {"image": jax.random.uniform(jax.random.PRNGKey(seed), (n, *SHAPE))}


def _apply(module, params, *args, **kw):
  return module.apply({"params": params}, *args, **kw)


@pytest.mark.parametrize("disc_arch", ["mlp", "conv"])
def test_shapes_ranges_and_metrics(disc_arch):
  nets = _nets(disc_arch)
  state = _state(nets)
  step = jax.jit(functools.partial(vaegan.train_step, **nets, latent_dim=Z, gamma=0.5,
                                   ema_decay=0.999))
  state, metrics = step(state, _batch())
  assert int(state.step) == 1
  assert {"loss", "enc_loss", "dec_loss", "disc_loss", "kl", "feat_recon", "pixel_nll", "gan_dec",
          "d_real", "d_fake", "d_recon", "enc_grad_norm", "dec_grad_norm", "disc_grad_norm",
          "fake_pixel_std"} == set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["loss"]) == pytest.approx(float(metrics["kl"] + metrics["feat_recon"]),
                                                 rel=1e-5)
  s = vaegan.sample(state, jax.random.PRNGKey(2), 5, dec=nets["dec"], latent_dim=Z)
  r = vaegan.reconstruct(state, _batch(4), enc=nets["enc"], dec=nets["dec"])
  assert s.shape == (5, *SHAPE) and r.shape == (4, *SHAPE)
  assert 0 <= float(min(s.min(), r.min())) and float(max(s.max(), r.max())) <= 1
  assert vaegan.encode(state, _batch(4)["image"], enc=nets["enc"]).shape == (4, Z)
  ev = vaegan.eval_step(state, _batch(4), jax.random.PRNGKey(3), **nets, latent_dim=Z)
  assert {k: v.shape for k, v in ev.items()} == {k: (4,) for k in (
      "kl", "feat_recon", "pixel_nll", "pixel_mse", "d_real", "d_recon", "d_fake", "disc_loss")}


def test_feature_recon_is_half_the_squared_distance_of_discriminator_features():
  a = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
  b = jnp.array([[1.0, 0.0, 4.0], [1.0, 1.0, 1.0]])
  np.testing.assert_allclose(vaegan.feature_recon(a, b), [0.5 * (4 + 1), 0.5 * 3])


def test_forward_terms_against_a_hand_computation():
  """kl, feat_recon (in Dis's last hidden layer, Dis_l), the GAN losses, by hand from the modules."""
  nets = _nets()
  state = _state(nets)
  p, x, key = state.params, _batch()["image"], jax.random.PRNGKey(4)
  terms = vaegan.forward(p["enc"], p["dec"], p["disc"], x, key, **nets)
  mean, logvar = jnp.split(_apply(nets["enc"], p["enc"], x), 2, axis=-1)
  eps_key, prior_key = jax.random.split(key)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(eps_key, mean.shape)
  z_p = jax.random.normal(prior_key, mean.shape)
  x_rec = jax.nn.sigmoid(_apply(nets["dec"], p["dec"], z))
  x_p = jax.nn.sigmoid(_apply(nets["dec"], p["dec"], z_p))
  d = lambda v: _apply(nets["disc"], p["disc"], v, train=False)
  (d_x, f_x), (d_rec, f_rec), (d_p, _) = d(x), d(x_rec), d(x_p)
  assert f_x.shape == (6, 8)   # the last hidden layer of Dis (hidden=(16, 8))
  np.testing.assert_allclose(terms["feat_recon"], 0.5 * ((f_rec - f_x) ** 2).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(terms["kl"], densities.gaussian_kl(mean, logvar), rtol=1e-5)
  sp = densities.softplus
  np.testing.assert_allclose(terms["disc_loss"], sp(-d_x) + 0.5 * (sp(d_rec) + sp(d_p)), rtol=1e-5)
  np.testing.assert_allclose(terms["gan_dec"], 0.5 * (sp(-d_rec) + sp(-d_p)), rtol=1e-5)
  np.testing.assert_allclose(terms["recon"], x_rec, rtol=1e-5)
  np.testing.assert_allclose(terms["pixel_nll"], -densities.bernoulli_log_prob(
      _apply(nets["dec"], p["dec"], z), x), rtol=1e-5)


def test_each_network_gets_only_its_own_error_signal():
  """Enc: KL + feat_recon (no GAN term); Dec: gamma * feat_recon + GAN term; Dis: L_GAN only."""
  nets = _nets()
  state = _state(nets)
  p, x, key = state.params, _batch()["image"], jax.random.PRNGKey(6)
  gamma = 0.3
  mean_of = lambda k, e, dd, ds=p["disc"]: vaegan.forward(e, dd, ds, x, key, **nets)[k].mean()
  _, (g_enc, g_dec), _ = vaegan.enc_dec_grads(p["enc"], p["dec"], p["disc"], x, key, **nets,
                                              gamma=gamma)
  want_enc = jax.grad(lambda e: mean_of("kl", e, p["dec"]) + mean_of("feat_recon", e, p["dec"]))(p["enc"])
  want_dec = jax.grad(lambda dd: gamma * mean_of("feat_recon", p["enc"], dd)
                      + mean_of("gan_dec", p["enc"], dd))(p["dec"])
  (_, _), g_disc = jax.value_and_grad(vaegan.disc_loss_fn, has_aux=True)(
      p["disc"], p["enc"], p["dec"], x, key, **nets)
  want_disc = jax.grad(lambda ds: mean_of("disc_loss", p["enc"], p["dec"], ds))(p["disc"])
  for got, want in ((g_enc, want_enc), (g_dec, want_dec), (g_disc, want_disc)):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # ... and the GAN term does move the encoder if it were included: the check can fail.
  gan_on_enc = jax.grad(lambda e: mean_of("gan_dec", e, p["dec"]))(p["enc"])
  assert max(float(jnp.abs(v).max()) for v in jax.tree.leaves(gan_on_enc)) > 1e-6


@pytest.mark.parametrize("name", ["enc", "dec", "disc"])
def test_each_optimizer_moves_only_its_network(name):
  nets = _nets()
  tx = {n: optax.sgd(0.1) if n == name else optax.set_to_zero() for n in ("enc", "dec", "disc")}
  state = _state(nets, tx=tx, ema=False)
  new, _ = vaegan.train_step(state, _batch(), **nets, latent_dim=Z, gamma=1.0, ema_decay=0.999)
  for n in ("enc", "dec", "disc"):
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params[n]),
                                                    jax.tree.leaves(new.params[n])))
    assert same == (n != name), n


def test_ema_follows_the_trained_weights_and_sampling_uses_it():
  nets = _nets()
  state = _state(nets)
  new, _ = vaegan.train_step(state, _batch(), **nets, latent_dim=Z, gamma=1.0, ema_decay=0.999)
  for name in ("enc", "dec"):   # decay at step 0 is 1/10: ema = 0.1 * init + 0.9 * new
    want = jax.tree.map(lambda a, b: 0.1 * a + 0.9 * b, state.params[name], new.params[name])
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(new.extra["ema"][name])):
      np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
  key = jax.random.PRNGKey(8)
  z = jax.random.normal(key, (3, Z))
  np.testing.assert_allclose(
      vaegan.sample(new, key, 3, dec=nets["dec"], latent_dim=Z),
      jax.nn.sigmoid(_apply(nets["dec"], new.extra["ema"]["dec"], z)), rtol=1e-6)


def test_bad_choices_are_clear_errors():
  nets = _nets()
  with pytest.raises(ValueError, match="model.loss='wasserstein' is not supported by the VAE-GAN"):
    vaegan.train_step(_state(nets), _batch(), **nets, latent_dim=Z, gamma=1.0, ema_decay=0.999,
                       loss="wasserstein")
  with pytest.raises(ValueError, match="encoder gives 6 outputs; a Gaussian q.z.x. of a 4-d code"):
    vaegan.init_state(jax.random.PRNGKey(0), **nets, latent_dim=4, tx_enc=optax.sgd(1),
                      tx_dec=optax.sgd(1), tx_disc=optax.sgd(1), image_shape=SHAPE)
  assert "hinge" in vaegan.LOSSES and set(vaegan.LOSSES) <= set(gan_losses.LOSSES)


SMALL = {"model.channels": (4, 8), "model.disc_channels": (4, 8)}


@pytest.mark.slow   # the loop's own tests cover the mechanism for the VAE (test_train)
def test_tiny_config_trains_through_the_loop(tfds_dir, tmp_path):
  config = tiny_config("vaegan_mnist", **SMALL)
  train.train_and_evaluate(config, str(tmp_path))
  rows = [json.loads(line) for line in pathlib.Path(tmp_path, "metrics.jsonl").read_text().splitlines()]
  last_train = [r for r in rows if "train/loss" in r][-1]
  for k in ("enc_loss", "dec_loss", "disc_loss", "kl", "feat_recon", "d_real", "d_fake",
            "enc_grad_norm", "dec_grad_norm", "disc_grad_norm"):
    assert np.isfinite(last_train[f"train/{k}"]), k
  assert [r["step"] for r in rows if "eval/feat_recon" in r] == [10, 20]
  assert {p.name for p in tmp_path.glob("*.png")} >= {"samples_00000020.png",
                                                       "reconstructions_00000020.png"}


def test_feature_layer_picks_the_hidden_layer_of_the_reconstruction_term():
  x = _batch()["image"]
  for arch, layer, width in (("mlp", 0, 16), ("mlp", -1, 8), ("conv", 0, 4 * 4 * 4), ("conv", 1, 16)):
    disc = FeatureDiscriminator(arch=arch, hidden=(16, 8), channels=(4,), feature_layer=layer)
    params = disc.init(jax.random.PRNGKey(0), x)["params"]
    logits, feats = disc.apply({"params": params}, x)
    assert logits.shape == (6,) and feats.shape == (6, width), (arch, layer)
  with pytest.raises(ValueError, match="feature_layer=2 but the discriminator has 2 hidden layers"):
    FeatureDiscriminator(hidden=(16, 8), feature_layer=2).init(jax.random.PRNGKey(0), x)


class _FlaxConvEncoder(nn.Module):   # the conv encoder as written with flax's convolutions
  @nn.compact
  def __call__(self, x):
    for c in (4, 8):
      x = nn.relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME")(x))
    h = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
    return nn.Dense(6)(h)


class _FlaxConvDecoder(nn.Module):
  @nn.compact
  def __call__(self, z):
    h = nn.relu(nn.Dense(16)(z))
    h = nn.relu(nn.Dense(7 * 7 * 8)(h)).reshape(-1, 7, 7, 8)
    h = nn.relu(nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding="SAME")(h))
    return nn.ConvTranspose(1, (4, 4), strides=(2, 2), padding="SAME")(h)


def test_conv_encoder_and_decoder_equal_their_flax_convolution_versions():
  """Same parameter names, shapes and initial values as nn.Conv / nn.ConvTranspose (so older
  checkpoints restore), and the same outputs to float rounding."""
  from gen_jax.models import autoencoders
  x = jax.random.uniform(jax.random.PRNGKey(1), (3, 28, 28, 1))
  z = jax.random.normal(jax.random.PRNGKey(2), (3, 5))
  pairs = ((_FlaxConvEncoder(), autoencoders.ConvEncoder(channels=(4, 8), hidden=16, out_dim=6), x),
           (_FlaxConvDecoder(),
            autoencoders.ConvDecoder(channels=(4, 8), hidden=16, image_shape=(28, 28, 1)), z))
  for ref, ours, inp in pairs:
    params = ref.init(jax.random.PRNGKey(0), inp)
    same_init = ours.init(jax.random.PRNGKey(0), inp)
    assert jax.tree.structure(params) == jax.tree.structure(same_init)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(same_init), strict=True):
      np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ours.apply(params, inp), ref.apply(params, inp), atol=1e-5)


@pytest.mark.slow
def test_resume_is_bit_identical_and_eight_devices_match_one(tfds_dir, tmp_path):
  from test_train import check_devices, check_resume
  make_config = functools.partial(tiny_config, "vaegan_mnist", **SMALL)
  check_resume(make_config, tmp_path / "resume")
  check_devices(make_config, tmp_path / "devices", rel=1e-4)
