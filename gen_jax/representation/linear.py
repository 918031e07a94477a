"""The linear probe: multinomial logistic regression on frozen features, trained in JAX with optax.

    from gen_jax.representation import linear
    result = linear.probe(train_f, train_y, test_f, test_y, key=jax.random.PRNGKey(0))
    result.accuracy, result.l2           # test accuracy, and the L2 weight chosen without test
    accs = linear.label_efficiency(train_f, train_y, test_f, test_y, sizes=(100, 1000),
                                   draws=5, key=jax.random.PRNGKey(0))

The objective is the mean cross-entropy plus ``l2 / 2 * ||W||^2`` (the bias is not penalised),
minimised to convergence by full-batch L-BFGS (:func:`optax.lbfgs` with its zoom line search):
the problem is convex, so the probe measures the features, not an optimiser's schedule. It is
scikit-learn's ``LogisticRegression(C=1 / (l2 * n))`` (the test checks this). Features are
standardised with the mean and standard deviation of the whole training split -- unlabelled
statistics, which a semi-supervised learner has -- before fitting.

The fits along the grid of L2 weights start each from the last (strong to weak: a
regularisation path), and the refit from the chosen weight's fit. The L2 weight is chosen from
``l2s`` on a held-out part of the *labelled* examples only
(``val_fraction`` of them, class-balanced), by validation accuracy (ties: the larger weight), then
the probe is refitted on every labelled example with it. With 100 labels that leaves 20 to
choose on, as a user with 100 labels would have; the test split is never looked at.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

L2S = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)   # the default grid: mean-CE units, 6 decades


def standardizer(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, scale) of each feature over ``train``; constant features get scale 1."""
  train = np.asarray(train, np.float64)
  mean, std = train.mean(0), train.std(0)
  return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def _objective(params, x, y, l2):
  w, b = params
  logits = x @ w + b
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  return ce + 0.5 * l2 * jnp.sum(w * w)


@functools.partial(jax.jit, static_argnames=("num_classes", "max_iter"))
def fit(x: jax.Array, y: jax.Array, l2: float, *, num_classes: int, max_iter: int = 500,
        tol: float = 1e-5, init: Optional[tuple[jax.Array, jax.Array]] = None
        ) -> tuple[jax.Array, jax.Array]:
  """(W (d, K), b (K,)) minimising mean cross-entropy + ``l2 / 2 ||W||^2`` on ``(x, y)`` by
  L-BFGS from ``init`` (default zeros), until the gradient's norm is below ``tol`` or
  ``max_iter`` iterations. The problem is strictly convex, so ``init`` changes only the time."""
  x = jnp.asarray(x, jnp.float32)
  fun = functools.partial(_objective, x=x, y=y, l2=l2)
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)
  params = init if init is not None else (jnp.zeros((x.shape[1], num_classes), jnp.float32),
                                          jnp.zeros((num_classes,), jnp.float32))

  def step(carry):
    params, state = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
    return optax.apply_updates(params, updates), state

  def going(carry):
    _, state = carry
    count = otu.tree_get(state, "count")
    return (count == 0) | ((count < max_iter) & (otu.tree_norm(otu.tree_get(state, "grad")) >= tol))

  params, _ = jax.lax.while_loop(going, step, (params, opt.init(params)))
  return params


@jax.jit
def predict(params: tuple[jax.Array, jax.Array], x: jax.Array) -> jax.Array:
  """The most probable class of each row of ``x``."""
  w, b = params
  return jnp.argmax(jnp.asarray(x, jnp.float32) @ w + b, axis=-1)


def accuracy(params, x, y) -> float:
  return float(np.mean(np.asarray(predict(params, x)) == np.asarray(y)))


def balanced_subset(labels: np.ndarray, num: int, key: jax.Array,
                    pool: Optional[np.ndarray] = None) -> np.ndarray:
  """Indices of ``num`` examples, ``num / classes`` of each class (the rest to the first
  classes when it does not divide), drawn without replacement from ``pool`` (default: all)."""
  labels = np.asarray(labels)
  pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
  classes = np.unique(labels[pool])
  if num > len(pool):
    raise ValueError(f"{num} labelled examples asked for, but only {len(pool)} are available; "
                     "lower the number of labels (probe.sizes).")
  if num < len(classes):
    raise ValueError(f"{num} labels cannot cover the {len(classes)} classes; use at least one "
                     "label per class.")
  perm = pool[np.asarray(jax.random.permutation(key, len(pool)))]
  per_class = [perm[labels[perm] == c] for c in classes]
  counts = np.full(len(classes), num // len(classes))
  counts[:num % len(classes)] += 1
  short = [c for c, (have, want) in zip(classes, zip(map(len, per_class), counts)) if have < want]
  if short:
    raise ValueError(f"class(es) {short} have too few examples for a balanced draw of {num}.")
  return np.sort(np.concatenate([idx[:n] for idx, n in zip(per_class, counts)]))


@dataclasses.dataclass(frozen=True)
class ProbeResult:
  accuracy: float                   # on the test set
  l2: float                         # the weight chosen on the held-out labelled examples
  val_accuracy: dict[float, float]  # every weight's validation accuracy
  num_labels: int


def probe(train_x, train_y, test_x, test_y, *, key: jax.Array, l2s: Sequence[float] = L2S,
          val_fraction: float = 0.2, num_classes: Optional[int] = None,
          scale: Optional[tuple[np.ndarray, np.ndarray]] = None, max_iter: int = 500
          ) -> ProbeResult:
  """The linear probe's test accuracy with the L2 weight chosen on ``val_fraction`` of the
  labelled examples (class-balanced, drawn with ``key``), then refitted on all of them.

  ``scale``: (mean, scale) to standardise with (default: :func:`standardizer` of ``train_x``).
  """
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  num_classes = num_classes or int(max(train_y.max(), test_y.max())) + 1
  if not 0 < val_fraction < 1:
    raise ValueError(f"val_fraction={val_fraction} must be in (0, 1).")
  if not l2s or min(l2s) < 0:
    raise ValueError(f"l2s={tuple(l2s)} must be a non-empty grid of non-negative weights.")
  mean, sd = scale if scale is not None else standardizer(train_x)
  norm = lambda a: (np.asarray(a, np.float32) - mean) / sd
  x, tx = norm(train_x), norm(test_x)
  n_val = max(len(np.unique(train_y)), int(round(val_fraction * len(train_y))))
  val = balanced_subset(train_y, n_val, key)
  tr = np.setdiff1d(np.arange(len(train_y)), val)
  fit_ = functools.partial(fit, num_classes=num_classes, max_iter=max_iter)
  val_acc, fits, params = {}, {}, None
  for l2 in sorted(l2s, reverse=True):   # the path from strong to weak, each from the last
    params = fits[float(l2)] = fit_(x[tr], train_y[tr], l2, init=params)
    val_acc[float(l2)] = accuracy(params, x[val], train_y[val])
  best = max(val_acc, key=lambda l2: (val_acc[l2], l2))       # ties: the stronger penalty
  params = fit_(x, train_y, best, init=fits[best])
  return ProbeResult(accuracy(params, tx, test_y), best, val_acc, len(train_y))


def label_efficiency(train_x, train_y, test_x, test_y, *, sizes: Sequence[int], draws: int,
                     key: jax.Array, **probe_kwargs) -> dict[int, list[ProbeResult]]:
  """:func:`probe` on ``draws`` class-balanced subsets of each size of ``sizes`` (one run when a
  size is the whole training split), standardised with the whole split's statistics."""
  train_y = np.asarray(train_y)
  scale = standardizer(train_x)
  out = {}
  for i, n in enumerate(sizes):
    runs = []
    for d in range(1 if n >= len(train_y) else draws):
      sub_key, val_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, i), d))
      idx = (np.arange(len(train_y)) if n >= len(train_y)
             else balanced_subset(train_y, n, sub_key))
      runs.append(probe(np.asarray(train_x)[idx], train_y[idx], test_x, test_y, key=val_key,
                        scale=scale, **probe_kwargs))
    out[int(n)] = runs
  return out
