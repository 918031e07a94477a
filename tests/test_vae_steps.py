"""The step functions as a research script uses them: bound with partial, jitted by the caller."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.losses import densities
from gen_jax.models.autoencoders import VAE, Autoencoder
from gen_jax.steps import ae, vae

SHAPE = (8, 8, 1)


def _batch(n=16, seed=0):
  return {"image": (jax.random.uniform(jax.random.PRNGKey(seed), (n, *SHAPE)) > 0.6).astype(jnp.float32)}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_vae_train_step_jits_and_reduces_the_loss(arch):
  model = VAE(arch=arch, hidden=(32,), latent_dim=4, image_shape=SHAPE, channels=(8, 16))
  state = vae.init_state(jax.random.PRNGKey(0), model=model, tx=optax.adam(1e-2), image_shape=SHAPE)
  step = jax.jit(functools.partial(vae.train_step, model=model, beta=1.0), donate_argnums=0)
  batch = _batch()
  state, first = step(state, batch)
  for _ in range(60):
    state, last = step(state, batch)
  assert int(state.step) == 61
  assert float(last["loss"]) < (0.8 if arch == "mlp" else 0.95) * float(first["loss"])
  assert float(last["neg_elbo"]) == pytest.approx(float(last["recon"] + last["kl"]), rel=1e-5)


def test_beta_scales_only_the_kl_term():
  model = VAE(arch="mlp", hidden=(16,), latent_dim=3, image_shape=SHAPE)
  params = model.init(jax.random.PRNGKey(0), _batch()["image"], jax.random.PRNGKey(1))["params"]
  x, key = _batch()["image"], jax.random.PRNGKey(2)
  l1, t = vae.loss_fn(params, x, key, model=model, beta=1.0)
  l4, _ = vae.loss_fn(params, x, key, model=model, beta=4.0)
  assert float(l4 - l1) == pytest.approx(3.0 * float(t["kl"].mean()), rel=1e-5)


def test_iwae_bound_with_k1_is_the_elbo_and_tightens_with_k():
  model = VAE(arch="mlp", hidden=(16,), latent_dim=3, image_shape=SHAPE)
  state = vae.init_state(jax.random.PRNGKey(0), model=model, tx=optax.adam(1e-3), image_shape=SHAPE)
  batch, key = _batch(4), jax.random.PRNGKey(3)
  # k = 1: the log-weight of one sample is exactly the one-sample ELBO with the same noise.
  log_w = vae.log_importance_weights(state.params["vae"], batch["image"], key, model=model, k=1)
  mean, logvar = model.apply({"params": state.params["vae"]}, batch["image"], method=VAE.encode)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, (1, *mean.shape))[0]
  logits = model.apply({"params": state.params["vae"]}, z, method=VAE.decode)
  elbo = (densities.bernoulli_log_prob(logits, batch["image"]) + densities.standard_normal_log_prob(z)
          - densities.gaussian_log_prob(z, mean, logvar))
  np.testing.assert_allclose(log_w[:, 0], elbo, rtol=1e-5)
  # With the same samples the bound is at least their mean log-weight (Jensen), and the k=1000
  # bound is above the one-sample ELBO averaged over many draws.
  log_w = vae.log_importance_weights(state.params["vae"], batch["image"], key, model=model, k=1000)
  assert bool(jnp.all(densities.importance_weighted_bound(log_w) >= log_w.mean(-1)))
  ll = vae.log_likelihood(state, batch, key, model=model, k=1000, k_chunk=10)
  assert bool(jnp.all(ll > log_w.mean(-1) + 0.01))


def test_sample_and_reconstruct_shapes_and_ranges():
  model = VAE(arch="conv", hidden=(16,), latent_dim=3, image_shape=SHAPE, channels=(4, 8))
  state = vae.init_state(jax.random.PRNGKey(0), model=model, tx=optax.adam(1e-3), image_shape=SHAPE)
  s = jax.jit(functools.partial(vae.sample, model=model), static_argnums=2)(state, jax.random.PRNGKey(1), 5)
  r = jax.jit(functools.partial(vae.reconstruct, model=model))(state, _batch(3))
  assert s.shape == (5, *SHAPE) and r.shape == (3, *SHAPE)
  assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0


def test_ae_step_learns_to_reconstruct():
  model = Autoencoder(arch="mlp", hidden=(32,), latent_dim=8, image_shape=SHAPE)
  state = ae.init_state(jax.random.PRNGKey(0), model=model, tx=optax.adam(1e-2), image_shape=SHAPE)
  step = jax.jit(functools.partial(ae.train_step, model=model))
  batch = _batch()
  state, first = step(state, batch)
  for _ in range(100):
    state, last = step(state, batch)
  assert float(last["loss"]) < 0.5 * float(first["loss"])
  per_example = ae.eval_step(state, batch, None, model=model)["recon"]
  assert per_example.shape == (16,)
  assert ae.encode(state, batch["image"], model=model).shape == (16, 8)
