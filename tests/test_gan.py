"""The GAN family: losses against hand computations, the step's bookkeeping, the models' shapes,
and the whole loop (real MNIST; mock CIFAR-10 and CelebA)."""

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
from gen_jax import data, sharding, train
from gen_jax.losses import gan as gan_losses
from gen_jax.models import gan as gm
from gen_jax.steps import adversarial, gan

SHAPE = (28, 28, 1)
REAL = np.array([0.0, 2.0, -1.0, 30.0], np.float32)
FAKE = np.array([0.0, -3.0, 1.0, -30.0], np.float32)


# Test inputs come from NumPy: an eager jax.random call compiles its own kernels (seconds each on
# a loaded 2-core machine).
def _normal(seed, shape):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _uniform(seed, shape):
  return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# ---------------------------------------------------------------------------------------------
# Losses.


@pytest.mark.parametrize("kind, disc_expected, gen_expected", [
    # -log D(x) - log(1 - D(G(z))), from the probabilities.
    ("minimax", -np.log(_sigmoid(REAL)) - np.log(1 - _sigmoid(FAKE)), np.log(1 - _sigmoid(FAKE))),
    ("non_saturating", -np.log(_sigmoid(REAL)) - np.log(1 - _sigmoid(FAKE)), -np.log(_sigmoid(FAKE))),
    ("wasserstein", FAKE - REAL, -FAKE),
    ("wgan_gp", FAKE - REAL, -FAKE),
    ("hinge", np.maximum(0, 1 - REAL) + np.maximum(0, 1 + FAKE), -FAKE),
])
def test_losses_match_their_definitions_on_fixed_logits(kind, disc_expected, gen_expected):
  d = gan_losses.disc_loss(kind, jnp.asarray(REAL), jnp.asarray(FAKE))
  g = gan_losses.gen_loss(kind, jnp.asarray(FAKE))
  np.testing.assert_allclose(d, disc_expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g, gen_expected, rtol=1e-5, atol=1e-6)


def test_losses_known_values_by_hand():
  r, f = jnp.array([0.0, 2.0, -1.0]), jnp.array([0.0, -3.0, 1.0])
  # D(x) = D(G(z)) = 1/2: each term is log 2.
  assert float(gan_losses.disc_loss("minimax", r, f)[0]) == pytest.approx(2 * np.log(2), rel=1e-6)
  assert float(gan_losses.gen_loss("minimax", f)[0]) == pytest.approx(-np.log(2), rel=1e-6)
  np.testing.assert_allclose(gan_losses.disc_loss("hinge", r, f), [2.0, 0.0, 4.0])
  np.testing.assert_allclose(gan_losses.disc_loss("wasserstein", r, f), [0.0, -5.0, 2.0])
  # Saturation: with D(G(z)) ~ e^-30 the minimax generator loss is flat, the non-saturating one is
  # ~30 with gradient ~ -1.
  grad_mm = jax.grad(lambda v: gan_losses.gen_loss("minimax", v).sum())(jnp.array([-30.0]))
  grad_ns = jax.grad(lambda v: gan_losses.gen_loss("non_saturating", v).sum())(jnp.array([-30.0]))
  assert abs(float(grad_mm[0])) < 1e-12 and float(grad_ns[0]) == pytest.approx(-1.0, abs=1e-6)


def test_unknown_loss_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown GAN loss 'wgan-gp'.*wgan_gp"):
    gan_losses.disc_loss("wgan-gp", jnp.zeros(2), jnp.zeros(2))


def test_one_sided_label_smoothing_is_the_cross_entropy_to_the_smoothed_target():
  t = 0.9
  # -(t log D(x) + (1 - t) log(1 - D(x))) - log(1 - D(G(z))), with -log D = log(1 + e^-logit) and
  # -log(1 - D) = log(1 + e^logit) (1 - sigmoid(30) has no precision left in float64).
  nll_real, nll_fake = np.logaddexp(0, -REAL), np.logaddexp(0, REAL)
  expected = t * nll_real + (1 - t) * nll_fake + np.logaddexp(0, FAKE)
  for kind in ("minimax", "non_saturating"):
    d = gan_losses.disc_loss(kind, jnp.asarray(REAL), jnp.asarray(FAKE), label_smoothing=1 - t)
    np.testing.assert_allclose(d, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="needs a logit loss.*label_smoothing=0"):
    gan_losses.disc_loss("hinge", jnp.asarray(REAL), jnp.asarray(FAKE), label_smoothing=1 - t)


def test_top_k_mean_keeps_the_fakes_with_the_highest_scores():
  values = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
  scores = jnp.array([0.1, 0.9, 0.5, -2.0, 0.3])
  # ceil(0.5 * 5) = 3 highest scores: examples 1, 2, 4.
  assert float(gan_losses.top_k_mean(values, scores, 0.5)) == pytest.approx((2 + 3 + 5) / 3)
  assert float(gan_losses.top_k_mean(values, scores, 1.0)) == pytest.approx(3.0)
  assert float(gan_losses.top_k_mean(values, scores, 0.01)) == pytest.approx(2.0)   # at least one
  grad = jax.grad(lambda v: gan_losses.top_k_mean(v, scores, 0.5))(values)
  np.testing.assert_allclose(grad, [0, 1 / 3, 1 / 3, 0, 1 / 3], rtol=1e-6)
  frac = lambda step: float(gan_losses.top_k_fraction(step, 0.6, 0.5, 100))
  assert frac(0) == 1.0 and frac(50) == pytest.approx(0.5 ** 0.5) and frac(300) == pytest.approx(0.6)


def _images(seed, n=4, shape=(3, 3, 2)):
  return _normal(seed, (n, *shape))


def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_for_every_example():
  w = _images(0, 1)[0]
  real, fake, eps = _images(1), _images(2), _uniform(3, (4,))
  gp = jax.jit(functools.partial(gan_losses.gradient_penalty, lambda x: jnp.sum(x * w, axis=(1, 2, 3))))
  penalty, norms = gp(real, fake, eps)
  norm_w = np.linalg.norm(np.asarray(w, np.float64))
  np.testing.assert_allclose(norms, np.full(4, norm_w), rtol=1e-5)
  np.testing.assert_allclose(penalty, np.full(4, (norm_w - 1) ** 2), rtol=1e-4)


def test_gradient_penalty_mixes_each_example_with_one_weight():
  # critic(x) = |x|^2 / 2 has gradient x: the penalty sees the interpolate itself.
  real, fake = _images(1), _images(2)
  eps = jnp.array([0.0, 0.25, 0.5, 1.0])
  gp = jax.jit(functools.partial(gan_losses.gradient_penalty,
                                 lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))))
  penalty, norms = gp(real, fake, eps)
  r, f, e = (np.asarray(a, np.float64) for a in (real, fake, eps))
  hand = np.array([np.linalg.norm(e[i] * r[i] + (1 - e[i]) * f[i]) for i in range(4)])
  np.testing.assert_allclose(norms, hand, rtol=1e-5)
  np.testing.assert_allclose(penalty, (hand - 1) ** 2, rtol=1e-4)
  # eps = 0 and 1 give the fake and the real example exactly.
  np.testing.assert_allclose(norms[0], np.linalg.norm(f[0]), rtol=1e-5)
  np.testing.assert_allclose(norms[3], np.linalg.norm(r[3]), rtol=1e-5)
  # A weight per pixel (the classic bug) puts the points elsewhere and changes the penalty.
  per_pixel = _uniform(4, real.shape)
  wrong = np.linalg.norm((per_pixel * real + (1 - per_pixel) * fake).reshape(4, -1), axis=1)
  assert not np.allclose(wrong, hand, rtol=1e-2)
  with pytest.raises(ValueError, match="one weight per example"):
    gan_losses.interpolate(real, fake, per_pixel)


def test_discriminator_loss_with_penalty_matches_a_hand_computation():
  disc = gm.MLPDiscriminator(hidden=())    # linear: f(x) = <w, x> + b, gradient w everywhere
  real, fake = (_uniform(i, (6, *SHAPE)) for i in (0, 1))
  params = jax.jit(disc.init)(jax.random.PRNGKey(2), real)["params"]
  eps = _uniform(3, (6,))
  value, (aux, stats) = jax.jit(functools.partial(gan.disc_loss_fn, disc=disc, loss="wgan_gp",
                                                 gp_weight=10.0))(params, None, real, fake, eps)
  w = np.asarray(params["Dense_0"]["kernel"], np.float64)[:, 0]
  b = float(params["Dense_0"]["bias"][0])
  f = lambda x: np.asarray(x, np.float64).reshape(6, -1) @ w + b
  norm_w = np.linalg.norm(w)
  hand = np.mean(f(fake) - f(real)) + 10.0 * (norm_w - 1) ** 2
  assert stats is None
  assert float(value) == pytest.approx(hand, rel=1e-4)
  assert float(aux["gp_grad_norm"]) == pytest.approx(norm_w, rel=1e-5)


def test_r1_penalty_is_the_squared_gradient_norm_at_each_real_example():
  real = _images(1)
  w = _images(0, 1)[0]
  r1 = lambda critic: jax.jit(functools.partial(gan_losses.r1_penalty, critic))(real)
  np.testing.assert_allclose(r1(lambda x: jnp.sum(x * w, axis=(1, 2, 3))),
                             np.full(4, np.sum(np.asarray(w, np.float64) ** 2)), rtol=1e-5)
  # critic(x) = |x|^2 / 2 has gradient x: the penalty is |x_i|^2, example by example.
  np.testing.assert_allclose(r1(lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))),
                             np.sum(np.asarray(real, np.float64).reshape(4, -1) ** 2, 1), rtol=1e-5)


def test_discriminator_loss_with_r1_matches_a_hand_computation():
  disc = gm.MLPDiscriminator(hidden=())    # linear: f(x) = <w, x> + b, gradient w everywhere
  real, fake = (_uniform(i, (6, *SHAPE)) for i in (0, 1))
  params = jax.jit(disc.init)(jax.random.PRNGKey(2), real)["params"]
  w = np.asarray(params["Dense_0"]["kernel"], np.float64)[:, 0]
  b = float(params["Dense_0"]["bias"][0])
  f = lambda x: np.asarray(x, np.float64).reshape(6, -1) @ w + b
  softplus = lambda v: np.log1p(np.exp(v))
  for every in (1, 4):
    value, (aux, _) = jax.jit(functools.partial(
        gan.disc_loss_fn, disc=disc, loss="non_saturating", r1_weight=3.0, r1_every=every))(
            params, None, real, fake, np.zeros(6, np.float32))
    hand = np.mean(softplus(-f(real)) + softplus(f(fake))) + 0.5 * 3.0 * every * np.sum(w ** 2)
    assert float(value) == pytest.approx(hand, rel=1e-4)
    assert float(aux["r1_grad_sq"]) == pytest.approx(every * np.sum(w ** 2), rel=1e-4)


def test_lazy_r1_penalizes_only_the_steps_that_are_multiples_of_its_interval():
  """r1_every=2: step 0 is the step with the penalty weighted twice, step 1 the one without."""
  gen, disc, statics = _mlp()
  step = lambda **kw: jax.jit(functools.partial(gan.train_step, **(statics | kw)))
  s0 = _state(gen, disc, tx=optax.sgd(0.1))
  lazy0, m0 = step(r1_weight=0.5, r1_every=2)(s0, _batch(8))
  eager0, _ = step(r1_weight=1.0)(s0, _batch(8))
  plain0, _ = step()(s0, _batch(8))
  lazy1, m1 = step(r1_weight=0.5, r1_every=2)(lazy0, _batch(8, 1))
  plain1, _ = step()(lazy0, _batch(8, 1))
  close = lambda a, b: all(np.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in
                           zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))
  assert close(lazy0, eager0) and not close(lazy0, plain0)
  assert close(lazy1, plain1)
  assert float(m0["r1_grad_sq"]) > 0 and float(m1["r1_grad_sq"]) == 0.0


def test_latent_is_the_plain_noise_without_a_code_and_appends_its_one_hot_with_one():
  key = jax.random.PRNGKey(3)
  z, codes = jax.jit(gan.latent, static_argnums=(1, 2))(key, 6, 5)
  assert codes is None
  np.testing.assert_array_equal(z, jax.random.normal(key, (6, 5)))   # the stream of old runs
  fixed = np.array([0, 1, 2, 3, 2, 1])
  z, codes = jax.jit(gan.latent, static_argnums=(1, 2, 3))(key, 6, 5, 4, fixed)
  assert z.shape == (6, 9)
  np.testing.assert_array_equal(codes, fixed)
  np.testing.assert_array_equal(z[:, 5:], np.eye(4)[fixed])
  drawn = np.asarray(gan.latent(key, 4000, 2, 4)[1])
  assert set(drawn) == {0, 1, 2, 3} and np.abs(np.bincount(drawn) / 4000 - 0.25).max() < 0.03
  with pytest.raises(ValueError, match="model.cat_dim > 0"):
    gan.latent(key, 6, 5, 0, fixed)


def _info_disc():
  disc = gm.MLPDiscriminator(hidden=(), q_dim=3, centre=True)   # Q reads the centred pixels
  x = _uniform(0, (5, *SHAPE))
  params = jax.jit(disc.init)(jax.random.PRNGKey(2), x)["params"]
  flat_x = 2.0 * np.asarray(x, np.float64).reshape(5, -1) - 1.0
  dense = lambda name, h: h @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(
      params[name]["bias"], np.float64)
  h = dense("q_hidden", flat_x)
  q = dense("q_out", np.where(h > 0, h, 0.2 * h))
  return disc, x, params, q


def _ce(logits, codes):
  logits = logits - logits.max(-1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  return -log_p[np.arange(len(codes)), codes].mean()


def test_info_head_reads_the_last_hidden_layer_and_leaves_d_output_alone():
  disc, x, params, q_hand = _info_disc()
  out, q, stats = jax.jit(functools.partial(adversarial.apply_q, disc))(params, None, x)
  assert stats is None and q.shape == (5, 3)
  np.testing.assert_allclose(q, q_hand, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out, disc.apply({"params": params}, x), rtol=1e-6)
  codes = np.array([0, 2, 1, 1, 0])
  assert float(gan_losses.info_ce(q, codes)) == pytest.approx(_ce(q_hand, codes), rel=1e-4)


def test_discriminator_loss_with_codes_adds_the_weighted_info_term():
  disc, fake, params, q_hand = _info_disc()
  real = _uniform(1, (5, *SHAPE))
  codes = np.array([0, 2, 1, 1, 0])
  eps = np.zeros(5, np.float32)
  fn = lambda **kw: jax.jit(functools.partial(gan.disc_loss_fn, disc=disc, loss="non_saturating",
                                              **kw))(params, None, real, fake, eps)
  plain, _ = fn()
  with_info, _ = fn(codes=codes, info_weight=0.5)
  assert float(with_info) == pytest.approx(float(plain) + 0.5 * _ce(q_hand, codes), rel=1e-4)


def test_infogan_generator_step_follows_the_gradient_of_both_terms():
  gen = gm.MLPGenerator(hidden=(16,), image_shape=SHAPE, output="sigmoid")
  disc = gm.MLPDiscriminator(hidden=(16,), q_dim=4, centre=True)
  statics = dict(gen=gen, disc=disc, z_dim=8, loss="non_saturating", output="sigmoid", cat_dim=4,
                 info_weight=2.0, ema_decay=0.999)
  s0 = jax.jit(functools.partial(gan.init_state, gen=gen, disc=disc, z_dim=8, cat_dim=4,
                                 tx_gen=optax.sgd(1.0), tx_disc=optax.sgd(1.0),
                                 image_shape=SHAPE))(jax.random.PRNGKey(0))
  s1, metrics = jax.jit(functools.partial(gan.train_step, **statics))(s0, _batch(8))
  z, codes = gan.latent(s0.step_key(1), 8, 8, 4)
  d_params = s1.params["disc"]       # the generator step runs against the updated D

  def loss(p, weight):
    fake = gen.apply({"params": p}, z, train=True)
    d, q, _ = adversarial.apply_q(disc, d_params, None, fake)
    return gan_losses.gen_loss("non_saturating", d).mean() + weight * gan_losses.info_ce(q, codes)

  for weight, expect_equal in ((2.0, True), (0.0, False)):
    grads = jax.grad(loss)(s0.params["gen"], weight)
    expected = jax.tree.map(lambda p, g: p - g, s0.params["gen"], grads)
    same = all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in
               zip(jax.tree.leaves(s1.params["gen"]), jax.tree.leaves(expected)))
    assert same == expect_equal
  fake = gen.apply({"params": s0.params["gen"]}, z, train=True)
  q = adversarial.apply_q(disc, d_params, None, fake)[1]
  assert float(metrics["info_ce"]) == pytest.approx(float(gan_losses.info_ce(q, codes)), rel=1e-4)
  images = gan.sample(s1, jax.random.PRNGKey(1), 4, gen=gen, z_dim=8, output="sigmoid", cat_dim=4,
                      standing_num=512, codes=jnp.arange(4))
  assert images.shape == (4, *SHAPE)


# ---------------------------------------------------------------------------------------------
# The step.


def _mlp(**kw):
  gen = gm.MLPGenerator(hidden=(16,), image_shape=SHAPE, output="sigmoid")
  disc = gm.MLPDiscriminator(hidden=(16,))
  statics = dict(gen=gen, disc=disc, z_dim=8, loss="non_saturating", output="sigmoid",
                 ema_decay=0.999) | kw
  return gen, disc, statics


def _state(gen, disc, tx=None, seed=0):
  """A fresh state, initialized in one jitted call (op-by-op init compiles every op on its own)."""
  tx = tx or optax.adam(1e-3)
  return jax.jit(functools.partial(gan.init_state, gen=gen, disc=disc, z_dim=8, tx_gen=tx,
                                   tx_disc=tx, image_shape=SHAPE))(jax.random.PRNGKey(seed))


def _batch(n, seed=0):
  return {"image": _uniform(seed, (n, *SHAPE))}


def test_critic_minibatches_split_the_batch_by_stride():
  x = jnp.arange(12)
  out = adversarial.critic_minibatches(x, 3)
  for i in range(3):
    np.testing.assert_array_equal(out[:, i], np.arange(i, 12, 3))
  with pytest.raises(ValueError, match="batch_size=10 is not a multiple of model.n_critic=3"):
    adversarial.critic_minibatches(jnp.arange(10), 3)


@pytest.fixture(scope="module")
def three_states():
  """s0 and two steps s1, s2 of an MLP GAN with n_critic = 3 (one compilation for the tests)."""
  gen, disc, statics = _mlp(n_critic=3, ema_decay=0.999)
  step = jax.jit(functools.partial(gan.train_step, **statics))
  s0 = _state(gen, disc)
  s1, _ = step(s0, _batch(12))
  s2, metrics = step(s1, _batch(12, 1))
  return s0, s1, s2, metrics


def test_n_critic_discriminator_updates_per_generator_update(three_states):
  *_, state, metrics = three_states
  assert int(state.step) == 2
  assert int(state.opt_state["disc"][0].count) == 6      # Adam's update counter
  assert int(state.opt_state["gen"][0].count) == 2
  assert set(metrics) >= {"loss", "disc_loss", "gen_loss", "d_real", "d_fake", "disc_grad_norm",
                          "gen_grad_norm", "fake_pixel_std"}
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_ema_decay_schedule_and_update_formula(three_states):
  decay = lambda s: float(adversarial.ema_decay_at(s, 0.999))
  assert decay(0) == pytest.approx(0.1) and decay(8) == pytest.approx(0.5)
  assert decay(80) == pytest.approx(0.9) and decay(10 ** 6) == pytest.approx(0.999)
  ema, p = {"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([3.0, -2.0])}
  np.testing.assert_allclose(adversarial.ema_update(ema, p, 0.25)["a"], [0.25 * 1 + 0.75 * 3, 0.25 * 2 - 0.75 * 2])
  # Through the step: after step t the EMA is decay_t * EMA + (1 - decay_t) * new G params.
  s0, s1, s2, _ = three_states
  for before, after, d in ((s0, s1, 0.1), (s1, s2, 2 / 11)):
    expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, before.extra["ema"]["gen"], after.params["gen"])
    for a, b in zip(jax.tree.leaves(after.extra["ema"]["gen"]), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert not np.allclose(jax.tree.leaves(s2.extra["ema"]["gen"])[0], jax.tree.leaves(s2.params["gen"])[0])


def test_top_k_generator_step_is_the_step_on_the_fakes_d_scores_highest():
  """With top_k, G's gradient is that of the mean loss over the top fraction of its fakes."""
  gen, disc, statics = _mlp(top_k=0.5, top_k_decay=0.5, top_k_decay_steps=1)
  s0 = _state(gen, disc, tx=optax.sgd(1.0))
  s1, metrics = jax.jit(functools.partial(gan.train_step, **statics))(s0, _batch(8))
  # Step 0: fraction max(0.5, 0.5 ** 0) = 1, every fake; the next step would use half.
  assert float(metrics["top_k_fraction"]) == 1.0
  s2, metrics = jax.jit(functools.partial(gan.train_step, **statics))(s1, _batch(8, 1))
  assert float(metrics["top_k_fraction"]) == 0.5
  # By hand: the updated D (the generator step does not change it), the step's noise, the 4 fakes
  # of s1's generator that D scores highest.
  d_params = s2.params["disc"]
  z = jax.random.normal(s1.step_key(1), (8, 8))
  g = lambda p: gen.apply({"params": p}, z, train=True)
  d = lambda x: disc.apply({"params": d_params}, x, train=True)
  best = np.argsort(-np.asarray(d(g(s1.params["gen"]))))[:4]
  grads = jax.grad(lambda p: gan_losses.gen_loss("non_saturating", d(g(p)))[best].mean())(
      s1.params["gen"])
  expected = jax.tree.map(lambda p, gr: p - gr, s1.params["gen"], grads)   # SGD, learning rate 1
  for a, b in zip(jax.tree.leaves(s2.params["gen"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # The step on all 8 fakes moves G elsewhere.
  s_all, _ = jax.jit(functools.partial(gan.train_step, **(statics | {"top_k": 1.0})))(s1, _batch(8, 1))
  assert not np.allclose(jax.tree.leaves(s_all.params["gen"])[0], jax.tree.leaves(s2.params["gen"])[0])


def test_weight_clipping_keeps_every_critic_weight_in_bounds():
  gen, disc, statics = _mlp(loss="wasserstein", clip=0.01, n_critic=2)
  s0 = _state(gen, disc, tx=optax.rmsprop(0.05))
  state, _ = jax.jit(functools.partial(gan.train_step, **statics))(s0, _batch(8))
  flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
  assert np.abs(flat(s0.params["disc"])).max() > 0.05            # the initial weights exceed it
  leaves = flat(state.params["disc"])
  assert np.abs(leaves).max() <= 0.01 and np.mean(np.abs(leaves) == 0.01) > 0.5


def test_gradient_penalty_refuses_a_batch_norm_critic():
  gen = gm.DCGANGenerator(channels=(8, 4), image_shape=SHAPE)
  disc = gm.DCGANDiscriminator(channels=(4, 8), norm="batch")
  state = jax.eval_shape(functools.partial(
      gan.init_state, gen=gen, disc=disc, z_dim=8, tx_gen=optax.adam(1e-3),
      tx_disc=optax.adam(1e-3)), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="disc_norm='layer'"):
    jax.eval_shape(functools.partial(gan.train_step, gen=gen, disc=disc, z_dim=8, loss="wgan_gp",
                                     output="tanh", ema_decay=0.999, gp_weight=10.0),
                   state, _batch(4))


def test_spectral_norm_critic_divides_by_the_top_singular_value():
  disc = gm.DCGANDiscriminator(channels=(4, 8), norm="spectral")
  x = _uniform(0, (4, *SHAPE))
  variables = jax.jit(disc.init)(jax.random.PRNGKey(0), x)

  @jax.jit
  def power_iterations(variables):   # 300 calls, one power iteration each
    def body(_, stats):
      return disc.apply({"params": variables["params"], "batch_stats": stats}, x,
                        mutable=["batch_stats"])[1]["batch_stats"]
    return jax.lax.fori_loop(0, 300, body, variables["batch_stats"])

  stats = power_iterations(variables)
  kernel = np.asarray(variables["params"]["Conv2x_1"]["kernel"], np.float64)
  sigma = float(stats["SpectralNorm_1"]["Conv2x_1/kernel/sigma"])
  assert sigma == pytest.approx(np.linalg.svd(kernel.reshape(-1, 8), compute_uv=False)[0], rel=1e-3)
  # A penalty on a spectrally normalized critic is allowed (its examples are independent).
  gen = gm.DCGANGenerator(channels=(8, 4), image_shape=SHAPE)
  state = jax.eval_shape(functools.partial(
      gan.init_state, gen=gen, disc=disc, z_dim=8, tx_gen=optax.adam(1e-3),
      tx_disc=optax.adam(1e-3)), jax.random.PRNGKey(0))
  _, metrics = jax.eval_shape(functools.partial(gan.train_step, gen=gen, disc=disc, z_dim=8,
                                                loss="wgan_gp", output="tanh", ema_decay=0.999,
                                                gp_weight=10.0), state, _batch(4))
  assert "gp" in metrics


def test_samples_of_a_batch_norm_generator_do_not_depend_on_each_other():
  # Standing statistics: G(z_i) is the same whether drawn alone or with others.
  gen = gm.DCGANGenerator(channels=(8, 4), image_shape=SHAPE)
  state = _state(gen, gm.DCGANDiscriminator(channels=(4, 8)))
  z = _normal(1, (16, 8))
  others = np.concatenate([z[:2], _normal(2, (14, 8))])   # the same first two, other companions
  g = jax.jit(functools.partial(gan.generate, gen=gen, standing_num=64))
  a, b = g(state, z), g(state, others)
  np.testing.assert_allclose(a[:2], b[:2], atol=1e-6)
  assert not np.allclose(a[2:], b[2:], atol=1e-3) and a.shape == (16, *SHAPE)


def test_classifier_scores_of_a_batch():
  # Two classes, each predicted with certainty by half of the batch: IS = 2, two modes.
  probs = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [0, 1.0, 0]])
  out = adversarial.classifier_scores(probs)
  np.testing.assert_allclose(out["cls_log_is"], np.full(4, np.log(2)), rtol=1e-6)
  np.testing.assert_array_equal(out["cls_modes"], [2, 2, 2, 2])
  # One image everywhere (a collapsed generator): log IS 0, one mode.
  out = adversarial.classifier_scores(jnp.tile(jnp.array([[0.2, 0.7, 0.1]]), (4, 1)))
  np.testing.assert_allclose(out["cls_log_is"], np.zeros(4), atol=1e-6)
  np.testing.assert_array_equal(out["cls_modes"], [1, 1, 1, 1])


# ---------------------------------------------------------------------------------------------
# Models.


def test_matmul_convolutions_equal_lax_convolutions():
  dn = ("NHWC", "HWIO", "NHWC")

  @jax.jit
  def both(x, k):
    return (gm.conv_4x4_stride2(x, k),
            jax.lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=dn),
            gm.conv_transpose_4x4_stride2(x, k),
            jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=dn))

  for shape in [(14, 14, 5), (7, 7, 4), (8, 6, 3), (1, 1, 2)]:   # even, odd, non-square, 1x1
    x, k = _normal(0, (2, *shape)), _normal(1, (4, 4, shape[-1], 3))
    conv, conv_ref, deconv, deconv_ref = both(x, k)
    assert conv.shape == conv_ref.shape and deconv.shape == deconv_ref.shape == (2, 2 * shape[0], 2 * shape[1], 3)
    np.testing.assert_allclose(conv, conv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deconv, deconv_ref, rtol=1e-5, atol=1e-5)


def test_conv_modules_have_the_parameters_of_flax_convolutions():
  x = jnp.zeros((1, 8, 8, 3))
  for mine, theirs in ((gm.Conv2x(5), nn.Conv(5, (4, 4), (2, 2), "SAME")),
                       (gm.ConvTranspose2x(5), nn.ConvTranspose(5, (4, 4), (2, 2), "SAME"))):
    a = jax.eval_shape(mine.init, jax.random.PRNGKey(0), x)
    b = jax.eval_shape(theirs.init, jax.random.PRNGKey(0), x)
    assert jax.tree.map(lambda v: v.shape, a) == jax.tree.map(lambda v: v.shape, b)


@pytest.mark.parametrize("name, shape", [("dcgan_mnist", (28, 28, 1)), ("dcgan_cifar10", (32, 32, 3)),
                                         ("dcgan_celeba64", (64, 64, 3)), ("gan_mnist", (28, 28, 1))])
def test_config_networks_have_the_data_shapes(name, shape):
  import importlib
  config = importlib.import_module(f"configs.{name}").get_config()
  gen, disc = gan.create_models(config, shape)
  z = jnp.zeros((3, config.model.z_dim))
  g_vars = jax.eval_shape(functools.partial(gen.init, train=True), jax.random.PRNGKey(0), z)
  x = jax.eval_shape(functools.partial(gen.apply, train=False), g_vars, z)
  assert x.shape == (3, *shape)
  d_vars = jax.eval_shape(functools.partial(disc.init, train=True), jax.random.PRNGKey(0), x)
  assert jax.eval_shape(functools.partial(disc.apply, train=False), d_vars, x).shape == (3,)


def test_dense_layers_sit_between_the_noise_and_the_map_and_after_the_convolutions():
  gen = gm.DCGANGenerator(channels=(8, 4), image_shape=(28, 28, 1), dense=(32,))
  disc = gm.DCGANDiscriminator(channels=(4, 8), dense=(16,))
  g = jax.eval_shape(functools.partial(gen.init, train=True), jax.random.PRNGKey(0),
                     jnp.zeros((3, 10)))["params"]
  d = jax.eval_shape(functools.partial(disc.init, train=True), jax.random.PRNGKey(0),
                     jnp.zeros((3, 28, 28, 1)))["params"]
  assert g["Dense_0"]["kernel"].shape == (10, 32) and g["Dense_1"]["kernel"].shape == (32, 7 * 7 * 8)
  assert d["Dense_0"]["kernel"].shape == (7 * 7 * 8, 16) and d["Dense_1"]["kernel"].shape == (16, 1)


@pytest.mark.parametrize("disc", [gm.MLPDiscriminator(hidden=(16,)),
                                  gm.DCGANDiscriminator(channels=(4, 8), norm="none")])
def test_a_centring_discriminator_sees_2x_minus_1(disc):
  x = jax.random.uniform(jax.random.PRNGKey(0), (5, 28, 28, 1))
  variables = disc.init(jax.random.PRNGKey(1), x, train=False)
  centred = disc.clone(centre=True).apply(variables, x, train=False)
  np.testing.assert_allclose(centred, disc.apply(variables, 2.0 * x - 1.0, train=False), rtol=1e-6)
  assert not np.allclose(centred, disc.apply(variables, x, train=False))


def test_only_a_sigmoid_generator_gets_a_centring_discriminator():
  import importlib
  for name, centre in (("gan_mnist", True), ("dcgan_mnist", False)):
    config = importlib.import_module(f"configs.{name}").get_config()
    assert config.model.gen_output == ("sigmoid" if centre else "tanh")
    assert gan.create_models(config, (28, 28, 1))[1].centre is centre


def test_generator_that_cannot_make_the_data_shape_is_a_clear_error():
  with pytest.raises(ValueError, match="not divisible by 8"):
    gm.DCGANGenerator(channels=(8, 8, 8), image_shape=(28, 28, 1)).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4)))


def test_center_crop_resize_keeps_the_center_square():
  images = np.zeros((2, 218, 178, 3), np.uint8)
  images[:, 39:179, 19:159] = 200                  # exactly the central 140 x 140 square
  images[1, 39:109, 19:159, 0] = 100               # its top half red channel
  out = data.center_crop_resize(images, crop=140, size=64)
  assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
  assert np.all(out[0] == 200)
  assert np.all(out[1, :30, :, 0] == 100) and np.all(out[1, 34:, :, 0] == 200)


# ---------------------------------------------------------------------------------------------
# The loop.


def _rows(workdir):
  return [json.loads(line) for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]


def _tiny(name="gan_mnist", **overrides):
  small = {"model.gen_hidden": (32,), "model.disc_hidden": (32,), "model.z_dim": 16,
           "model.gen_channels": (8, 4), "model.disc_channels": (4, 8), "model.standing_stats_num": 64,
           "eval.classifier": ""}
  return tiny_config(name, **(small | overrides))


@pytest.mark.slow
def test_run_logs_both_networks_and_the_classifier_scores(tfds_dir, tmp_path):
  # With InfoGAN's code, so that its Q head, its term and the code purity go through the loop too.
  final = train.train_and_evaluate(
      _tiny(**{"eval.classifier": "mnist-cnn-v1", "eval.is_num_samples": 2000,
               "model.cat_dim": 10}), str(tmp_path))
  rows = _rows(tmp_path)
  train_rows = [r for r in rows if "train/loss" in r]
  assert [r["step"] for r in train_rows] == [5, 10, 15, 20]
  for key in ("disc_loss", "gen_loss", "d_real", "d_fake", "disc_grad_norm", "gen_grad_norm",
              "fake_pixel_std", "info_ce"):
    assert all(np.isfinite(r[f"train/{key}"]) for r in train_rows), key
  assert all(0 < r["train/d_real"] < 1 and r["train/loss"] == r["train/disc_loss"] for r in train_rows)
  eval_rows = [r for r in rows if "eval/d_real" in r]
  assert [r["step"] for r in eval_rows] == [10, 20]
  assert 1 <= eval_rows[-1]["eval/cls_modes"] <= 10 and eval_rows[-1]["eval/cls_log_is"] >= 0
  assert 1.0 <= final["eval/inception_score"] <= 10.0 and 1 <= final["eval/modes_covered"] <= 10
  assert 0.1 <= final["eval/code_purity"] <= 1.0 and 1 <= final["eval/code_classes"] <= 10
  assert sorted(p.name for p in tmp_path.glob("*.png")) == ["samples_00000010.png",
                                                            "samples_00000020.png"]


@pytest.mark.slow   # the loop's own tests cover the mechanism for the VAE (test_train)
def test_stopped_and_resumed_run_is_bit_identical(tfds_dir, tmp_path):
  from test_train import check_resume
  state = check_resume(functools.partial(_tiny, **{"model.n_critic": 2}), tmp_path)
  assert "gen" in state.extra["ema"]


@pytest.mark.slow   # the loop's own tests cover the mechanism for the VAE (test_train)
def test_one_and_eight_devices_give_the_same_losses(tfds_dir, tmp_path):
  from test_train import check_devices
  check_devices(_tiny, tmp_path)


@pytest.mark.slow
def test_batch_norm_step_is_the_same_on_one_and_eight_devices():
  from ml_collections import ConfigDict
  gen = gm.DCGANGenerator(channels=(8, 4), image_shape=SHAPE)
  disc = gm.DCGANDiscriminator(channels=(4, 8))
  state = _state(gen, disc)
  step = jax.jit(functools.partial(gan.train_step, gen=gen, disc=disc, z_dim=8,
                                   loss="non_saturating", n_critic=2, output="tanh",
                                   ema_decay=0.999))
  batch = _batch(32)
  mesh = sharding.make_mesh(ConfigDict(dict(shape=(8,), axes=("data",), data_axis="data")))
  sharded = jax.device_put(batch, sharding.data_sharded(mesh, "data"))
  (s1, m1), (s8, m8) = step(state, batch), step(jax.device_put(state, sharding.replicated(mesh)), sharded)
  for k in m1:
    assert float(m8[k]) == pytest.approx(float(m1[k]), rel=1e-5, abs=1e-6), k
  for a, b in zip(jax.tree.leaves(s1.extra["batch_stats"]), jax.tree.leaves(s8.extra["batch_stats"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_gan_configs_are_clear_errors():
  from gen_jax.steps import gan as gan_steps
  cases = [({"model.n_critic": 3}, "batch_size=32 must be a positive multiple of model.n_critic=3"),
           ({"model.loss": "wgan_gp", "model.arch": "dcgan"}, "disc_norm='layer'"),
           ({"model.clip": 0.01}, "weight clipping"),
           ({"model.label_smoothing": 0.1, "model.loss": "hinge"}, "label_smoothing=0.1 needs a logit"),
           ({"model.gen_top_k": 0.0}, "gen_top_k=0.0 must be a fraction in \\(0, 1\\]"),
           ({"model.r1_weight": -1.0}, "r1_weight=-1.0 must be >= 0"),
           ({"model.cat_dim": 1}, "cat_dim=1 is the number of categories"),
           ({"model.r1_weight": 1.0, "model.arch": "dcgan"}, "R1 penalty .* needs a critic without batch norm")]
  for overrides, message in cases:
    with pytest.raises(ValueError, match=message):
      gan_steps.from_config(_tiny(**overrides), SHAPE)
  config = _tiny()
  del config.disc_optimizer
  with pytest.raises(ValueError, match="config.disc_optimizer"):
    gan_steps.from_config(config, SHAPE)
  with pytest.raises(ValueError, match="takes \\(28, 28, 1\\) images but the data are \\(32, 32, 3\\)"):
    gan_steps.from_config(_tiny(**{"eval.classifier": "mnist-cnn-v1"}), (32, 32, 3))


GAN_CONFIGS = ["gan_mnist", "dcgan_mnist", "wgan_mnist", "wgan_gp_mnist", "dcgan_fashion_mnist",
               "wgan_gp_fashion_mnist"]


@pytest.mark.slow
@pytest.mark.parametrize("name", GAN_CONFIGS)
def test_every_config_runs_through_the_loop(tfds_dir, tmp_path, name):
  config = _tiny(name, num_steps=4, steps_per_dispatch=2, **{"eval.every_steps": 4,
                                                               "checkpoint.every_steps": 4})
  config.batch_size = 8 * config.model.n_critic
  train.train_and_evaluate(config, str(tmp_path))
  rows = _rows(tmp_path)
  assert [r["step"] for r in rows if "train/loss" in r] == [2, 4]
  assert all(np.isfinite(v) for r in rows for v in r.values())
  assert (tmp_path / "samples_00000004.png").exists()


@pytest.fixture
def mock_tfds(tmp_path):
  """Random images for datasets that are not on this machine (data.mock_datasets)."""
  with data.mock_datasets(64, cache=str(tmp_path / "cache")):
    yield


MOCK = [("dcgan_cifar10", "cifar10", (32, 32, 3)), ("dcgan_celeba64", "celeb_a64", (64, 64, 3))]


@pytest.mark.parametrize("name, dataset, shape", MOCK)
def test_mock_datasets_load_with_the_config_shapes(mock_tfds, name, dataset, shape):
  config = _tiny(name)
  assert config.dataset.name == dataset
  mesh = sharding.make_mesh(config.mesh)
  split = data.load_split(dataset, "train", mesh=mesh, data_axis="data", cache=False)
  assert split.image_shape == shape and split.num_examples == 64 and split.images.dtype == jnp.uint8
  # (test_config_networks_have_the_data_shapes checks that the config's networks make this shape)


@pytest.mark.slow
@pytest.mark.parametrize("name, dataset, shape", MOCK)
def test_mock_data_through_the_loop(mock_tfds, tmp_path, name, dataset, shape):
  layers = {32: 3, 64: 4}[shape[0]]      # as in the config, with 4 or 8 channels per layer
  config = _tiny(name, num_steps=2, steps_per_dispatch=1, batch_size=16,
                 **{"eval.every_steps": 2, "checkpoint.every_steps": 2, "eval.batch_size": 32,
                    "dataset.cache": False, "model.gen_channels": (8,) * layers,
                    "model.disc_channels": (4,) * layers})
  train.train_and_evaluate(config, str(tmp_path))
  rows = _rows(tmp_path)
  assert [r["step"] for r in rows if "train/loss" in r] == [1, 2]
  assert all(np.isfinite(v) for r in rows for v in r.values())
  from PIL import Image
  grid = np.asarray(Image.open(tmp_path / "samples_00000002.png"))
  assert grid.ndim == 3 and grid.shape[-1] == 3
