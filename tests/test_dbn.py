"""The two-layer DBN: greedy schedule, and its test-likelihood bound against exact enumeration."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax import train
from gen_jax.models.rbm import RBM, all_binary_states, exact_log_partition, exact_log_prob
from gen_jax.steps import dbn

R1, R2 = RBM(10, 8), RBM(8, 6)


def _state(seed=0, scale=1.0):
  return dbn.init_state(jax.random.PRNGKey(seed), rbm1=R1, rbm2=R2, tx=optax.sgd(0.1), num_chains=16,
                        init_scale=scale)


def _data(n=16):
  return jax.random.bernoulli(jax.random.PRNGKey(7), 0.4, (n, 10)).astype(jnp.float32)


def _exact_log_p(state, v, r2=R2):
  """log p(v) = log sum_h1 p(v | h1) p(h1), p(h1) the top RBM's marginal: by enumeration."""
  p1, p2 = state.params["rbm1"], state.params["rbm2"]
  h1 = jnp.asarray(all_binary_states(8))                                          # (256, 8)
  log_prior = -r2.free_energy(p2, h1) - exact_log_partition(r2, p2)              # (256,)
  log_lik = dbn._bernoulli_log_prob(R1.visible_input(p1, h1)[None], v[:, None])  # (B, 256)
  return jax.nn.logsumexp(log_lik + log_prior, -1)


def _exact_bound(state, v):
  """E_q[log p(v|h1) + log p(h1)] + H(q), the expectation summed over all 256 states of h1."""
  p1, p2 = state.params["rbm1"], state.params["rbm2"]
  h1 = jnp.asarray(all_binary_states(8))
  q = R1.hidden_probs(p1, v)                                                      # (B, 8)
  log_q = h1 @ jnp.log(q).T + (1 - h1) @ jnp.log1p(-q).T                          # (256, B)
  log_prior = -R2.free_energy(p2, h1) - exact_log_partition(R2, p2)
  log_lik = dbn._bernoulli_log_prob(R1.visible_input(p1, h1)[None], v[:, None])  # (B, 256)
  w = jnp.exp(log_q).T
  return jnp.sum(w * (log_lik + log_prior - log_q.T), -1)


def test_bound_matches_its_exact_value_and_lies_below_the_exact_log_likelihood():
  state, v = _state(), _data()
  exact_ll = _exact_log_p(state, v)
  exact_bound = _exact_bound(state, v)
  assert bool(jnp.all(exact_bound <= exact_ll + 1e-4))
  assert float(jnp.mean(exact_ll - exact_bound)) > 0.05        # a real gap on this random DBN
  m = dbn.eval_step(state, {"image": v}, jax.random.PRNGKey(0), rbm1=R1, rbm2=R2, num_samples=20000)
  # eval_step leaves out log Z_2: -bound = neg_bound_unnorm + log Z_2.
  mc_bound = -(m["neg_bound_unnorm"] + exact_log_partition(R2, state.params["rbm2"]))
  np.testing.assert_allclose(mc_bound, exact_bound, atol=0.2)   # MC error ~0.05


def test_unrolled_top_layer_makes_the_dbn_exactly_the_first_rbm():
  top = RBM(8, 10)
  state = dbn.init_state(jax.random.PRNGKey(0), rbm1=R1, rbm2=top, tx=optax.sgd(0.1), num_chains=16,
                         init_scale=1.0)
  v = _data()
  step = jax.jit(functools.partial(dbn.train_step, rbm1=R1, rbm2=top, layer1_steps=2, method="pcd",
                                   init_top_from_bottom=True))
  state, _ = step(state, {"image": v})
  state, _ = step(state, {"image": v})        # still layer 1
  unrolled = dbn.unroll(state, jax.random.PRNGKey(1), rbm1=R1)
  np.testing.assert_allclose(_exact_log_p(unrolled, v, top), exact_log_prob(R1, state.params["rbm1"], v),
                             atol=1e-4)
  # The step at layer1_steps unrolls first, then takes one (small) step from there.
  after, m = step(state, {"image": v})
  assert float(m["layer"]) == 2
  np.testing.assert_allclose(after.params["rbm2"]["W"], unrolled.params["rbm2"]["W"], atol=0.15)
  assert not np.allclose(after.params["rbm2"]["W"], state.params["rbm2"]["W"], atol=0.5)


def test_greedy_schedule_trains_layer_one_then_only_layer_two():
  state, v = _state(scale=0.1), _data()
  step = jax.jit(functools.partial(dbn.train_step, rbm1=R1, rbm2=R2, layer1_steps=3, method="pcd", k=1))
  p0 = state.params
  for _ in range(3):
    state, m = step(state, {"image": v})
    assert float(m["layer"]) == 1
  p3 = state.params
  assert not np.allclose(p3["rbm1"]["W"], p0["rbm1"]["W"])
  np.testing.assert_array_equal(p3["rbm2"]["W"], p0["rbm2"]["W"])
  np.testing.assert_allclose(state.extra["data_mean"], v.mean(0), atol=1e-6)
  chains2 = state.extra["chains2"]
  for _ in range(2):
    state, m = step(state, {"image": v})
    assert float(m["layer"]) == 2
  np.testing.assert_array_equal(state.params["rbm1"]["W"], p3["rbm1"]["W"])
  assert not np.allclose(state.params["rbm2"]["W"], p3["rbm2"]["W"])
  assert not np.array_equal(state.extra["chains2"], chains2)
  # h1_mean is the mean of q(h1 | v) under the (now frozen) RBM 1.
  np.testing.assert_allclose(state.extra["h1_mean"], R1.hidden_probs(p3["rbm1"], v).mean(0), atol=1e-5)


@pytest.mark.heavy
def test_loop_reports_the_dbn_bound(tfds_dir, tmp_path):
  import importlib
  c = importlib.import_module("configs.dbn_mnist").get_config("tiny")
  c.model.update(num_hidden=16, num_hidden2=12, num_chains=32, sample_steps=5, bound_samples=2,
                 layer1_steps=10, init_top_from_bottom=False)
  c.update(batch_size=32, num_steps=20, steps_per_dispatch=5, tensorboard=False)
  c.eval.update(every_steps=10, num_images=4)
  c.checkpoint.update(every_steps=10, async_save=False)
  c.mesh.shape = (1,)
  c.ais.update(num_runs=8, num_betas=200)
  final = train.train_and_evaluate(c, str(tmp_path))
  assert final["eval/nll_bound"] == pytest.approx(final["eval/neg_bound_unnorm"] + final["eval/log_z2"],
                                                  abs=1e-3)
  assert final["eval/nll_bound_lo"] <= final["eval/nll_bound"] <= final["eval/nll_bound_hi"]
  assert 100 < final["eval/nll_ais_rbm1"] < 784 * math.log(2)
  assert sorted(p.name for p in tmp_path.glob("samples_*.png")) == [
      "samples_00000010.png", "samples_00000020.png"]
