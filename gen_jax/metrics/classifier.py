"""Scores from a classifier's class probabilities p(y|x) on generated samples.

* Classifier Inception Score: IS = exp( mean_x KL(p(y|x) || p(y)) ), p(y) = mean_x p(y|x). Since
  mean_x KL(p(y|x) || p(y)) = mean_x sum_y p log p  -  sum_y p(y) log p(y), it streams: add up
  ``classifier_sums`` (per-batch sums of sum_y p log p and of p) and call ``inception_score_from_sums``.
  With ``num_splits`` > 1, the mean and std (ddof=0) over that many contiguous equal splits, the
  remainder N mod num_splits dropped, as in Salimans et al.'s code.
* Mode coverage: the histogram of predicted labels (argmax), its KL to the uniform distribution
  (0 when every class is predicted equally often, log C when only one is) and the number of
  classes predicted at least once.
* Code purity (a generator with a categorical code, InfoGAN): for each code value, the share of
  its samples in the class predicted most often for it; their mean, and how many distinct classes
  those majorities are (= the number of codes when each code draws its own class).

Probabilities go in, not logits (use ``jax.nn.softmax``); 0 log 0 is taken as 0. The per-example
terms are computed in float32 on the device; the sums over examples are float64 on the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy


@jax.jit
def neg_entropy(probs: jax.Array) -> jax.Array:
  """sum_y p(y|x) log p(y|x) per example, (N,)."""
  return xlogy(probs, probs).sum(axis=-1)


def classifier_sums(probs) -> tuple[int, float, np.ndarray]:
  """(N, sum_x sum_y p log p, sum_x p(.|x)) of one batch, float64; add them over batches."""
  ne = np.asarray(jax.device_get(neg_entropy(probs)), np.float64)
  return probs.shape[0], float(ne.sum()), np.asarray(jax.device_get(probs), np.float64).sum(0)


def inception_score_from_sums(count: int, sum_neg_entropy: float, sum_probs: np.ndarray) -> float:
  marginal = np.asarray(sum_probs, np.float64) / count
  nz = marginal > 0
  return float(np.exp(sum_neg_entropy / count - np.sum(marginal[nz] * np.log(marginal[nz]))))


def inception_score(probs, *, num_splits: int = 1) -> tuple[float, float]:
  """(mean, std) of the Inception Score over ``num_splits`` splits of ``probs`` (N, C)."""
  n = probs.shape[0]
  if not 1 <= num_splits <= n:
    raise ValueError(f"num_splits={num_splits} must be in [1, number of samples ({n})].")
  ne = np.asarray(jax.device_get(neg_entropy(probs)), np.float64)
  p = np.asarray(jax.device_get(probs), np.float64)
  part = n // num_splits
  scores = [inception_score_from_sums(part, ne[s:s + part].sum(), p[s:s + part].sum(0))
            for s in range(0, part * num_splits, part)]
  return float(np.mean(scores)), float(np.std(scores))


def label_histogram(probs, num_classes: int | None = None) -> np.ndarray:
  """Counts of argmax predicted labels, (C,) int64; add them over batches."""
  num_classes = probs.shape[-1] if num_classes is None else num_classes
  labels = np.asarray(jax.device_get(jnp.argmax(probs, axis=-1)))
  return np.bincount(labels, minlength=num_classes).astype(np.int64)


def mode_coverage(counts) -> dict[str, float]:
  """KL(histogram || uniform) in nats and the number of classes predicted at least once."""
  counts = np.asarray(counts, np.float64)
  q = counts / counts.sum()
  nz = q > 0
  return dict(kl_to_uniform=float(np.sum(q[nz] * np.log(q[nz] * len(q)))),
              modes_covered=int(nz.sum()))


def code_purity(probs_per_code) -> dict[str, float]:
  """Mean code purity and the number of distinct majority classes; ``probs_per_code`` is
  (codes, samples, C): p(y|x) of samples drawn with each value of the code."""
  labels = np.asarray(jax.device_get(jnp.argmax(probs_per_code, axis=-1)))
  counts = np.stack([np.bincount(row, minlength=probs_per_code.shape[-1]) for row in labels])
  return dict(code_purity=float(np.mean(counts.max(1) / labels.shape[1])),
              code_classes=int(len(set(counts.argmax(1).tolist()))))
