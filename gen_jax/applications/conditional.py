"""Conditional generation: samples of a requested class, and what they are worth to a classifier.

* :func:`labelled_samples`: ``num`` samples of a conditional family (``Family.num_classes`` > 0),
  the classes in turn, with their labels;
* :func:`class_accuracy`: the domain classifier's accuracy on them, per requested class;
* :func:`train_classifier` / :func:`test_accuracy`: a classifier trained from scratch in JAX
  (:mod:`gen_jax.steps.classifier` on :class:`gen_jax.models.classifier.CNN`: an MLP by default,
  or a small CNN, ``apps.cas_convs``, its convolutions as matrix products on CPU; Adam, random
  minibatches of a fixed budget of steps);
* :func:`classification_accuracy_scores`: Ravuri & Vinyals 2019's classification accuracy score
  (CAS: trained on generated images only, tested on the real test split) next to the same
  classifier trained on as many real images, and the semi-supervised question -- does adding the
  generated images help a classifier that has only a few real labels?
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gen_jax.models.classifier import CNN
from gen_jax.steps import classifier as classifier_steps


def labelled_samples(sample: Callable, state, *, num: int, num_classes: int, batch_size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(float32 images in [0, 1], int32 labels): ``num`` samples, label i % num_classes for the
  i-th, drawn ``batch_size`` at a time with keys fold_in(PRNGKey(seed), batch)."""
  fn = jax.jit(sample, static_argnums=2)
  labels = (np.arange(num) % num_classes).astype(np.int32)
  images = [np.asarray(fn(state, jax.random.fold_in(jax.random.PRNGKey(seed), i), hi - lo,
                          jnp.asarray(labels[lo:hi])), np.float32)
            for i, (lo, hi) in enumerate((lo, min(lo + batch_size, num))
                                         for lo in range(0, num, batch_size))]
  return np.concatenate(images), labels


def class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Per class c, the fraction of the images requested as c that are predicted as c."""
  return np.array([np.mean(predicted[labels == c] == c) for c in range(num_classes)])


def classifier_model(hidden: int, num_classes: int, convs: Sequence[int] = ()) -> CNN:
  """The CAS classifier: ``convs`` stages of one 3x3 ReLU convolution and a 2x2 max pool each
  (none: an MLP), flatten, one ReLU layer of ``hidden`` units, softmax over the classes. Its
  convolutions are patch-matrix products on CPU (``conv_impl='auto'``), where XLA's own train
  slowly inside the training loop (:mod:`gen_jax.models.layers`)."""
  return CNN(stages=tuple((int(c),) for c in convs), extra_pools=0, hidden=hidden,
             num_classes=num_classes, conv_impl="auto")


def classifier_name(model: CNN, num_inputs: int) -> str:
  """'MLP 784-512-10' or 'CNN conv16-pool-conv32-pool-128-10', for the cards."""
  if not model.stages:
    return f"MLP {num_inputs}-{model.hidden}-{model.num_classes}"
  convs = "-".join(f"conv{c}-pool" for (c,) in model.stages)
  return f"CNN {convs}-{model.hidden}-{model.num_classes}"


def train_classifier(images: np.ndarray, labels: np.ndarray, *, model: CNN, num_steps: int,
                     batch_size: int, learning_rate: float, seed: int):
  """The classifier's params after ``num_steps`` Adam steps (cosine decay to 0) on minibatches
  drawn uniformly with replacement from (``images``, ``labels``); pure JAX, one jitted loop."""
  tx, run = _train_loop(model, learning_rate, num_steps, batch_size)
  key = jax.random.PRNGKey(seed)
  state = classifier_steps.init_state(key, model=model, tx=tx, image_shape=images.shape[1:])
  return run(state, key, jnp.asarray(images), jnp.asarray(labels)).params[classifier_steps.NET]


@functools.lru_cache(maxsize=8)
def _train_loop(model: CNN, learning_rate: float, num_steps: int, batch_size: int):
  """(optimizer, jit((state, key, images, labels) -> state)): the data are arguments, not
  constants folded into the program (60,000 images are 188 MB of HLO constant), and one
  compilation serves every training set of the same shape."""
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
  step = functools.partial(classifier_steps.train_step, model=model)

  @jax.jit
  def run(state, key, x, y):
    def body(i, state):
      idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, x.shape[0])
      return step(state, {"image": x[idx], "label": y[idx]})[0]
    return jax.lax.fori_loop(0, num_steps, body, state)
  return tx, run


@functools.lru_cache(maxsize=8)
def _predict(model: CNN) -> Callable:
  return jax.jit(lambda params, x: jnp.argmax(model.apply({"params": params}, x), -1))


def test_accuracy(model: CNN, params, images: np.ndarray, labels: np.ndarray,
                  batch_size: int = 1000) -> float:
  """Accuracy of the classifier on (``images``, ``labels``)."""
  fn = _predict(model)
  predicted = np.concatenate([np.asarray(fn(params, jnp.asarray(images[lo:lo + batch_size])))
                              for lo in range(0, len(images), batch_size)])
  return float(np.mean(predicted == np.asarray(labels)))


def classification_accuracy_scores(generated: tuple[np.ndarray, np.ndarray],
                                   real_train: tuple[np.ndarray, np.ndarray],
                                   real_test: tuple[np.ndarray, np.ndarray], *, model: CNN,
                                   num_steps: int, batch_size: int, learning_rate: float,
                                   few_labels: int, seed: int,
                                   generated_weight: Optional[float] = None) -> dict[str, float]:
  """Test accuracies of the same classifier, same budget, trained on

  * ``cas``: the generated images only (Ravuri & Vinyals' classification accuracy score);
  * ``real``: as many real training images (the reference CAS is read against);
  * ``few_real``: the first ``few_labels`` real training images of a fixed shuffle (``seed``);
  * ``few_real_plus_generated``: those and the generated images, each minibatch half real
    and half generated (``generated_weight``: the generated share; default 0.5).
  """
  gx, gy = generated
  rx, ry = real_train
  n = len(gx)
  order = np.random.default_rng(seed).permutation(len(rx))
  fit = functools.partial(train_classifier, model=model, num_steps=num_steps,
                          batch_size=batch_size, learning_rate=learning_rate, seed=seed)
  score = lambda params: test_accuracy(model, params, *real_test)
  few = order[:few_labels]
  share = 0.5 if generated_weight is None else generated_weight
  # Half real, half generated on average: repeat the few real images to the generated count's
  # share, so that uniform draws from the union give that mix.
  reps = max(1, int(round(n * (1 - share) / share / few_labels)))
  mixed_x = np.concatenate([np.repeat(rx[few], reps, axis=0), gx])
  mixed_y = np.concatenate([np.repeat(ry[few], reps, axis=0), gy])
  return {"cas": score(fit(gx, gy)), "real": score(fit(rx[order[:n]], ry[order[:n]])),
          "few_real": score(fit(rx[few], ry[few])),
          "few_real_plus_generated": score(fit(mixed_x, mixed_y))}
