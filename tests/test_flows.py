"""Inverse autoregressive flow and the IWAE objective: Jacobians, densities, bounds."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_jax.losses import densities
from gen_jax.models.autoencoders import VAE
from gen_jax.models.flows import IAF, IAFStep, made_masks
from gen_jax.steps import vae


def _scramble(params, key, scale=0.7):
  """Every parameter redrawn from N(0, scale^2): a flow far from its near-identity start."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(tree, [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


def _flow(dim=3, steps=3, context=2, seed=0, scale=0.7):
  flow = IAF(num_steps=steps, hidden=(16, 16))
  z, h = jnp.zeros((1, dim)), jnp.zeros((1, context))
  params = flow.init(jax.random.key(seed), z, h)["params"]
  return flow, {"params": _scramble(params, jax.random.key(seed + 1), scale)}


def test_made_masks_connect_output_i_to_inputs_before_i_only():
  masks = made_masks(4, (7, 5))
  reach = masks[0]
  for m in masks[1:]:
    reach = (reach @ m) > 0           # input j reaches output i through some path
  want = np.tril(np.ones((4, 4)), -1).T > 0   # [j, i]: j < i
  np.testing.assert_array_equal(reach, want)


def test_iaf_step_jacobian_is_lower_triangular_with_the_log_det_on_its_diagonal():
  step = IAFStep(hidden=(16, 16))
  z, h = jax.random.normal(jax.random.key(0), (5,)), jax.random.normal(jax.random.key(1), (2,))
  variables = {"params": _scramble(step.init(jax.random.key(2), z, h)["params"], jax.random.key(3))}
  jac = jax.jacfwd(lambda v: step.apply(variables, v, h)[0])(z)
  np.testing.assert_allclose(jac, np.tril(jac), atol=0)       # output i reads inputs <= i
  _, log_det = step.apply(variables, z, h)
  np.testing.assert_allclose(log_det, np.log(np.diag(jac)).sum(), rtol=1e-5)


def test_iaf_log_det_equals_the_jacobian_determinant_and_inverse_undoes_it():
  # At scale 0.7 the off-diagonal entries reach ~1e4 beside a diagonal of ~1e-6, beyond what a
  # float32 determinant resolves; 0.3 still moves sigma far from its start.
  flow, variables = _flow(scale=0.3)
  z = jax.random.normal(jax.random.key(5), (4, 3))
  h = jax.random.normal(jax.random.key(6), (4, 2))
  out, log_det = flow.apply(variables, z, h)
  for i in range(4):
    jac = jax.jacfwd(lambda v: flow.apply(variables, v[None], h[i:i + 1])[0][0])(z[i])
    sign, want = jnp.linalg.slogdet(jac)   # the reversal between steps may flip the sign
    assert sign != 0
    np.testing.assert_allclose(log_det[i], want, rtol=1e-4, atol=1e-5)
  back = flow.apply(variables, out, h, method=IAF.inverse)
  np.testing.assert_allclose(back, z, atol=1e-5)
  # Leading sample axes ride along: (k, B, D) with a (B, C) context.
  out_k, ld_k = flow.apply(variables, jnp.stack([z, 2 * z]), h)
  np.testing.assert_allclose(out_k[0], out, rtol=1e-5, atol=1e-6)
  assert ld_k.shape == (2, 4)


def test_the_flowed_2d_density_integrates_to_one():
  """q_T(z) = N(f^-1(z)) / |det df/dz_0| on a grid: the change of variables is right."""
  # Milder weights than the Jacobian tests': at 0.7 some grid points come from |z_0| ~ 1e26.
  flow, variables = _flow(dim=2, steps=2, context=1, scale=0.15)
  h = jnp.array([[0.5]])
  edge = np.linspace(-8, 8, 321)
  grid = jnp.asarray(np.stack(np.meshgrid(edge, edge, indexing="ij"), -1).reshape(-1, 2))
  hh = jnp.broadcast_to(h, (grid.shape[0], 1))
  z0 = flow.apply(variables, grid, hh, method=IAF.inverse)
  _, log_det = flow.apply(variables, z0, hh)
  density = jnp.exp(densities.standard_normal_log_prob(z0) - log_det)
  cell = (edge[1] - edge[0]) ** 2
  assert float(density.sum() * cell) == pytest.approx(1.0, abs=2e-3)
  # ... and it is not the base density: the flow moved the mass.
  base = jnp.exp(densities.standard_normal_log_prob(grid))
  assert float(jnp.abs(density - base).sum() * cell) > 0.5


def _model(flow="", steps=0):
  return VAE(arch="mlp", hidden=(32,), latent_dim=4, image_shape=(28, 28, 1), flow=flow,
             flow_steps=steps, flow_hidden=(16,), context_dim=6 if flow else 0)


def _images(n=8):
  return (jax.random.uniform(jax.random.key(9), (n, 28, 28, 1)) > 0.7).astype(jnp.float32)


@pytest.mark.parametrize("flow,steps", [("", 0), ("iaf", 2)])
def test_iwae_loss_is_the_bound_of_the_importance_weights_and_tightens_the_elbo(flow, steps):
  model, x = _model(flow, steps), _images()
  state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                         tx=__import__("optax").adam(1e-3), image_shape=(28, 28, 1))
  params, key = state.params["vae"], jax.random.key(3)
  loss, terms = vae.iwae_loss_fn(params, x, key, model=model, num_samples=50)
  log_w = vae.log_importance_weights(params, x, key, model=model, k=50)     # (B, k)
  want = -(jax.nn.logsumexp(log_w, axis=1) - math.log(50)).mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(terms["recon"] + terms["kl"], -log_w.T, rtol=1e-5)
  assert float(loss) < float(-log_w.mean())     # Jensen: the bound beats the mean one-sample ELBO
  if flow:   # log q(z|x) is the base Gaussian's minus the flow's log-determinant
    eps = jax.random.normal(key, (8, 4))
    mean, logvar = model.apply({"params": params}, x, method=VAE.encode)
    z0 = mean + jnp.exp(0.5 * logvar) * eps
    z, log_q = model.apply({"params": params}, x, eps, method=VAE.posterior)
    ctx = model.apply({"params": params}, x, None, method=VAE._encode_all)[2]
    flow_z, log_det = IAF(num_steps=steps, hidden=(16,)).apply(
        {"params": params["posterior_flow"]}, z0, ctx)
    np.testing.assert_allclose(z, flow_z, rtol=1e-6)
    np.testing.assert_allclose(log_q, densities.gaussian_log_prob(z0, mean, logvar) - log_det,
                               rtol=1e-5)


def test_iwae_with_one_sample_has_the_gradient_of_the_sampled_elbo():
  model, x = _model("iaf", 1), _images()
  state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                         tx=__import__("optax").adam(1e-3), image_shape=(28, 28, 1))
  key = jax.random.key(4)
  g_iwae = jax.grad(lambda p: vae.iwae_loss_fn(p, x, key, model=model, num_samples=1)[0])(
      state.params["vae"])
  # With a flow the ELBO's KL is sampled too; the same eps (one (B, D) draw) gives the same value.
  eps_key = key
  def elbo(p):
    eps = jax.random.normal(eps_key, (1, 8, 4))
    t = vae.sampled_terms(p, x, eps, model=model)
    return (t["recon"] + t["log_q"] - t["log_prior"]).mean()
  g_elbo = jax.grad(elbo)(state.params["vae"])
  for a, b in zip(jax.tree.leaves(g_iwae), jax.tree.leaves(g_elbo)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("objective,flow", [("iwae", ""), ("elbo", "iaf"), ("iwae", "iaf")])
def test_train_step_reduces_the_loss(objective, flow):
  import optax
  model, x = _model(flow, 2 if flow else 0), _images(32)
  state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                         tx=optax.adam(3e-3), image_shape=(28, 28, 1))
  step = jax.jit(functools.partial(vae.train_step, model=model, objective=objective,
                                   num_samples=5))
  first = None
  for _ in range(60):
    state, metrics = step(state, {"image": x})
    first = first if first is not None else float(metrics["loss"])
  assert float(metrics["loss"]) < first - 50
  assert np.isfinite(float(metrics["neg_elbo"]))
