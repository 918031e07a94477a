"""Representation quality: k-nearest-neighbour classification on a model's encoder features.

The BiGAN paper's measure (Donahue et al. 2017, Table 1): encode the labelled train split and the
test split, label each test image by its k nearest train features, report the test accuracy::

    python tools/knn.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist
    python tools/knn.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist \
        --k=1 --k=5 --metric=cosine --pixels

restores the newest checkpoint of ``--workdir``, prints one line per (k, metric) and writes one
metric card per number to ``<workdir>/knn_cards.jsonl`` (beside ``--mode=eval``'s ``cards.jsonl``).
``--pixels`` adds the same classifier on raw pixels (the baseline any feature must be read
against: 1-NN on MNIST pixels is ~96.9 %).

Any family whose step module has ``encoder_from_config(config, image_shape)`` (BiGAN, VAE-GAN)
can be measured.
"""

from __future__ import annotations

import functools
import logging
import pathlib
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from gen_jax import cards, data
from gen_jax import run as run_lib
from gen_jax.metrics import rows

METRICS = ("euclidean", "cosine")


# ---------------------------------------------------------------------------------------------
# k-NN.


def _normalize(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=None)
def _neighbour_labels_fn(k: int):
  """(query block, (train features, their squared norms, labels)) -> labels of the k nearest."""
  def fn(qs, refs):
    (q,), (ref, ref_sq, labels) = qs, refs
    d = rows.squared_distances(q, ref, ref_sq)            # (block, n_train), never the whole matrix
    idx = jnp.arange(d.shape[0])

    def take_nearest(_, carry):
      d, out, i = carry
      j = jnp.argmin(d, axis=1)                           # ties: the lower train index first
      return d.at[idx, j].set(jnp.inf), out.at[:, i].set(labels[j]), i + 1

    out = jnp.zeros((d.shape[0], k), labels.dtype)
    return jax.lax.fori_loop(0, k, take_nearest, (d, out, 0))[1]
  return fn


def knn_predict(train_feats, train_labels, test_feats, k: int = 1, *, metric: str = "euclidean",
                num_classes: Optional[int] = None, block_size: int = 256,
                mesh: Optional[Mesh] = None, data_axis: Optional[str] = None) -> jax.Array:
  """The majority label of each test row's ``k`` nearest train rows, (n_test,) int32.

  Distances are Euclidean (``metric='cosine'``: Euclidean between unit-normalised rows, which
  ranks neighbours as cosine similarity does). Distance ties go to the lower train index, vote
  ties to the lower class. Test rows go in blocks of ``block_size`` (one block holds
  ``block_size x n_train`` distances), split over ``mesh``'s ``data_axis`` when given.
  """
  if metric not in METRICS:
    raise ValueError(f"unknown k-NN metric {metric!r}; choose one of {', '.join(METRICS)}.")
  train_feats = jnp.asarray(train_feats, jnp.float32)
  test_feats = jnp.asarray(test_feats, jnp.float32)
  train_labels = jnp.asarray(train_labels, jnp.int32)
  if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
    raise ValueError(f"k-NN needs 2-D features of one width; got train {train_feats.shape} and "
                     f"test {test_feats.shape} (flatten images first).")
  if train_labels.shape != train_feats.shape[:1]:
    raise ValueError(f"{train_labels.shape[0] if train_labels.ndim else 0} train labels for "
                     f"{train_feats.shape[0]} train rows.")
  if not 1 <= k <= train_feats.shape[0]:
    raise ValueError(f"k={k} must be between 1 and the number of train rows "
                     f"({train_feats.shape[0]}).")
  if metric == "cosine":
    train_feats, test_feats = _normalize(train_feats), _normalize(test_feats)
  neighbours = rows.map_rows(
      _neighbour_labels_fn(k), (test_feats,),
      (train_feats, jnp.sum(train_feats * train_feats, -1), train_labels),
      block_size=block_size, mesh=mesh, data_axis=data_axis)        # (n_test, k)
  if k == 1:
    return neighbours[:, 0]
  num_classes = num_classes or int(jnp.max(train_labels)) + 1
  votes = jax.nn.one_hot(neighbours, num_classes, dtype=jnp.int32).sum(axis=1)
  return jnp.argmax(votes, axis=-1).astype(jnp.int32)             # ties: the lower class


def knn_accuracy(train_feats, train_labels, test_feats, test_labels, k: int = 1, *,
                 metric: str = "euclidean", block_size: int = 256, mesh: Optional[Mesh] = None,
                 data_axis: Optional[str] = None) -> float:
  """Fraction of test rows whose k-NN majority label (:func:`knn_predict`) is their label."""
  pred = knn_predict(train_feats, train_labels, test_feats, k, metric=metric,
                     block_size=block_size, mesh=mesh, data_axis=data_axis)
  test_labels = np.asarray(test_labels)
  if test_labels.shape != pred.shape:
    raise ValueError(f"{test_labels.shape[0]} test labels for {pred.shape[0]} test rows.")
  return float(np.mean(np.asarray(pred) == test_labels))


# ---------------------------------------------------------------------------------------------
# Features of a trained model.


def features(encode: Callable, state, images: np.ndarray, *, max_value: int,
             batch_size: int = 1000, binarize_key: Optional[jax.Array] = None) -> np.ndarray:
  """``encode(state, x)`` of uint8 NHWC ``images`` (x = images / max_value in [0, 1], binarized
  with ``binarize_key`` if given), ``batch_size`` at a time, as float32 NumPy (n, features)."""
  @jax.jit
  def fn(state, x, i):
    x = data.to_float(x, max_value)
    if binarize_key is not None:
      x = data.binarize(jax.random.fold_in(binarize_key, i), x)
    f = encode(state, x)
    return f.reshape(f.shape[0], -1)

  out = []
  for i, lo in enumerate(range(0, len(images), batch_size)):
    chunk = images[lo:lo + batch_size]
    n = len(chunk)
    if n < batch_size:   # one compiled shape for every batch
      chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
    out.append(np.asarray(jax.device_get(fn(state, chunk, i)), np.float32)[:n])
  return np.concatenate(out)


def knn_from_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     ks: Sequence[int] = (1,), metrics: Sequence[str] = ("euclidean",),
                     pixels: bool = False, command: Optional[str] = None) -> list[dict]:
  """k-NN test accuracy on the encoder features of the newest checkpoint of ``workdir``, for
  every k in ``ks`` and distance in ``metrics`` (and on raw pixels if ``pixels``); metric cards.

  Train images are encoded as the loop feeds them (grey levels in [0, 1], or binarized with a
  fixed key when ``config.dataset.binarize='dynamic'``); test images as the loop evaluates them.
  """
  run, state = run_lib.restore(config, workdir)
  encode = run.family.encode
  if encode is None:
    raise ValueError(f"family {config.model.family!r} has no encoder (Family.encode is None): "
                     "k-NN accuracy needs encoder features.")
  split = run.train
  ds = data.info(config.dataset.name)
  if not ds.has_labels:
    raise ValueError(f"dataset {config.dataset.name!r} has no labels: k-NN accuracy needs them.")
  n_train, n_test = split.num_examples, run.num_test
  train_x = np.asarray(jax.device_get(split.images))[:n_train]
  train_y = np.asarray(jax.device_get(split.labels))[:n_train]
  test_x = np.asarray(jax.device_get(run.test_images))[:n_test]   # already float, as evaluated
  test_y = np.asarray(jax.device_get(run.test_labels))[:n_test]
  binarize_key = (jax.random.PRNGKey(config.eval.binarize_seed + 1)
                  if config.dataset.binarize == "dynamic" else None)
  train_f = features(encode, state, train_x, max_value=split.max_value, binarize_key=binarize_key)
  test_f = features(encode, state, test_x, max_value=1)
  step = int(state.step)
  common = dict(model=pathlib.Path(workdir).name, family=config.model.family,
                dataset=config.dataset.name, step=step, n_real=n_test, real_split=ds.test_split,
                seeds={"train": config.seed}, config_hash=cards.config_hash(config),
                command=command, **cards.environment())
  sets = [("encoder", train_f, test_f)]
  if pixels:
    flat = lambda a: a.reshape(a.shape[0], -1).astype(np.float32)
    sets.append(("pixels", flat(train_x) / split.max_value, flat(test_x)))
  out = []
  for name, tr, te in sets:
    for metric in metrics:
      for k in ks:
        acc = knn_accuracy(tr, train_y, te, test_y, k, metric=metric)
        logging.info("%d-NN test accuracy on %s (%d-d, %s): %.4f", k, name, tr.shape[1], metric,
                     acc)
        # The pixel baseline is a property of the data, not of the model: its own row.
        who = (dict(model=f"raw pixels ({config.dataset.name})", family="data",
                    step=None) if name == "pixels" else {})
        out.append(cards.make(
            "knn_accuracy", acc, k=k, unit="fraction",
            notes=f"{k}-NN on {name} features ({tr.shape[1]}-d, {metric} distance), "
                  f"{n_train} train vs {n_test} test images", **(common | who)))
  return out
