"""The importance-weighted bound on a linear-Gaussian latent model, whose log p(x) is exact.

z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_3), so p(x) = N(x; b, W W^T + s^2 I) in closed form. The
proposal q(z | x) is a diagonal Gaussian (as in the VAE), built from the exact posterior, so its
KL to the posterior is known to be > 0 and the bound must climb towards log p(x) as k grows.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gen_jax.losses import densities

W = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.4]])
B = np.array([0.2, -0.1, 0.5])
S2 = 0.3


def _posterior(x):
  """Exact posterior N(mu, Sigma) of z given x (rows of x)."""
  prec = np.eye(2) + W.T @ W / S2
  cov = np.linalg.inv(prec)
  mu = (x - B) @ W @ cov.T / S2
  return mu, cov


def _log_weights(x, z, q_mean, q_logvar):
  """log p(x | z) + log p(z) - log q(z | x), z of shape (k, n, 2)."""
  mean_x = z @ W.T + B
  log_px_z = densities.gaussian_log_prob(x, mean_x, jnp.full(mean_x.shape, np.log(S2)))
  return log_px_z + densities.standard_normal_log_prob(z) - densities.gaussian_log_prob(z, q_mean, q_logvar)


def _bound(x, k, key, q_mean, q_logvar):
  eps = jax.random.normal(key, (k, *q_mean.shape))
  z = q_mean + jnp.exp(0.5 * q_logvar) * eps
  return densities.importance_weighted_bound(_log_weights(x, z, q_mean, q_logvar).T)   # (n,)


@pytest.fixture(scope="module")
def problem():
  x = np.random.default_rng(0).normal(size=(256, 3)) * 1.5
  exact = stats.multivariate_normal(B, W @ W.T + S2 * np.eye(3)).logpdf(x)
  mu, cov = _posterior(x)
  return x, exact, mu, cov


def test_every_k_is_exact_when_the_proposal_is_the_posterior(problem):
  # With q = the exact (full-covariance) posterior every weight equals p(x), for any sample.
  x, exact, mu, cov = problem
  chol = np.linalg.cholesky(cov)
  z = mu + np.random.default_rng(1).normal(size=(5, *mu.shape)) @ chol.T          # (5, n, 2)
  log_q = stats.multivariate_normal(np.zeros(2), cov).logpdf((z - mu).reshape(-1, 2)).reshape(5, -1)
  mean_x = z @ W.T + B
  log_w = (densities.gaussian_log_prob(x, mean_x, jnp.full(mean_x.shape, np.log(S2)))
           + densities.standard_normal_log_prob(z) - log_q)
  np.testing.assert_allclose(log_w, np.broadcast_to(exact, log_w.shape), atol=1e-4)
  np.testing.assert_allclose(densities.importance_weighted_bound(log_w.T), exact, atol=1e-4)


def test_bound_climbs_to_the_exact_log_likelihood_as_k_grows(problem):
  x, exact, mu, cov = problem
  q_mean = jnp.asarray(mu, jnp.float32)
  q_logvar = jnp.log(jnp.broadcast_to(jnp.diag(cov) * 2.0, mu.shape))   # too wide, diagonal
  key = jax.random.PRNGKey(0)
  gaps = {}
  for k in (1, 10, 10000):
    bound = np.asarray(_bound(x, k, jax.random.fold_in(key, k), q_mean, q_logvar), np.float64)
    gaps[k] = float(np.mean(exact - bound))
  # A lower bound in expectation; the k=1 gap is the mean KL(q || posterior) > 0.
  assert gaps[1] > 0.1
  assert 0 < gaps[10] < gaps[1] / 3
  assert abs(gaps[10000]) < 0.01


def test_k1_gap_equals_the_kl_from_proposal_to_posterior(problem):
  """E_q[log p(x) - log w] = KL(q || p(z|x)), which for two Gaussians is closed form."""
  x, exact, mu, cov = problem
  q_var = np.diag(cov) * 2.0
  kl = 0.5 * (np.trace(np.linalg.inv(cov) @ np.diag(q_var)) - 2 + np.log(np.linalg.det(cov))
              - np.sum(np.log(q_var)))
  q_mean = jnp.asarray(mu, jnp.float32)
  q_logvar = jnp.log(jnp.broadcast_to(q_var, mu.shape))
  samples = np.stack([np.asarray(_bound(x, 1, jax.random.PRNGKey(i), q_mean, q_logvar))
                      for i in range(400)])                                    # (400, n)
  gap = exact - samples.mean(0)
  np.testing.assert_allclose(gap.mean(), kl, atol=0.02)
