"""RBM, CD/PCD and AIS against exact answers: a 12x8 RBM small enough to enumerate every state."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from gen_jax import train
from gen_jax import run as run_lib
from gen_jax.applications import masks
from gen_jax.likelihood import ais
from gen_jax.models.rbm import RBM, all_binary_states, exact_log_partition, exact_log_prob, \
    exact_visible_distribution
from gen_jax.steps import rbm as rbm_steps

V, H = 12, 8
TINY = RBM(V, H)
STATES = all_binary_states(V)            # (4096, 12)


def _params(seed=0, w_scale=1.0, nv=V, nh=H):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  return {"W": w_scale * jax.random.normal(k1, (nv, nh)),
          "vbias": 0.5 * jax.random.normal(k2, (nv,)), "hbias": 0.5 * jax.random.normal(k3, (nh,))}


def _data(n=20, seed=1):
  """Binary training vectors with structure: two noisy prototypes."""
  rng = np.random.default_rng(seed)
  protos = np.array([[1] * 6 + [0] * 6, [0, 1] * 6], np.float32)
  x = protos[rng.integers(0, 2, n)]
  flip = rng.random(x.shape) < 0.1
  return jnp.asarray(np.where(flip, 1 - x, x))


def _index(v):
  """Row of STATES for each binary vector (MSB first)."""
  return (np.asarray(v).astype(np.int64) * (1 << np.arange(V - 1, -1, -1))).sum(-1)


# ---- exact quantities -----------------------------------------------------------------------------


def test_log_partition_matches_the_sum_over_all_joint_states_and_a_closed_form():
  params = _params()
  # Brute force: log sum_{v,h} exp(-E(v, h)) over all 4096 * 256 joint states.
  hs = jnp.asarray(all_binary_states(H))
  v_rep, h_rep = jnp.repeat(jnp.asarray(STATES), len(hs), 0), jnp.tile(hs, (len(STATES), 1))
  brute = float(jax.nn.logsumexp(-TINY.energy(params, v_rep, h_rep)))
  assert float(exact_log_partition(TINY, params)) == pytest.approx(brute, abs=1e-4)
  # Summing over the visible or the hidden layer gives the same answer.
  wide = RBM(V, 16)
  wide_params = _params(nh=16)
  via_h = float(jax.nn.logsumexp(-wide.hidden_free_energy(wide_params, jnp.asarray(all_binary_states(16)))))
  assert float(exact_log_partition(wide, wide_params)) == pytest.approx(via_h, abs=1e-3)
  # Without weights the layers are independent: log Z = sum softplus(vbias) + sum softplus(hbias).
  free = dict(params, W=jnp.zeros((V, H)))
  closed = float(jnp.sum(jax.nn.softplus(free["vbias"])) + jnp.sum(jax.nn.softplus(free["hbias"])))
  assert float(exact_log_partition(TINY, free)) == pytest.approx(closed, abs=1e-5)
  assert float(jnp.sum(jnp.exp(exact_log_prob(TINY, params, jnp.asarray(STATES))))) == pytest.approx(1.0, abs=1e-5)


def test_gaussian_rbm_density_integrates_to_one():
  rbm = RBM(2, 3, visible="gaussian", sigma=0.8)
  params = _params(seed=3, w_scale=0.7, nv=2, nh=3)
  grid = np.linspace(-8, 8, 801, dtype=np.float32)
  xx, yy = np.meshgrid(grid, grid)
  v = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1))
  density = np.exp(np.asarray(exact_log_prob(rbm, params, v), np.float64))
  assert density.sum() * (grid[1] - grid[0]) ** 2 == pytest.approx(1.0, abs=1e-4)
  # Its conditional p(v | h) is N(vbias + W h, sigma^2): the sampler's mean and spread.
  h = jnp.ones((20000, 3))
  samples = rbm.sample_visible(jax.random.PRNGKey(0), params, h)
  np.testing.assert_allclose(samples.mean(0), params["vbias"] + params["W"].sum(1), atol=0.03)
  np.testing.assert_allclose(samples.std(0), [0.8, 0.8], atol=0.02)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_sufficient_statistics_are_minus_the_free_energy_gradient(visible):
  rbm = RBM(V, H, visible=visible, sigma=0.7)
  params, v = _params(), _data()
  if visible == "gaussian":
    v = v + 0.3 * jax.random.normal(jax.random.PRNGKey(5), v.shape)
  autodiff = jax.grad(lambda p: rbm.free_energy(p, v).mean())(params)
  mine = rbm.sufficient_stats(params, v)
  for name in params:
    np.testing.assert_allclose(mine[name], -autodiff[name], rtol=1e-5, atol=1e-6)


def _stats_under(rbm, params, q):
  """Expected sufficient statistics when v ~ q (a distribution over STATES)."""
  per_state = jax.vmap(lambda s: rbm.sufficient_stats(params, s[None]))(jnp.asarray(STATES))
  return jax.tree.map(lambda s: jnp.tensordot(q, s, axes=1), per_state)


def test_exact_log_likelihood_gradient_is_data_minus_model_statistics():
  params, data = _params(), _data()
  exact = jax.grad(lambda p: -exact_log_prob(TINY, p, data).mean())(params)
  model = _stats_under(TINY, params, exact_visible_distribution(TINY, params))
  from_stats = jax.tree.map(lambda m, d: m - d, model, TINY.sufficient_stats(params, data))
  for name in params:
    np.testing.assert_allclose(from_stats[name], exact[name], rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(exact["W"]).max()) > 0.05   # a gradient worth checking


def _transition(rbm, params):
  """The exact (4096, 4096) one-sweep transition matrix v -> h -> v' of block Gibbs (float64)."""
  hs = all_binary_states(H).astype(np.float64)
  ph = np.asarray(rbm.hidden_probs(params, jnp.asarray(STATES)), np.float64)        # (4096, H)
  p_h_given_v = np.exp(np.log(ph) @ hs.T + np.log1p(-ph) @ (1 - hs).T)             # (4096, 256)
  pv = np.asarray(jax.nn.sigmoid(rbm.visible_input(params, jnp.asarray(hs, jnp.float32))), np.float64)
  p_v_given_h = np.exp(np.log(pv) @ STATES.T + np.log1p(-pv) @ (1 - STATES.T))      # (256, 4096)
  return p_h_given_v, p_v_given_h


def test_cd_k_gradient_approaches_the_exact_gradient_as_k_grows():
  params, data = _params(seed=2, w_scale=1.5), _data()
  exact = jax.grad(lambda p: -exact_log_prob(TINY, p, data).mean())(params)
  p_h_given_v, p_v_given_h = _transition(TINY, params)
  q0 = np.bincount(_index(data), minlength=len(STATES)) / len(data)

  def expected_cd(k):
    """E[CD-k gradient] exactly: the data distribution pushed through k Gibbs sweeps."""
    q = q0
    for _ in range(k):
      q = (q @ p_h_given_v) @ p_v_given_h
    model = _stats_under(TINY, params, jnp.asarray(q, jnp.float32))
    return jax.tree.map(lambda m, d: m - d, model, TINY.sufficient_stats(params, data))

  def dist(g):
    return float(jnp.sqrt(sum(jnp.sum((g[n] - exact[n]) ** 2) for n in exact)))

  ks = (1, 3, 10, 30, 200)
  exact_cd = {k: expected_cd(k) for k in ks}
  d = [dist(exact_cd[k]) for k in ks]
  assert d[0] > 0.3                                  # CD-1 is badly biased on this RBM ...
  assert all(a > b for a, b in zip(d, d[1:]))        # ... less so with every k ...
  assert d[-1] < 1e-3                                # ... and CD-200 is the exact gradient.

  # The implementation's Monte Carlo CD-k (20 data vectors x 1000 chains) matches those
  # expectations within its sampling noise, and so approaches the exact gradient too.
  tiled = jnp.tile(data, (1000, 1))
  mc_dist = []
  for k in (1, 10, 200):
    v_neg = TINY.gibbs(jax.random.PRNGKey(k), params, tiled, k)
    g = TINY.nll_grads(params, tiled, v_neg)
    for n in g:
      np.testing.assert_allclose(g[n], exact_cd[k][n], atol=0.03)
    mc_dist.append(dist(g))
  assert mc_dist[0] > 0.3 and mc_dist[2] < 0.05 and mc_dist[0] > mc_dist[1] > mc_dist[2]


def test_gibbs_samples_follow_the_exact_distribution_chi_square():
  params = _params(seed=4)
  p = np.asarray(exact_visible_distribution(TINY, params), np.float64)
  # 100 sweeps from uniform noise mix this RBM completely (checked exactly, not assumed).
  p_h_given_v, p_v_given_h = _transition(TINY, params)
  q = np.full(len(STATES), 1 / len(STATES))
  for _ in range(100):
    q = (q @ p_h_given_v) @ p_v_given_h
  assert 0.5 * np.abs(q - p).sum() < 1e-4

  n = 20000
  v0 = jax.random.bernoulli(jax.random.PRNGKey(0), 0.5, (n, V)).astype(jnp.float32)
  samples = jax.jit(TINY.gibbs, static_argnums=3)(jax.random.PRNGKey(1), params, v0, 100)
  counts = np.bincount(_index(samples), minlength=len(STATES))

  def chi2_pvalue(expected_p):
    expected = n * expected_p
    big = expected >= 5       # pool the rare states into one bin so every bin expects >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    return stats.chisquare(obs, exp * obs.sum() / exp.sum(), ddof=0).pvalue, big.sum()

  pvalue, bins = chi2_pvalue(p)
  assert bins > 100
  assert pvalue > 0.01
  # The test has power: against the distribution of a slightly different RBM it fails clearly.
  other = np.asarray(exact_visible_distribution(TINY, dict(params, W=params["W"] * 1.05)), np.float64)
  assert chi2_pvalue(other)[0] < 1e-6


def test_clamped_gibbs_inpaints_from_the_exact_conditional_distribution():
  """With the first 6 units clamped, the other 6 follow p(v_unknown | v_known) (chi-square), and
  the clamped units never move."""
  params = _params(seed=5)
  p_all = np.asarray(exact_visible_distribution(TINY, params), np.float64)
  known_value = np.array([1, 0, 1, 1, 0, 0], np.float32)
  rows = np.all(STATES[:, :6] == known_value, axis=1)                    # 64 completions
  p_cond = p_all[rows] / p_all[rows].sum()
  n = 20000
  known = jnp.asarray(np.arange(V) < 6)
  v0 = jnp.asarray(np.concatenate([np.tile(known_value, (n, 1)),
                                   np.random.default_rng(0).integers(0, 2, (n, 6))], 1), jnp.float32)
  samples = np.asarray(jax.jit(TINY.clamped_gibbs, static_argnums=4)(
      jax.random.PRNGKey(2), params, v0, known, 100))
  np.testing.assert_array_equal(samples[:, :6], np.tile(known_value, (n, 1)))
  counts = np.bincount(_index(samples) - _index(np.concatenate([known_value, np.zeros(6)])[None])[0],
                       minlength=64)
  assert stats.chisquare(counts, n * p_cond).pvalue > 0.01
  unconditional = p_all.reshape(64, 64).sum(0)      # the marginal of the last 6 units: wrong here
  assert stats.chisquare(counts, n * unconditional / unconditional.sum()).pvalue < 1e-6


def test_inpaint_keeps_the_top_half_and_fills_the_bottom():
  rbm = RBM(16, 8)
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  params = {"W": jax.random.normal(k1, (16, 8)), "vbias": jnp.zeros(16), "hbias": jnp.zeros(8)}
  state = rbm_steps.init_state(k2, rbm=rbm, tx=rbm_steps.make_optimizer(learning_rate=0.1),
                               init_scale=0.01)
  state = state.replace(params={"rbm": params})
  x = jax.random.bernoulli(jax.random.PRNGKey(3), 0.5, (5, 4, 4, 1)).astype(jnp.float32)
  mask = masks.make("bottom", (4, 4, 1), num=5)
  filled = rbm_steps.inpaint(state, {"image": x}, mask, jax.random.PRNGKey(4), rbm=rbm, num_steps=5)
  np.testing.assert_array_equal(filled[:, :2], x[:, :2])
  assert np.all((np.asarray(filled) >= 0) & (np.asarray(filled) <= 1))
  assert not np.allclose(filled[:, 2:], 0.5)


def test_pseudo_likelihood_matches_exact_conditionals():
  params, data = _params(), _data(8)
  logp = np.asarray(exact_log_prob(TINY, params, jnp.asarray(STATES)), np.float64)
  idx = _index(data)
  brute = np.zeros(len(idx))
  for i in range(V):
    flipped = idx ^ (1 << (V - 1 - i))
    brute -= logp[idx] - np.logaddexp(logp[idx], logp[flipped])
  np.testing.assert_allclose(TINY.exact_pseudo_nll(params, data), brute, rtol=1e-4)
  # The one-random-unit estimate is unbiased for it.
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  mc = jax.vmap(lambda k: TINY.pseudo_nll(k, params, data))(keys).mean(0)
  np.testing.assert_allclose(mc, brute, rtol=0.05)


# ---- AIS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("visible,schedule", [("bernoulli", "piecewise"), ("bernoulli", "linear"),
                                              ("bernoulli", "geometric"), ("gaussian", "linear")])
def test_ais_log_partition_is_within_005_nats_of_exact(visible, schedule):
  rbm = RBM(V, H, visible=visible, sigma=0.7)
  params = _params(w_scale=1.0 if visible == "bernoulli" else 0.3)
  exact = float(exact_log_partition(rbm, params))
  data_mean = _data(200).mean(0)
  base = data_mean if rbm.gaussian else rbm_steps.base_rate_logits(data_mean)
  res = ais.log_partition(jax.random.PRNGKey(0), params, jnp.asarray(ais.betas(schedule, 3000)),
                          base, rbm=rbm, num_runs=100)
  assert res["log_w"].shape == (100,)
  assert float(res["log_z"]) == pytest.approx(exact, abs=0.05)
  assert float(res["log_z_lo"]) <= exact <= float(res["log_z_hi"])
  assert float(res["log_z_hi"]) - float(res["log_z_lo"]) < 0.5


def test_ais_of_the_base_rate_model_itself_is_exact_with_equal_weights():
  params = dict(_params(), W=jnp.zeros((V, H)), hbias=jnp.zeros(H))
  res = ais.log_partition(jax.random.PRNGKey(0), params, jnp.asarray(ais.betas("linear", 50)),
                          params["vbias"], rbm=TINY, num_runs=10)
  np.testing.assert_allclose(res["log_w"], 0.0, atol=1e-5)
  assert float(res["log_z"]) == pytest.approx(float(exact_log_partition(TINY, params)), abs=1e-5)


def test_ais_estimate_band_from_known_weights():
  w = np.array([1.0, 2.0, 3.0, 10.0])
  res = ais.estimate(jnp.log(jnp.asarray(w, jnp.float32)) + 100.0, jnp.float32(5.0))
  z = w.mean()
  sd = w.std(ddof=1) / 2.0
  assert float(res["log_z"]) == pytest.approx(105 + math.log(z), abs=1e-4)
  assert float(res["log_z_hi"]) == pytest.approx(105 + math.log(z + 3 * sd), abs=1e-4)
  assert float(res["log_z_lo"]) == -math.inf            # z - 3 sd < 0
  tight = ais.estimate(jnp.log(jnp.asarray([1.0, 1.1, 0.9, 1.0])), jnp.float32(0.0))
  sd = np.std([1.0, 1.1, 0.9, 1.0], ddof=1) / 2
  assert float(tight["log_z_lo"]) == pytest.approx(math.log(1.0 - 3 * sd), abs=1e-5)


def test_schedules_run_from_zero_to_one():
  for kind in ais.SCHEDULES:
    b = ais.betas(kind, 1000)
    assert b.shape == (1000,) and b[0] == 0.0 and b[-1] == 1.0 and np.all(np.diff(b) > 0), kind
  with pytest.raises(ValueError, match="unknown AIS schedule"):
    ais.betas("cosine", 10)


# ---- training steps --------------------------------------------------------------------------------


def test_pcd_training_raises_the_exact_likelihood_and_keeps_its_chains():
  data = _data(50)
  tx = rbm_steps.make_optimizer(learning_rate=0.1, momentum=0.5, weight_decay=1e-4)
  state = rbm_steps.init_state(jax.random.PRNGKey(0), rbm=TINY, tx=tx, num_chains=50, init_scale=0.1)
  step = jax.jit(functools.partial(rbm_steps.train_step, rbm=TINY, method="pcd", k=1))
  nll = lambda s: float(-exact_log_prob(TINY, s.params["rbm"], data).mean())
  before = nll(state)
  chains = state.extra["chains"]
  for _ in range(500):
    state, metrics = step(state, {"image": data.reshape(50, V, 1, 1)})
  assert before == pytest.approx(V * math.log(2), abs=0.3)   # small random weights: ~uniform
  assert nll(state) < 5.5 < before - 2.5
  assert not np.array_equal(state.extra["chains"], chains)   # the chains moved ...
  assert state.extra["chains"].shape == (50, V)              # ... and persist in the state
  np.testing.assert_allclose(state.extra["data_mean"], data.mean(0), atol=1e-5)
  assert set(metrics) == {"loss", "recon", "free_energy", "free_energy_gap", "pseudo_nll"}


def test_train_step_applies_the_cd_statistics_as_gradients():
  """With plain SGD (lr 1) the update is exactly minus the CD-k statistic of the step's chains."""
  data = _data(16)
  state = rbm_steps.init_state(jax.random.PRNGKey(0), rbm=TINY, tx=optax.sgd(1.0), init_scale=0.5)
  new, _ = rbm_steps.train_step(state, {"image": data}, rbm=TINY, method="cd", k=3)
  chain_key, _ = jax.random.split(state.step_key())
  g = TINY.nll_grads(state.params["rbm"], data, TINY.gibbs(chain_key, state.params["rbm"], data, 3))
  for n in g:
    np.testing.assert_allclose(new.params["rbm"][n], state.params["rbm"][n] - g[n], atol=1e-6)
  assert int(new.step) == 1 and "chains" not in new.extra


def test_weight_decay_applies_to_weights_only_and_momentum_accumulates():
  params = _params()
  zero = jax.tree.map(jnp.zeros_like, params)
  tx = rbm_steps.make_optimizer(learning_rate=0.1, momentum=0.9, weight_decay=0.01)
  opt = tx.init(params)
  upd, opt = tx.update(zero, opt, params)
  np.testing.assert_allclose(upd["W"], -0.1 * 0.01 * params["W"], rtol=1e-6)
  np.testing.assert_allclose(upd["vbias"], 0.0)
  one = jax.tree.map(jnp.ones_like, params)
  upd1, opt = tx.update(one, tx.init(params), params)
  upd2, _ = tx.update(one, opt, params)
  np.testing.assert_allclose(upd2["hbias"], -0.1 * 1.9, rtol=1e-6)


def test_sample_and_reconstruct_shapes_and_ranges():
  state = rbm_steps.init_state(jax.random.PRNGKey(0), rbm=RBM(16, 8), tx=optax.sgd(0.1), init_scale=1.0)
  s = jax.jit(functools.partial(rbm_steps.sample, rbm=RBM(16, 8), image_shape=(4, 4, 1), num_steps=5),
              static_argnums=2)(state, jax.random.PRNGKey(1), 6)
  r = rbm_steps.reconstruct(state, {"image": jnp.ones((3, 4, 4, 1))}, rbm=RBM(16, 8))
  assert s.shape == (6, 4, 4, 1) and r.shape == (3, 4, 4, 1)
  assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0 and 0.0 <= float(r.min())


# ---- configs and the training loop -----------------------------------------------------------------


def _tiny_rbm_config(name="rbm_mnist", **overrides):
  import importlib
  c = importlib.import_module(f"configs.{name}").get_config("tiny")
  c.model.num_hidden = 16
  c.model.num_chains = 32
  c.model.sample_steps = 10
  c.batch_size = 32
  c.num_steps = 20
  c.steps_per_dispatch = 5
  c.eval.every_steps = 10
  c.eval.num_images = 4
  c.checkpoint.every_steps = 10
  c.checkpoint.async_save = False
  c.tensorboard = False
  c.mesh.shape = (1,)
  c.ais.num_runs = 8
  c.ais.num_betas = 200
  for path, value in overrides.items():
    node = c
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.mark.parametrize("name", ["rbm_mnist", "rbm_fashion_mnist", "rbm_gaussian_mnist"])
def test_configs_build_their_family(name):
  import importlib
  for arg in (None, "tiny"):
    c = importlib.import_module(f"configs.{name}").get_config(arg)
    family = rbm_steps.from_config(c, (28, 28, 1))
    assert family.final_metrics is not None and family.sample is not None
  assert c.num_epochs == 1 and c.ais.num_betas < 14500


@pytest.mark.heavy
def test_loop_reports_the_ais_nll_and_resumes_persistent_chains_bit_identically(tfds_dir, tmp_path):
  full = train.train_and_evaluate(_tiny_rbm_config(), str(tmp_path / "full"))
  # The AIS test NLL is the mean test free energy + log Z, in metrics.jsonl and final_metrics.json.
  assert full["eval/nll_ais"] == pytest.approx(full["eval/free_energy"] + full["eval/log_z"], abs=1e-3)
  assert full["eval/nll_ais_lo"] <= full["eval/nll_ais"] <= full["eval/nll_ais_hi"]
  assert 100 < full["eval/nll_ais"] < 784 * math.log(2)
  rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
  assert any("eval/nll_ais" in r and r["step"] == 20 for r in rows)
  assert json.loads((tmp_path / "full" / "final_metrics.json").read_text())["eval/nll_ais"] == \
      pytest.approx(full["eval/nll_ais"])
  assert sorted(p.name for p in (tmp_path / "full").glob("samples_*.png")) == [
      "samples_00000010.png", "samples_00000020.png"]
  assert len(list((tmp_path / "full").glob("inpaintings_*.png"))) == 2
  # Stop at step 10 and resume: the persistent chains come back from the checkpoint, so the run
  # ends bit-identical to the uninterrupted one (with fresh chains it would not).
  train.train_and_evaluate(_tiny_rbm_config(num_steps=10), str(tmp_path / "part"))
  train.train_and_evaluate(_tiny_rbm_config(), str(tmp_path / "part"))
  states = []
  for workdir in ("full", "part"):
    _, state = run_lib.restore(_tiny_rbm_config(), tmp_path / workdir)
    states.append(jax.device_get(state))
  assert int(states[0].step) == int(states[1].step) == 20
  assert states[0].extra["chains"].shape == (32, 784)
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(a, b)


def test_eval_at_end_off_still_evaluates_where_the_ais_nll_reads_it(tfds_dir, tmp_path):
  config = _tiny_rbm_config(num_steps=10, **{"eval.at_end": False, "eval.num_images": 0})
  assert rbm_steps.from_config(config, (28, 28, 1)).final_metrics_read_eval
  final = train.train_and_evaluate(config, str(tmp_path))
  assert final["eval/nll_ais"] == pytest.approx(final["eval/free_energy"] + final["eval/log_z"],
                                                abs=1e-3)


@pytest.mark.slow   # the loop's own tests cover the mechanism for the VAE (test_train)
def test_one_and_eight_devices_give_the_same_rbm_losses(tfds_dir, tmp_path):
  rows = {}
  for n in (1, 8):
    c = _tiny_rbm_config(**{"mesh.shape": (n,), "num_steps": 10, "ais.num_runs": 0})
    train.train_and_evaluate(c, str(tmp_path / str(n)))
    rows[n] = [json.loads(line) for line in (tmp_path / str(n) / "metrics.jsonl").read_text().splitlines()]
  assert len(rows[1]) == len(rows[8])
  for r1, r8 in zip(rows[1], rows[8]):
    for k in r1:
      if "per_sec" not in k:
        assert r8[k] == pytest.approx(r1[k], rel=1e-4, abs=1e-4), (r1["step"], k)
