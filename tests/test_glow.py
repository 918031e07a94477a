"""Glow: each layer's inverse and log-determinant, the whole flow's, the dequantized likelihood,
training, completion and the config checks (gen_jax/models/glow.py, gen_jax/steps/flow.py)."""

import functools
import math
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gen_jax.models import glow
from gen_jax.steps import flow

ALPHA = 0.05


def _perturb(params, key, scale=0.2):
  """Every parameter plus N(0, scale^2) noise: the zero-initialised layers become non-trivial, the
  rotations stay well conditioned."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(
      tree, [x + scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


def _variables(module, x, seed=0, scale=0.2):
  params = module.init(jax.random.key(seed), x)["params"]
  return {"params": _perturb(params, jax.random.key(seed + 1), scale)}


def _slogdet_of_jacobian(fn, x):
  """log |det d fn(x) / dx| of a map of one example (flattened)."""
  flat = lambda v: fn(v.reshape(x.shape)).reshape(-1)
  jac = jax.jit(jax.jacfwd(flat))(x.reshape(-1))
  sign, logdet = jnp.linalg.slogdet(jac)
  assert sign != 0
  return logdet


def test_squeeze_is_a_permutation_and_unsqueeze_undoes_it():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  y = glow.squeeze(x)
  assert y.shape == (2, 2, 3, 12)
  np.testing.assert_array_equal(np.sort(y.reshape(-1)), np.sort(x.reshape(-1)))
  np.testing.assert_array_equal(glow.unsqueeze(y), x)
  # the 2x2 block at the top left becomes the channels of the first pixel
  np.testing.assert_array_equal(y[0, 0, 0], x[0, :2, :2].reshape(-1))


@pytest.mark.parametrize("layer", [
    glow.ActNorm(4), glow.InvConv1x1(4), glow.AffineCoupling(4, hidden=8),
    glow.AffineCoupling(4, hidden=8, out_kernel=1), glow.FlowStep(4, hidden=8)],
    ids=lambda m: f"{type(m).__name__}{getattr(m, 'out_kernel', '')}")
def test_layer_inverse_and_log_det_equal_the_jacobian(layer):
  x = jax.random.normal(jax.random.key(2), (1, 2, 2, 4))
  variables = _variables(layer, x)
  y, log_det = layer.apply(variables, x)
  np.testing.assert_allclose(layer.apply(variables, y, method=type(layer).inverse), x,
                             atol=1e-5)
  want = _slogdet_of_jacobian(lambda v: layer.apply(variables, v)[0], x)
  np.testing.assert_allclose(log_det[0], want, rtol=1e-4, atol=1e-4)
  assert abs(float(want)) > 1e-2   # the perturbed layer is not volume-preserving


def _small_glow():
  model = glow.Glow(image_shape=(4, 4, 1), levels=2, steps=2, hidden=8)
  s = jax.random.normal(jax.random.key(3), (3, 4, 4, 1))
  # 0.1: every log-scale is 3x its parameter, so 0.2 would already scale some outputs by e^2
  return model, _variables(model, s, scale=0.1), s


def test_glow_inverse_undoes_forward_and_log_det_equals_the_jacobian():
  model, variables, s = _small_glow()
  eps, log_det = model.apply(variables, s)
  assert eps.shape == (3, 16)
  np.testing.assert_allclose(model.apply(variables, eps, method=glow.Glow.inverse), s, atol=1e-5)
  jac = jax.jit(jax.vmap(jax.jacfwd(
      lambda v: model.apply(variables, v.reshape(1, 4, 4, 1))[0].reshape(-1))))(s.reshape(3, -1))
  sign, want = jnp.linalg.slogdet(jac)
  assert np.all(sign != 0)
  np.testing.assert_allclose(log_det, want, rtol=1e-4, atol=1e-4)


def test_glow_is_the_same_flow_with_either_convolution():
  model, variables, s = _small_glow()
  assert model.conv_impl == "auto"            # matrix products here, on the CPU
  xla = model.clone(conv_impl="xla")
  for got, want in zip(model.apply(variables, s), xla.apply(variables, s)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  eps = model.apply(variables, s)[0]
  np.testing.assert_allclose(xla.apply(variables, eps, method=glow.Glow.inverse), s, atol=1e-5)


def test_logit_transform_log_det_and_inverse():
  y = jax.random.uniform(jax.random.key(4), (1, 2, 2, 1))
  s, log_det = glow.logit_transform(y, ALPHA)
  np.testing.assert_allclose(glow.logit_inverse(s, ALPHA), y, atol=1e-6)
  want = _slogdet_of_jacobian(lambda v: glow.logit_transform(v, ALPHA)[0], y)
  np.testing.assert_allclose(log_det[0], want, rtol=1e-5)


def test_code_shapes_cover_the_image():
  shapes = glow.code_shapes((28, 28, 1), 2)
  assert shapes == [(14, 14, 2), (7, 7, 8)]
  assert sum(math.prod(s) for s in shapes) == 784


MODEL = glow.Glow(image_shape=(8, 8, 1), levels=2, steps=2, hidden=8)
TX = optax.adam(3e-3)
# One jitted step for every test that trains (one compilation): actnorms set at step 0.
STEP = jax.jit(functools.partial(flow.train_step, model=MODEL, alpha=ALPHA, init_actnorm=True))


def _fresh_state():
  state = flow.init_state(jax.random.key_data(jax.random.key(0)), model=MODEL, tx=TX,
                          image_shape=MODEL.image_shape)
  return MODEL, state


def _images(num=8, shape=(8, 8, 1), seed=5):
  """Grey-level images k / 255 with a bright square: structure a flow can learn."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 40, (num, *shape))
  x[:, 2:6, 2:6] = rng.integers(200, 256, (num, 4, 4, shape[-1]))
  return jnp.asarray(x, jnp.float32) / 255   # as gen_jax.data.to_float makes them


def test_fresh_flow_nll_is_the_hand_computed_gaussian_value():
  # A fresh flow is a rotation (identity actnorms and couplings, orthogonal 1x1 convolutions,
  # standard-normal priors): -log P(x) = -log N(s; 0, I) - log |ds/dy| + D log 256.
  model, state = _fresh_state()
  x = _images()
  key = jax.random.key(6)
  got = flow.discrete_nll(state.params["flow"], x, key, model=model, alpha=ALPHA)
  u = np.asarray(jax.random.uniform(key, x.shape, x.dtype), np.float64)
  y = (np.round(np.asarray(x, np.float64) * 255) + u) / 256
  p = ALPHA + (1 - 2 * ALPHA) * y
  s = np.log(p / (1 - p))
  log_p = (-0.5 * (s ** 2 + math.log(2 * math.pi)) + math.log(1 - 2 * ALPHA)
           - np.log(p) - np.log(1 - p)).reshape(len(x), -1).sum(-1)
  want = -log_p + 64 * math.log(256)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  metrics = flow.eval_step(state, {"image": x}, key, model=model, alpha=ALPHA)
  np.testing.assert_allclose(metrics["bpd"], want / (64 * math.log(2)), rtol=1e-5)


def test_data_init_standardises_the_first_actnorm_and_keeps_the_rest():
  model, state = _fresh_state()
  x = _images(16)
  new = flow.data_init(state, {"image": x}, jax.random.key(12), model=model, alpha=ALPHA)
  # the first actnorm's output on the same dequantized batch: zero mean, unit std per channel
  y = flow.dequantize(x, jax.random.uniform(jax.random.key(12), x.shape, x.dtype))
  s = glow.squeeze(glow.logit_transform(y, ALPHA)[0])
  out, _ = glow.ActNorm(4).apply({"params": new.params["flow"]["level0_step0"]["layers_0"]}, s)
  np.testing.assert_allclose(out.mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(out.std((0, 1, 2)), 1, atol=1e-4)
  for path in (("level0_step0", "layers_1", "kernel"),
               ("level1_step1", "layers_2", "conv_in", "kernel")):
    a, b = state.params["flow"], new.params["flow"]
    for k in path:
      a, b = a[k], b[k]
    np.testing.assert_array_equal(a, b)
  # train_step runs it at step 0 only
  s1, _ = STEP(state, {"image": x})
  s2, _ = STEP(s1, {"image": x})
  assert float(jnp.abs(s1.params["flow"]["level0_step0"]["layers_0"]["logs"]).max()) > 0.1
  np.testing.assert_allclose(s2.params["flow"]["level0_step0"]["layers_0"]["logs"],
                             s1.params["flow"]["level0_step0"]["layers_0"]["logs"], atol=1e-2)


def test_log_likelihood_combines_the_draws_by_logsumexp():
  model, state = _fresh_state()
  x = _images()
  key = jax.random.key(7)
  got = flow.log_likelihood(state, {"image": x}, key, model=model, alpha=ALPHA, k=4)
  log_w = np.stack([-flow.discrete_nll(state.params["flow"], x, kk, model=model, alpha=ALPHA)
                    for kk in jax.random.split(key, 4)])
  np.testing.assert_allclose(got, jax.nn.logsumexp(log_w, axis=0) - math.log(4), rtol=1e-6)
  assert np.all(np.asarray(got) >= log_w.mean(0) - 1e-3)   # tighter than one draw on average


def test_a_few_train_steps_reduce_the_loss():
  _, state = _fresh_state()
  x = _images(16)
  losses = []
  for _ in range(15):
    state, metrics = STEP(state, {"image": x})
    losses.append(float(metrics["loss"]))
  assert set(metrics) >= {"loss", "bpd"}
  assert losses[-1] < losses[0] - 10, losses


@pytest.fixture(scope="module")
def trained():
  """A flow a few steps away from its start, so every layer is non-trivial."""
  model, state = _fresh_state()
  state = state.replace(params={"flow": _perturb(state.params["flow"], jax.random.key(8), 0.1)})
  return model, state


def test_reconstruct_is_exact_and_decode_inverts_encode(trained):
  model, state = trained
  x = _images()
  np.testing.assert_array_equal(flow.reconstruct(state, {"image": x}, model=model, alpha=ALPHA), x)
  z = flow.encode(state, x, model=model, alpha=ALPHA)
  assert z.shape == (8, 64)
  np.testing.assert_array_equal(flow.decode(state, z, model=model, alpha=ALPHA), x)


def test_samples_are_grey_levels_in_the_unit_interval(trained):
  model, state = trained
  images = flow.sample(state, jax.random.key(9), 6, model=model, alpha=ALPHA, temperature=0.7)
  assert images.shape == (6, 8, 8, 1)
  levels = np.asarray(images) * 255
  assert images.min() >= 0 and images.max() <= 1
  np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)


def test_decode_of_codes_far_outside_the_prior_is_finite(trained):
  # A flow whose couplings contract hard (large negative h): the inverse expands by the
  # reciprocal, which overflows to NaN without the guards of Glow.inverse.
  model, state = trained
  params = jax.tree.map(lambda a: a, state.params["flow"])
  for name in params:
    if "step" in name:
      conv = params[name]["layers_2"]["conv_out"]["conv"]
      conv["bias"] = conv["bias"].at[1::2].set(-60.0)   # log-scale channels: s ~ e^-60
  state = state.replace(params={"flow": params})
  z = 1e3 * jax.random.normal(jax.random.key(13), (4, 64))
  images = np.asarray(flow.decode(state, z, model=model, alpha=ALPHA))
  assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


def test_inpaint_keeps_known_pixels_bit_identical(trained):
  model, state = trained
  x = _images()
  mask = jax.random.uniform(jax.random.key(10), x.shape) > 0.5
  out = flow.inpaint(state, {"image": x}, mask, jax.random.key(11), model=model, alpha=ALPHA,
                     num_steps=5, learning_rate=0.1)
  np.testing.assert_array_equal(np.asarray(out)[np.asarray(mask)], np.asarray(x)[np.asarray(mask)])
  assert out.min() >= 0 and out.max() <= 1
  assert not np.array_equal(np.asarray(out), np.asarray(x))


def _config(**model):
  sys.path.insert(0, ".")
  from configs import glow_mnist  # pylint: disable=import-outside-toplevel
  c = glow_mnist.get_config()
  for k, v in model.items():
    c.model[k] = v
  return c


@pytest.mark.parametrize("change, fragment", [
    (lambda c: setattr(c.dataset, "binarize", "dynamic"), "--config.dataset.binarize=none"),
    (lambda c: setattr(c.model, "levels", 3), "--config.model.levels=2"),
    (lambda c: setattr(c.model, "alpha", 0.5), "model.alpha=0.5"),
    (lambda c: setattr(c.model, "temperature", 0.0), "model.temperature=0.0"),
    (lambda c: setattr(c.model, "steps", 0), "model.steps=0"),
    (lambda c: setattr(c.model, "out_kernel", 5), "--config.model.out_kernel=3 or 1"),
])
def test_bad_config_gives_a_clear_error(change, fragment):
  c = _config()
  change(c)
  with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
    flow.from_config(c, (28, 28, 1))


def test_config_builds_the_family():
  family = flow.from_config(_config(), (28, 28, 1))
  assert family.log_likelihood is not None and family.inpaint_method.startswith("projected")
  z = family.prior(None, jax.random.key(0), 3)
  assert z.shape == (3, 784)


@pytest.mark.slow
def test_tiny_config_trains_end_to_end(tmp_path, tfds_dir):
  del tfds_dir
  from gen_jax import train  # pylint: disable=import-outside-toplevel
  c = _config(steps=1, hidden=8)
  c.num_steps = 20
  c.steps_per_dispatch = 10
  c.eval.every_steps = 20
  c.eval.num_images = 8
  c.apps.num_steps = 2
  c.tensorboard = False
  c.mesh.shape = (1,)
  c.checkpoint.async_save = False
  final = train.train_and_evaluate(c, str(tmp_path))
  assert final["eval/bpd_iwae"] < 8 and final["eval/iwae_k"] == 1
