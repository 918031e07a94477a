"""The importance-weighted bound of a family (``Family.log_likelihood``) on the whole test split.

The bound comes back per example and is reduced on the host in float64: a float32 sum of squares
loses the variance to cancellation (values ~ -100, spread ~ 10), and loses it differently on 1
and on 8 devices. The standard error is over the test images.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gen_jax import data, sharding, writers
from gen_jax.run import Run


def log_likelihood_batch(state, images: jax.Array, start: jax.Array, key: jax.Array, *,
                         log_likelihood: Callable, batch_size: int, num_examples: int, mesh: Mesh,
                         data_axis: str) -> tuple[jax.Array, jax.Array]:
  """The per-example bound of the test batch at ``start``, and the mask of its real examples."""
  batch, mask = data.eval_batch(images, start, batch_size=batch_size, num_examples=num_examples,
                                mesh=mesh, data_axis=data_axis)
  return log_likelihood(state, batch, jax.random.fold_in(key, start)), mask


def values(state, run: Run, *, k: int, batch_size: int, seed: int) -> np.ndarray:
  """The per-example bound with ``k`` samples on the whole test split, float64, in test-split
  order; logs progress."""
  sharding.check_batch_size(batch_size, run.mesh, run.data_axis, "eval.iwae_batch_size")
  fn = jax.jit(functools.partial(
      log_likelihood_batch, log_likelihood=functools.partial(run.family.log_likelihood, k=k),
      batch_size=batch_size, num_examples=run.num_test, mesh=run.mesh, data_axis=run.data_axis))
  key = jax.random.PRNGKey(seed)
  out, t0 = [], time.time()
  starts = range(0, run.num_test, batch_size)
  for i, start in enumerate(starts):
    ll, mask = sharding.host_value(fn(state, run.test_images, jnp.int32(start), key))
    out.append(np.asarray(ll, np.float64)[np.asarray(mask)])
    elapsed = time.time() - t0
    logging.info("IWAE k=%d: %d/%d test images | ETA %s", k, min(start + batch_size, run.num_test),
                 run.num_test, writers.format_eta(elapsed * (len(starts) / (i + 1) - 1)))
  return np.concatenate(out)


def summarize(log_likelihoods: np.ndarray, num_dims: int) -> tuple[float, float, float]:
  """(NLL bound in nats, its standard error over the examples, bits/dim) of per-example bounds."""
  mean = float(log_likelihoods.mean())
  stderr = float(log_likelihoods.std() / math.sqrt(log_likelihoods.size))
  return -mean, stderr, -mean / (num_dims * math.log(2))


def sweep(state, run: Run, ks: Sequence[int], *, batch_size: int, seed: int
          ) -> dict[int, tuple[float, float, float]]:
  """{k: :func:`summarize` of the bound with k samples} for each k."""
  out = {}
  for k in ks:
    out[int(k)] = summarize(values(state, run, k=int(k), batch_size=batch_size, seed=seed),
                            math.prod(run.image_shape))
    logging.info("test NLL bound, k=%d: %.2f +- %.2f nats (%.4f bits/dim)", k, *out[int(k)])
  return out
