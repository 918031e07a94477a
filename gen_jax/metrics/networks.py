"""The domain feature networks of the sample-quality metrics: versioned, hash-pinned, offline.

FID, KID, precision/recall and density/coverage compare feature vectors of real and generated
images; the classifier Inception Score and mode coverage use class probabilities. On natural images
both come from Inception-v3; on MNIST-like data they come from small CNN classifiers that this
project trains itself (``configs/classifier_mnist.py``, ``configs/classifier_fashion_mnist.py``):
features are the 128-d penultimate layer, probabilities the softmax.

Versioning. A network is a name in :data:`NETWORKS` (``mnist-cnn-v1``) whose weights file ships in
the package (``gen_jax/metrics/weights/``, ~0.8 MB each) with its SHA-256 pinned here: :func:`load`
reads it with no network access and refuses a file with another hash. Metrics computed with two
different networks are not comparable, so a retrained or changed network is registered under a new
version name (``mnist-cnn-v2``), never swapped in under an old one; reports record the name and
the hash next to every number.

Export. A trained classifier checkpoint becomes a weights file with (from the repository root)::

    python tools/export_network.py --config=configs/classifier_mnist.py \\
        --workdir=runs/classifier_mnist --name=mnist-cnn-v1

which writes ``gen_jax/metrics/weights/mnist_cnn_v1.msgpack`` (flax.serialization msgpack of the
parameters), measures its test accuracy, and prints the SHA-256 and the :data:`NETWORKS` entry to
paste here.

Usage::

    from gen_jax.metrics import networks
    net = networks.load("mnist-cnn-v1")
    features, probs = net.apply(images)        # float images in [0, 1], NHWC; pure and jittable
    features, probs = networks.outputs(net, uint8_images)   # any size, in batches, as NumPy
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from typing import Any, Mapping, Optional, Sequence

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.models.classifier import CNN

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
  """One registered feature network.

  Attributes:
    file: its weights file, relative to ``WEIGHTS_DIR`` (or an absolute path).
    sha256: SHA-256 of that file; :func:`load` refuses any other.
    arch: keyword arguments of :class:`gen_jax.models.classifier.CNN`.
    dataset: the ``gen_jax.data`` dataset it was trained on.
    image_shape: the (H, W, C) it takes.
    config: the config file that trained it.
    test_accuracy: its accuracy on ``dataset``'s test split, measured at export (for the record).
  """
  file: str
  sha256: str
  arch: Mapping[str, Any]
  dataset: str
  image_shape: tuple[int, ...] = (28, 28, 1)
  config: str = ""
  test_accuracy: Optional[float] = None

  @property
  def path(self) -> pathlib.Path:
    return WEIGHTS_DIR / self.file


_CNN_V1 = dict(stages=((32, 32), (64, 64)), extra_pools=1, hidden=128, num_classes=10)

NETWORKS: dict[str, NetworkSpec] = {
    "mnist-cnn-v1": NetworkSpec(
        file="mnist_cnn_v1.msgpack",
        sha256="e720b7f9c73e956f6f770a538c83b6396edc3f956c367414f58d232e35a9e40a",
        arch=_CNN_V1, dataset="mnist", config="configs/classifier_mnist.py",
        test_accuracy=0.9960),
    "fashion-mnist-cnn-v1": NetworkSpec(
        file="fashion_mnist_cnn_v1.msgpack",
        sha256="6227387089c6d279df29cd0a5a05657cacd5c599eb43bccceec33f6fe8df5b8a",
        arch=_CNN_V1, dataset="fashion_mnist", config="configs/classifier_fashion_mnist.py",
        test_accuracy=0.9390),
}

DEFAULT_FOR_DATASET: dict[str, str] = {
    "mnist": "mnist-cnn-v1",
    "binarized_mnist": "mnist-cnn-v1",
    "fashion_mnist": "fashion-mnist-cnn-v1",
}


class WeightsHashError(ValueError):
  """A weights file whose SHA-256 is not the one registered for its network."""


@functools.partial(jax.jit, static_argnames="model")
def _apply(variables, images: jax.Array, *, model: CNN) -> tuple[jax.Array, jax.Array]:
  logits, features = model.apply(variables, images.astype(jnp.float32), return_features=True)
  return features.astype(jnp.float32), jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """A loaded feature network: ``apply(images) -> (features, probs)``."""
  name: str
  sha256: str
  spec: NetworkSpec
  model: CNN
  variables: Any = dataclasses.field(repr=False)

  @property
  def num_classes(self) -> int:
    return self.model.num_classes

  @property
  def feature_dim(self) -> int:
    return self.model.hidden

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.spec.image_shape)

  def apply(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(features (N, feature_dim) float32, class probabilities (N, num_classes) float32) of float
    images in [0, 1], (N, H, W, C). A pure function of ``images``: it can be called inside
    ``jax.jit`` and on sharded arrays (convolutions and matmuls run at full float32 precision)."""
    if tuple(images.shape[1:]) != self.image_shape:
      raise ValueError(f"feature network {self.name!r} takes images of shape (N, "
                       f"{', '.join(map(str, self.image_shape))}), got {tuple(images.shape)}.")
    return _apply(self.variables, images, model=self.model)


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def read_pinned(path: pathlib.Path, sha256: str, *, missing: str, mismatch) -> bytes:
  """The bytes of a weights file whose SHA-256 must be ``sha256``: FileNotFoundError(``missing``)
  if there is none, ``mismatch(digest)`` (an exception) raised if the hash differs."""
  if not path.is_file():
    raise FileNotFoundError(missing)
  data = path.read_bytes()
  digest = _sha256(data)
  if digest != sha256:
    raise mismatch(digest)
  return data


def _model(arch: Mapping[str, Any]) -> CNN:
  return CNN(**{k: tuple(map(tuple, v)) if k == "stages" else v for k, v in arch.items()},
             precision="highest")


def _abstract_variables(model: CNN, image_shape: Sequence[int]):
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                           jnp.zeros((1, *image_shape), jnp.float32)))


def load(name: str, *, registry: Optional[Mapping[str, NetworkSpec]] = None) -> FeatureNetwork:
  """The registered network ``name``, its weights read from the package and checked against the
  pinned SHA-256. ``registry`` (default :data:`NETWORKS`) is for tests and private networks."""
  registry = NETWORKS if registry is None else registry
  if name not in registry:
    raise ValueError(f"unknown feature network {name!r}; known: {', '.join(sorted(registry)) or 'none'}.")
  spec = registry[name]
  path = spec.path
  data = read_pinned(
      path, spec.sha256,
      missing=f"weights of feature network {name!r} not found at {path}. They ship inside the "
              "package (gen_jax/metrics/weights/): reinstall gen_jax, or restore the file from "
              "the repository.",
      mismatch=lambda digest: WeightsHashError(
          f"feature network {name!r}: file {path} has sha256 {digest}, expected {spec.sha256}; a "
          "changed network must get a new version name (a new NETWORKS entry), never replace the "
          "file of a registered one."))
  model = _model(spec.arch)
  target = _abstract_variables(model, spec.image_shape)
  try:
    variables = flax.serialization.from_state_dict(target, flax.serialization.msgpack_restore(data))
  except Exception as e:  # flax raises ValueError/KeyError for mismatched trees
    raise ValueError(f"feature network {name!r}: {path} does not hold parameters of the "
                     f"registered architecture {dict(spec.arch)}: {e}") from e
  for (where, want), got in zip(jax.tree_util.tree_leaves_with_path(target),
                                jax.tree.leaves(variables)):
    if tuple(np.shape(got)) != tuple(want.shape):
      raise ValueError(f"feature network {name!r}: parameter {jax.tree_util.keystr(where)} has "
                       f"shape {np.shape(got)} in {path}, the architecture wants {want.shape}.")
  variables = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), variables)
  return FeatureNetwork(name=name, sha256=spec.sha256, spec=spec, model=model, variables=variables)


def outputs(net: FeatureNetwork, images, *, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """(features, probs) as float32 NumPy arrays for any number of images, ``batch_size`` at a time.

  ``images``: uint8 pixels (0..255) or floats in [0, 1], (N, H, W, C) or (N, H, W). The last batch
  is zero-padded to ``batch_size`` so that one compilation serves every batch.
  """
  images = np.asarray(images)
  if images.ndim == len(net.image_shape) and net.image_shape[-1] == 1:
    images = images[..., None]
  if images.dtype == np.uint8:
    scale = 1.0 / 255.0
  elif np.issubdtype(images.dtype, np.floating):
    scale = 1.0
    lo, hi = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
    if lo < 0.0 or hi > 1.0:
      raise ValueError(f"float images must lie in [0, 1], got values in [{lo:g}, {hi:g}]; pass "
                       "uint8 pixels (0..255) as uint8, or divide by 255.")
  else:
    raise ValueError(f"images must be uint8 (0..255) or float in [0, 1], got {images.dtype}.")
  feats, probs = [], []
  for lo in range(0, len(images), batch_size):
    x = images[lo:lo + batch_size]
    n = len(x)
    if n < batch_size:
      x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
    # scaled on the host, so the jitted network compiles once per batch shape, not once per call
    f, p = jax.device_get(net.apply(np.asarray(x, np.float32) * np.float32(scale)))
    feats.append(np.asarray(f[:n], np.float32))
    probs.append(np.asarray(p[:n], np.float32))
  if not feats:
    return (np.zeros((0, net.feature_dim), np.float32), np.zeros((0, net.num_classes), np.float32))
  return np.concatenate(feats), np.concatenate(probs)


def labelled_test_split(dataset: str, *, data_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images, int32 labels) of ``dataset``'s whole test split (decoded once, then cached)."""
  from gen_jax import data  # pylint: disable=import-outside-toplevel
  ds = data.info(dataset)
  if not ds.has_labels:
    raise ValueError(f"dataset {dataset!r} has no labels to measure accuracy on.")
  n = data.num_examples(ds.tfds_name, ds.test_split, data_dir)
  return data.read_rows(ds.tfds_name, ds.test_split, 0, n, data_dir=data_dir)


def accuracy(net: FeatureNetwork, images, labels, *, batch_size: int = 1000) -> float:
  """Fraction of ``images`` whose most probable class is the label."""
  _, probs = outputs(net, images, batch_size=batch_size)
  return float(np.mean(probs.argmax(-1) == np.asarray(labels)))


# ---------------------------------------------------------------------------------------------
# Weights files (tools/export_network.py writes them from a trained classifier checkpoint).


def weights_file_name(name: str) -> str:
  """``mnist-cnn-v1`` -> ``mnist_cnn_v1.msgpack``."""
  return name.replace("-", "_") + ".msgpack"
