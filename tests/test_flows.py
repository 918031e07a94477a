"""Inverse autoregressive flow, two stochastic layers and the IWAE objective: Jacobians,
densities, bounds."""

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


def _two_layer(image_shape=(1, 2, 1)):
  model = VAE(arch="mlp", hidden=(8,), latent_dim=1, image_shape=image_shape, latent_dim2=1,
              hidden2=(8,))
  import optax
  state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model, tx=optax.adam(1e-3),
                         image_shape=image_shape)
  return model, _scramble(state.params["vae"], jax.random.key(1), 0.5)


def test_two_stochastic_layers_importance_weights_average_to_the_exact_marginal():
  """p(x) of a 2-pixel model with scalar h1 and h2 by quadrature over (h1, h2): it sums to one
  over the 4 images, and the importance weights p(x, h1, h2) / q(h1, h2 | x) average to it
  (within 4 of their own standard errors); the one-sample bound lies below log p(x)."""
  model, params = _two_layer()
  v = {"params": params}
  edge = np.linspace(-9, 9, 361)
  h1, h2 = np.meshgrid(edge, edge, indexing="ij")
  z = jnp.asarray(np.stack([h1.ravel(), h2.ravel()], -1))
  log_pz = model.apply(v, z, method=VAE.log_prior)
  logits = model.apply(v, z, method=VAE.decode).reshape(-1, 2)
  images = np.array([[a, b] for a in (0, 1) for b in (0, 1)], np.float32)
  cell = (edge[1] - edge[0]) ** 2
  log_px = np.array([jax.nn.logsumexp(log_pz + densities.bernoulli_log_prob(logits, jnp.asarray(x)))
                     for x in images]) + np.log(cell)
  assert np.exp(log_px).sum() == pytest.approx(1.0, abs=1e-4)
  # p(h2) p(h1 | h2) alone integrates to one: the prior's conditional is normalised.
  assert float(jax.nn.logsumexp(log_pz) + np.log(cell)) == pytest.approx(0.0, abs=1e-4)
  x = jnp.asarray(images.reshape(4, 1, 2, 1))
  k = 200_000
  log_w = np.asarray(vae.log_importance_weights(params, x, jax.random.key(7), model=model, k=k),
                     np.float64)
  w = np.exp(log_w)
  mean, stderr = w.mean(1), w.std(1) / math.sqrt(k)
  assert np.all(stderr < 0.01 * np.exp(log_px))       # precise enough to mean something
  assert np.all(np.abs(mean - np.exp(log_px)) < 4 * stderr), (mean, np.exp(log_px), stderr)
  assert np.all(log_w.mean(1) < log_px)               # the one-sample bound is looser


def test_two_stochastic_layers_prior_draws_are_ancestral():
  model, params = _two_layer()
  v = {"params": params}
  eps = jax.random.normal(jax.random.key(3), (50000, 2))
  z = model.apply(v, eps, method=VAE.sample_prior)
  np.testing.assert_array_equal(z[:, 1], eps[:, 1])   # h2 ~ N(0, I) is the draw itself
  # h1 | h2 ~ N(mean(h2), var(h2)): standardised by the prior's own layer, h1 is eps[:, 0].
  mean, logvar = model.apply(v, z[:, 1:], method=lambda m, h: m._gaussian(m.prior1, h))
  np.testing.assert_allclose((z[:, :1] - mean) * jnp.exp(-0.5 * logvar), eps[:, :1], atol=1e-4)


def test_two_stochastic_layers_train_and_reject_a_flow():
  import ml_collections
  from configs import common
  model, x = VAE(arch="mlp", hidden=(32,), latent_dim=6, image_shape=(28, 28, 1), latent_dim2=3,
                 hidden2=(16,)), _images(32)
  import optax
  state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                         tx=optax.adam(3e-3), image_shape=(28, 28, 1))
  step = jax.jit(functools.partial(vae.train_step, model=model, objective="iwae", num_samples=5))
  state, first = step(state, {"image": x})
  for _ in range(40):
    state, metrics = step(state, {"image": x})
  assert float(metrics["loss"]) < float(first["loss"]) - 50
  c = common.base()
  c.model.latent_dim2, c.model.flow, c.model.flow_steps = 3, "iaf", 1
  with pytest.raises(ValueError, match="model.latent_dim2=3: a second stochastic layer"):
    vae.validate(c)
  assert isinstance(c, ml_collections.ConfigDict)


def test_kl_warmup_ramps_the_weight_and_a_piecewise_schedule_scales_the_learning_rate():
  from configs import common
  from gen_jax import optim
  w = [float(vae.kl_weight(jnp.asarray(s), beta=2.0, warmup_steps=100)) for s in (0, 50, 100, 500)]
  assert w == [0.0, 1.0, 2.0, 2.0]
  assert float(vae.kl_weight(jnp.asarray(0), beta=2.0, warmup_steps=0)) == 2.0
  cfg = common.optimizer(name="sgd", learning_rate=1.0, lr_boundaries=(2, 4), lr_scales=(0.5, 0.1))
  # After b updates the (b+1)-th uses the new rate.
  np.testing.assert_allclose(_sgd_rates(cfg, 6), [1, 1, 0.5, 0.5, 0.05, 0.05], rtol=1e-6)
  with pytest.raises(ValueError, match="one scale per boundary"):
    optim.make(common.optimizer(lr_boundaries=(2,), lr_scales=()))


def _sgd_rates(cfg, n):
  """The learning rate of each of the first n updates of ``optim.make(cfg)`` (SGD on a constant
  unit gradient, so the update is minus the rate)."""
  from gen_jax import optim
  tx = optim.make(cfg)
  params = jnp.zeros(())
  state, seen = tx.init(params), []
  for _ in range(n):
    updates, state = tx.update(jnp.ones(()), state, params)
    seen.append(-float(updates))
  return seen


def test_warmup_ramps_the_learning_rate_before_each_schedule():
  from configs import common
  from gen_jax import optim
  sgd = functools.partial(common.optimizer, name="sgd", learning_rate=1.0, warmup_steps=2)
  # Linear from 0 over 2 updates, then the cosine over the remaining 2 of decay_steps = 4.
  np.testing.assert_allclose(_sgd_rates(sgd(decay_steps=4), 5), [0, 0.5, 1, 0.5, 0], atol=1e-6)
  np.testing.assert_allclose(_sgd_rates(sgd(), 4), [0, 0.5, 1, 1], atol=1e-6)
  # Piecewise boundaries count from the end of the warm-up.
  np.testing.assert_allclose(_sgd_rates(sgd(lr_boundaries=(1,), lr_scales=(0.1,)), 5),
                             [0, 0.5, 1, 0.1, 0.1], atol=1e-6)
  for bad in (dict(warmup_steps=-1), dict(warmup_steps=4, decay_steps=4)):
    with pytest.raises(ValueError, match="optimizer.warmup_steps"):
      optim.make(common.optimizer(**bad))


def test_burda_rows_follow_the_paper_schedule_and_build():
  from configs import burda2016_mnist
  from gen_jax import optim
  from gen_jax.steps import vae as vae_steps
  c = burda2016_mnist.get_config("iwae2_k50")
  assert c.num_epochs == 3280 and c.batch_size == 20 and c.eval.iwae_k == 5000
  assert (c.model.objective, c.model.num_samples, c.model.latent_dim2) == ("iwae", 50, 50)
  schedule_lr = []
  optim.make(c.optimizer)   # the schedule's fields are consistent
  # The learning rate of stage i (epochs sum_{j<i} 3^j .. sum_{j<=i} 3^j) is 1e-3 * 10^(-i/7).
  import optax
  sched = optax.piecewise_constant_schedule(
      c.optimizer.learning_rate, dict(zip(c.optimizer.lr_boundaries, c.optimizer.lr_scales)))
  for i in range(8):
    first_epoch = sum(3 ** j for j in range(i))
    schedule_lr.append(float(sched(first_epoch * 3000 + 1)))
  np.testing.assert_allclose(schedule_lr, [1e-3 * 10 ** (-i / 7) for i in range(8)], rtol=1e-5)
  for row in burda2016_mnist.ROWS:
    vae_steps.validate(burda2016_mnist.get_config(row))
  with pytest.raises(ValueError, match="needs a row"):
    burda2016_mnist.get_config("vae3")
  bad = burda2016_mnist.get_config("vae1")
  bad.model.activation = "gelu"
  with pytest.raises(ValueError, match="unknown model.activation 'gelu'"):
    vae_steps.validate(bad)
