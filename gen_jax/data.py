"""Datasets from TensorFlow Datasets, decoded once and kept on the devices.

A split is read with ``tfds.data_source`` (random access, no TensorFlow needed), decoded once into a
uint8 array (cached on disk, since decoding 60k PNGs takes ~10 s on 2 cores), and placed on the
devices sharded over the mesh's data axis. Each host reads only the rows of its own devices.
Batches are then drawn on the devices by :func:`gather`: no host-to-device copy per step.

The order of examples is a pure function of (seed, step): an epoch is
``jax.random.permutation(fold_in(key, epoch), n)``, so a resumed run sees the same batches as an
uninterrupted one, on any number of devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from gen_jax import sharding


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  tfds_name: str
  train_split: str
  test_split: str
  max_value: int        # 255 for grey levels, 1 for data stored as {0, 1}
  has_labels: bool
  # Applied once to each chunk of decoded uint8 images (N, H, W, C) before caching (e.g. crop and
  # resize); None keeps the images as TFDS stores them.
  transform: Optional[Callable[[np.ndarray], np.ndarray]] = None


def center_crop_resize(images: np.ndarray, *, crop: int, size: int) -> np.ndarray:
  """The central ``crop`` x ``crop`` square of each uint8 image, resized to ``size`` x ``size``
  (PIL bilinear, antialiased when shrinking)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = images.shape[1:3]
  top, left = (h - crop) // 2, (w - crop) // 2
  out = [np.asarray(Image.fromarray(im[top:top + crop, left:left + crop].squeeze(-1) if
                                    im.shape[-1] == 1 else im[top:top + crop, left:left + crop])
                    .resize((size, size), Image.Resampling.BILINEAR)) for im in images]
  return np.stack(out).reshape(len(images), size, size, images.shape[-1])


DATASETS = {
    "mnist": DatasetInfo("mnist", "train", "test", 255, True),
    "fashion_mnist": DatasetInfo("fashion_mnist", "train", "test", 255, True),
    # Larochelle's static binarization: 50k train, 10k validation, 10k test, stored as {0, 1}.
    "binarized_mnist": DatasetInfo("binarized_mnist", "train", "test", 1, False),
    "cifar10": DatasetInfo("cifar10", "train", "test", 255, True),
    # CelebA faces (218x178): the central 140x140 square resized to 64x64, as in most GAN papers.
    "celeb_a64": DatasetInfo("celeb_a", "train", "test", 255, False,
                             transform=lambda x: center_crop_resize(x, crop=140, size=64)),
}


class DatasetError(RuntimeError):
  """A dataset that cannot be found or read; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split on the devices. ``images`` is (n_padded, H, W, C) uint8 sharded over the data axis;
  rows past ``num_examples`` are zero padding that no batch ever draws."""
  images: jax.Array
  labels: Optional[jax.Array]
  num_examples: int
  max_value: int

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.images.shape[1:])


def info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r} (config.dataset.name); known: {', '.join(DATASETS)}.")
  return DATASETS[name]


def labelled_dataset(config, section: str) -> str:
  """The labelled dataset that ``launch.py --mode=<section>`` reads (apps, probe, compress):
  ``config.<section>.dataset``, else the run's own (MNIST for the unlabelled binarized MNIST)."""
  name = config[section].dataset or config.dataset.name
  name = "mnist" if name == "binarized_mnist" else name
  if not info(name).has_labels:
    raise ValueError(f"--mode={section} needs labelled images, and dataset {name!r} has none; "
                     f"set --config.{section}.dataset to a labelled dataset.")
  return name


def _data_source(name: str, split: str, data_dir: Optional[str], download: bool = True):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name = DATASETS[name].tfds_name if name in DATASETS else name
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  if download and not tfds.builder(name, data_dir=data_dir).is_prepared():
    logging.warning("TFDS dataset %r is not prepared in %s: asking TFDS to download and prepare it "
                    "(needs internet; offline, set TFDS_DATA_DIR to a folder that has it).",
                    name, data_dir or "the TFDS default folder")
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
  except Exception as e:  # TFDS raises many kinds here: missing files, no network, no TensorFlow.
    where = data_dir or "~/tensorflow_datasets (the TFDS default)"
    raise DatasetError(
        f"could not load TFDS dataset {name!r} split {split!r} from {where}: "
        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
        f"Without internet, prepare it elsewhere and point TFDS_DATA_DIR (or "
        f"--config.dataset.data_dir) at the folder holding {name}/ in array_record format, "
        f"e.g. export TFDS_DATA_DIR=/path/to/tensorflow_datasets.") from e


def cache_dir() -> pathlib.Path:
  """``$GEN_JAX_CACHE_DIR`` (default ``~/.cache/gen_jax``): decoded datasets, compiled programs."""
  return pathlib.Path(os.environ.get("GEN_JAX_CACHE_DIR", pathlib.Path.home() / ".cache" / "gen_jax"))


@contextlib.contextmanager
def mock_datasets(num_examples: int, cache: Optional[str] = None):
  """Every TFDS dataset replaced by ``num_examples`` random examples of its own features
  (``tfds.testing.mock_data``), for the datasets that cannot be had on a machine (CIFAR-10 or CelebA
  offline) where only shapes matter: tests of the loop, throughput benchmarks. Decoded random
  images are cached in ``cache`` (a fresh temporary folder by default), never in :func:`cache_dir`.

  TFDS 4.9's mock sets ``__getitems__`` on a MagicMock without binding ``self``; it is called right
  here."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from unittest import mock  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.testing import mocking  # pylint: disable=g-import-not-at-top
  getitems = lambda *args, generator, serialized=False: [generator[k] for k in args[-1]]
  with contextlib.ExitStack() as stack:
    folder = cache or stack.enter_context(tempfile.TemporaryDirectory(prefix="gen_jax_mock_"))
    stack.enter_context(mock.patch.dict(os.environ, {"GEN_JAX_CACHE_DIR": str(folder)}))
    stack.enter_context(mock.patch.object(mocking, "_getitems", getitems))
    stack.enter_context(tfds.testing.mock_data(num_examples=num_examples))
    yield


def num_examples(name: str, split: str, data_dir: Optional[str] = None) -> int:
  """The number of examples in a split."""
  return len(_data_source(name, split, data_dir))


def read_rows(name: str, split: str, lo: int, hi: int, *, data_dir: Optional[str] = None,
              cache: bool = True, download: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
  """Rows [lo, hi) of a split as (uint8 images NHWC, int32 labels or None), decoded once.

  With ``download`` TFDS downloads and prepares a dataset it does not find (this needs internet
  and TensorFlow); without it a missing dataset is an error at once.
  """
  ds = _data_source(name, split, data_dir, download)
  version = str(getattr(getattr(ds, "dataset_info", None), "version", "unknown"))
  path = cache_dir() / name / version / f"{split}-{lo}-{hi}.npz"
  if cache and path.exists():
    with np.load(path) as f:
      return f["images"], (f["labels"] if "labels" in f else None)
  logging.info("decoding %s/%s rows %d..%d (cached afterwards in %s)", name, split, lo, hi, path)
  transform = DATASETS[name].transform if name in DATASETS else None
  # With a transform, decode in chunks so that only the transformed images are ever all in memory.
  chunk = 1000 if transform is not None else max(hi - lo, 1)
  image_chunks, labels = [], []
  for start in range(lo, hi, chunk):
    items = ds.__getitems__(list(range(start, min(start + chunk, hi))))
    images = np.stack([it["image"] for it in items]).astype(np.uint8)
    if images.ndim == 3:
      images = images[..., None]
    image_chunks.append(images if transform is None else transform(images))
    labels += [it["label"] for it in items] if "label" in items[0] else []
  images = np.concatenate(image_chunks)
  labels = np.asarray(labels, np.int32) if labels else None
  if cache:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")   # processes filling the cache at once
    np.savez(tmp, images=images, **({"labels": labels} if labels is not None else {}))
    os.replace(tmp, path)
  return images, labels


def load_split(name: str, split: str, *, mesh: Mesh, data_axis: str,
               data_dir: Optional[str] = None, cache: bool = True) -> Split:
  """A split on the devices of ``mesh``, sharded over ``data_axis``; this host reads only its rows."""
  ds_info = info(name)
  n = num_examples(name, split, data_dir)
  shards = mesh.shape[data_axis]
  n_pad = -(-n // shards) * shards
  data_sharding = sharding.data_sharded(mesh, data_axis)
  # The rows this host's devices hold: read them once, as one contiguous block.
  index_map = data_sharding.addressable_devices_indices_map((n_pad,))
  starts = [idx[0].start or 0 for idx in index_map.values()]
  stops = [n_pad if idx[0].stop is None else idx[0].stop for idx in index_map.values()]
  lo, hi = min(starts), max(stops)
  images, labels = read_rows(name, split, lo, min(hi, n), data_dir=data_dir, cache=cache)
  pad = hi - lo - images.shape[0]
  if pad:
    images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
    if labels is not None:
      labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])

  def put(local: np.ndarray) -> jax.Array:
    return jax.make_array_from_callback(
        (n_pad, *local.shape[1:]), data_sharding,
        lambda idx: local[(idx[0].start or 0) - lo:(n_pad if idx[0].stop is None else idx[0].stop) - lo])

  return Split(images=put(images), labels=None if labels is None else put(labels),
               num_examples=n, max_value=ds_info.max_value)


def gather(rows: jax.Array, idx: jax.Array, *, mesh: Mesh, data_axis: str) -> jax.Array:
  """``rows[idx]`` for ``rows`` sharded over ``data_axis`` and a replicated index vector.

  Each device picks the requested rows it holds (zeros elsewhere) and a reduce-scatter over the data
  axis sums the picks (exactly: one non-zero term each) and leaves every device its slice of the
  batch. The result is ``(len(idx), ...)`` sharded over ``data_axis``, identical on any number of
  devices; only the batch crosses the interconnect, never the dataset.
  """
  def local(rows_shard, idx):
    n_local = rows_shard.shape[0]
    local_idx = idx - jax.lax.axis_index(data_axis) * n_local
    mine = (local_idx >= 0) & (local_idx < n_local)
    picked = jnp.take(rows_shard, jnp.clip(local_idx, 0, n_local - 1), axis=0)
    picked = jnp.where(mine.reshape(mine.shape + (1,) * (picked.ndim - 1)), picked, 0)
    if picked.dtype == jnp.uint8:  # reduce-scatter in a type every backend sums
      picked = picked.astype(jnp.int32)
    return jax.lax.psum_scatter(picked, data_axis, scatter_dimension=0, tiled=True)

  return jax.shard_map(local, mesh=mesh, in_specs=(P(data_axis), P()), out_specs=P(data_axis),
                       check_vma=False)(rows, idx)


def eval_batch(images: jax.Array, start, labels: Optional[jax.Array] = None, *, batch_size: int,
               num_examples: int, mesh: Mesh, data_axis: str) -> tuple[dict, jax.Array]:
  """(rows ``start .. start + batch_size`` of a device-resident split as ``{"image": ...}`` (and
  ``"label"`` when ``labels`` is given), the mask of the rows that are real examples): past
  ``num_examples`` the last row is repeated and masked out, so every batch has one shape."""
  idx = start + jnp.arange(batch_size)
  mask = idx < num_examples
  idx = jnp.minimum(idx, images.shape[0] - 1)
  batch = {"image": gather(images, idx, mesh=mesh, data_axis=data_axis)}
  if labels is not None:
    batch["label"] = gather(labels, idx, mesh=mesh, data_axis=data_axis)
  return batch, mask


def to_float(images: jax.Array, max_value: int) -> jax.Array:
  """uint8 (or int) pixels -> float32 in [0, 1]."""
  return images.astype(jnp.float32) / max_value


def _fmix32(h: jax.Array) -> jax.Array:
  """MurmurHash3's 32-bit finalizer: a bijection of uint32 with full avalanche."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def binarize(key: jax.Array, images: jax.Array) -> jax.Array:
  """x ~ Bernoulli(images): the dynamic binarization of grey-level images in [0, 1].

  One threefry draw seeds a counter-based hash of each pixel's index, whose top 24 bits are compared
  with ``images * 2**24`` (so P(x = 1) equals the pixel value to 2**-24, and is exactly 0 or 1 at 0
  and 1). ``jax.random.bernoulli`` gives the same distribution but spends ~1 ms per 128x784 batch
  in threefry on a 2-core CPU against ~0.2 ms here: a fifth of a VAE step. Being a function of
  the global pixel index only, the result is the same under any sharding.
  """
  seed = jax.random.bits(key, (), jnp.uint32)
  idx = jax.lax.iota(jnp.uint32, images.size).reshape(images.shape)
  r24 = _fmix32(_fmix32(idx ^ seed) + seed) >> 8
  threshold = jnp.round(images.astype(jnp.float32) * (1 << 24)).astype(jnp.uint32)
  return (r24 < threshold).astype(jnp.float32)


def epoch_order(key: jax.Array, epoch: jax.Array, num_examples: int) -> jax.Array:
  """The order of the examples in ``epoch``: a permutation of range(num_examples)."""
  return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
