"""Image classifier (softmax cross-entropy): the feature networks of the sample-quality metrics.

Trained through the one loop like every family; batches carry int32 ``"label"`` (the loop adds it
for labelled splits). Light augmentation happens on the device inside the step, from the step
key: a random translation of up to ``max_shift`` pixels (zero fill) and, for datasets whose
classes are mirror-symmetric (Fashion-MNIST), a random horizontal flip. The exported weights are
used by :mod:`gen_jax.metrics.networks`.

Usage in a research script::

    from functools import partial
    import jax, optax
    from gen_jax.models.classifier import CNN
    from gen_jax.steps import classifier

    model = CNN(dropout=0.3)
    state = classifier.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                                  tx=optax.adam(1e-3), image_shape=(28, 28, 1))
    step = jax.jit(partial(classifier.train_step, model=model, max_shift=2), donate_argnums=0)
    state, metrics = step(state, {"image": x, "label": y})   # x (B, 28, 28, 1) in [0, 1]
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import optim, precision
from gen_jax.models.classifier import CNN
from gen_jax.state import TrainState
from gen_jax.steps import Family

NET = "classifier"


def init_state(key: jax.Array, *, model: CNN, tx: optax.GradientTransformation,
               image_shape: Sequence[int]) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the parameters and every later step."""
  return TrainState.for_module(key, name=NET, module=model, tx=tx, image_shape=image_shape)


def augment(key: jax.Array, x: jax.Array, *, max_shift: int = 0, flip: bool = False) -> jax.Array:
  """Each image translated by independent integer offsets in [-max_shift, max_shift] along H
  and W (vacated pixels are 0, the background), then mirrored left-right with probability 1/2
  if ``flip``."""
  shift_key, flip_key = jax.random.split(key)
  n, h, w, c = x.shape
  if max_shift:
    m = max_shift
    padded = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)))
    offsets = jax.random.randint(shift_key, (n, 2), 0, 2 * m + 1)
    x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c)))(
        padded, offsets)
  if flip:
    mirror = jax.random.bernoulli(flip_key, 0.5, (n, 1, 1, 1))
    x = jnp.where(mirror, x[:, :, ::-1], x)
  return x


def _check_labels(batch: dict) -> jax.Array:
  if "label" not in batch:
    raise ValueError("the classifier family needs labelled data (batch['label']); "
                     "choose a labelled dataset such as mnist or fashion_mnist.")
  return batch["label"]


def loss_fn(params, x: jax.Array, labels: jax.Array, dropout_key: jax.Array, *, model: CNN):
  """Mean softmax cross-entropy of the batch, with dropout on; aux: the logits."""
  logits = model.apply({"params": params}, x, train=True, rngs={"dropout": dropout_key})
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits


def train_step(state: TrainState, batch: dict, *, model: CNN, max_shift: int = 0,
               flip: bool = False) -> tuple[TrainState, dict[str, jax.Array]]:
  labels = _check_labels(batch)
  x = augment(state.step_key(0), batch["image"], max_shift=max_shift, flip=flip)
  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params[NET], x, labels, state.step_key(1), model=model)
  accuracy = (jnp.argmax(logits, -1) == labels).astype(jnp.float32).mean()
  return state.apply_gradients({NET: grads}), {"loss": loss, "accuracy": accuracy}


def eval_step(state: TrainState, batch: dict, key: jax.Array, *,
              model: CNN) -> dict[str, jax.Array]:
  """Per-example ``accuracy`` (1 if the argmax is the label, else 0) and ``cross_entropy`` (nats),
  without dropout or augmentation."""
  del key  # deterministic
  labels = _check_labels(batch)
  logits = model.apply({"params": state.params[NET]}, batch["image"])
  return {"accuracy": (jnp.argmax(logits, -1) == labels).astype(jnp.float32),
          "cross_entropy": optax.softmax_cross_entropy_with_integer_labels(logits, labels)}


def model_kwargs(config: ml_collections.ConfigDict) -> dict:
  """The :class:`CNN` arguments of a config (what an exported weights file is registered with)."""
  m = config.model
  return dict(stages=tuple(tuple(s) for s in m.stages), extra_pools=m.extra_pools,
              hidden=m.feature_dim, num_classes=m.num_classes)


def create_model(config: ml_collections.ConfigDict) -> CNN:
  return CNN(**model_kwargs(config), dropout=config.model.dropout)


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for a dataset without labels."""
  from gen_jax import data  # pylint: disable=g-import-not-at-top
  if not data.info(config.dataset.name).has_labels:
    raise ValueError(f"the classifier family needs labelled data; dataset "
                     f"{config.dataset.name!r} has none: choose mnist or fashion_mnist.")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config)
  model = create_model(config)
  p = functools.partial
  return Family(
      init=p(init_state, model=model, tx=optim.make(config.optimizer),
             image_shape=tuple(image_shape)),
      train_step=p(train_step, model=precision.cast(
          model, precision.compute_dtype(config.model.dtype)), max_shift=config.model.max_shift,
                   flip=config.model.flip),
      eval_step=p(eval_step, model=model),
  )
