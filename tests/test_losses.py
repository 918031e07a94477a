import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gen_jax.losses import densities


def test_softplus_matches_reference_everywhere():
  x = jnp.linspace(-100.0, 100.0, 20001)
  np.testing.assert_allclose(densities.softplus(x), np.logaddexp(0.0, np.asarray(x, np.float64)),
                             rtol=1e-6, atol=1e-7)
  g = jax.grad(lambda v: densities.softplus(v).sum())(jnp.array([-3.0, 0.5, 4.0]))
  np.testing.assert_allclose(g, jax.nn.sigmoid(jnp.array([-3.0, 0.5, 4.0])), rtol=1e-6)


def test_bernoulli_log_prob_matches_numpy_reference():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 4, 4, 1)).astype(np.float32) * 3
  x = (rng.uniform(size=(3, 4, 4, 1)) > 0.5).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  expected = (x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(3, -1).sum(-1)
  np.testing.assert_allclose(densities.bernoulli_log_prob(logits, x), expected, rtol=1e-5)


def test_bernoulli_log_prob_broadcasts_leading_sample_axis():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(5, 3, 2, 2, 1)).astype(np.float32)
  x = (rng.uniform(size=(3, 2, 2, 1)) > 0.5).astype(np.float32)
  out = densities.bernoulli_log_prob(logits, x)
  assert out.shape == (5, 3)
  np.testing.assert_allclose(out[2], densities.bernoulli_log_prob(logits[2], x), rtol=1e-6)


def test_gaussian_log_probs_match_scipy():
  rng = np.random.default_rng(2)
  z, mean, logvar = (rng.normal(size=(4, 3)) for _ in range(3))
  expected = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  np.testing.assert_allclose(densities.gaussian_log_prob(z, mean, logvar), expected, rtol=1e-5)
  np.testing.assert_allclose(densities.standard_normal_log_prob(z), stats.norm.logpdf(z).sum(-1), rtol=1e-5)


def test_gaussian_kl_matches_monte_carlo_and_zero_at_prior():
  mean, logvar = jnp.array([[0.7, -1.2]]), jnp.array([[-0.5, 0.8]])
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(jax.random.PRNGKey(0), (200_000, 2))
  mc = jnp.mean(densities.gaussian_log_prob(z, mean, logvar) - densities.standard_normal_log_prob(z))
  assert float(densities.gaussian_kl(mean, logvar)[0]) == pytest.approx(float(mc), abs=0.01)
  assert float(densities.gaussian_kl(jnp.zeros((1, 5)), jnp.zeros((1, 5)))[0]) == 0.0


def test_importance_weighted_bound_is_log_mean_exp():
  log_w = jnp.array([[-1.0, -2.0, -3.0, -4.0], [5.0, 5.0, 5.0, 5.0]])
  expected = np.log(np.exp(np.array(log_w, np.float64)).mean(-1))
  np.testing.assert_allclose(densities.importance_weighted_bound(log_w), expected, rtol=1e-6)
  assert densities.nats_to_bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
