"""Generators and discriminators of the adversarial family (Flax Linen modules only).

Generators map noise ``z`` (batch, z_dim) to images (batch, H, W, C) in the range of their
``output`` activation: 'sigmoid' -> [0, 1], 'tanh' -> [-1, 1]. Discriminators map images in that
same range to one raw output per example (a logit, or a critic value for Wasserstein losses).

* :class:`MLPGenerator` / :class:`MLPDiscriminator`: the fully connected GAN of Goodfellow et al.
  (2014) as most tutorials build it: 100 -> 128 -> 256 -> 784 and 784 -> 256 -> 128 -> 1 with leaky
  ReLUs (slope 0.2).
* :class:`DCGANGenerator` / :class:`DCGANDiscriminator`: Radford et al. (2016): a dense layer to a
  small feature map, then 4x4 stride-2 transposed convolutions with batch norm and ReLU, tanh out;
  the discriminator mirrors it with 4x4 stride-2 convolutions and leaky ReLU (0.2), batch norm on
  every layer but the first. Weights ~ N(0, 0.02). ``channels`` sets the depth: each entry is one
  factor 2 of resolution, so 28x28 takes two (7 -> 14 -> 28) and 32x32 or 64x64 take three or
  four from a 4x4 map. The (transposed) convolutions are computed as matrix products
  (:class:`Conv2x`, :class:`ConvTranspose2x`; see there why), with the parameters of ``nn.Conv``.

Batch norm: modules take ``train``; with ``train=True`` they normalize with the statistics of the
batch they are given (under ``jax.jit`` over a sharded batch, those are global over all devices)
and update running averages in the ``batch_stats`` collection with ``bn_momentum``.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

OUTPUTS = ("sigmoid", "tanh")
NORMS = ("batch", "layer", "spectral", "none")
_INIT = nn.initializers.normal(0.02)   # Radford et al.: all weights ~ N(0, 0.02)


def _activate(h: jax.Array, output: str) -> jax.Array:
  if output == "sigmoid":
    return jax.nn.sigmoid(h)
  if output == "tanh":
    return jnp.tanh(h)
  raise ValueError(f"unknown generator output {output!r} (config.model.gen_output); "
                   f"choose one of {', '.join(OUTPUTS)}.")


def _normalize(h: jax.Array, norm: str, train: bool, momentum: float) -> jax.Array:
  if norm == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=momentum)(h)
  if norm == "layer":   # per example over (H, W, C): a critic that the gradient penalty allows
    return nn.LayerNorm(reduction_axes=tuple(range(1, h.ndim)), feature_axes=-1)(h)
  if norm == "none":
    return h
  raise ValueError(f"unknown normalization {norm!r} (config.model.gen_norm / disc_norm); "
                   f"choose one of {', '.join(NORMS)}.")


# Convolutions as matrix products. XLA:CPU computes the kernel gradient of a convolution ~50x
# slower inside a while loop than outside one (measured: 1.6 s vs 34 ms for 3 steps of a 4x4
# stride-2 conv, 64 x 14x14x64 -> 7x7x128; jax-ml/jax#12868), and the training loop runs every step
# inside a ``lax.fori_loop``; the kernel gradient of a transposed convolution is slow even outside
# one (1.16 s vs 96 ms). Patches times a matrix have only slices and dots in their gradients,
# which XLA runs at full speed everywhere. The results equal ``lax.conv_general_dilated`` and
# ``lax.conv_transpose`` to float rounding (tests/test_gan.py).


def conv_4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, (2, 2), 'SAME')`` (NHWC, HWIO) for a 4x4 kernel."""
  b, h, w, cin = x.shape
  out_h, out_w = -(-h // 2), -(-w // 2)
  pad_h, pad_w = max(2 * (out_h - 1) + 4 - h, 0), max(2 * (out_w - 1) + 4 - w, 0)
  xp = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
  patches = jnp.concatenate([xp[:, u:u + 2 * out_h - 1:2, v:v + 2 * out_w - 1:2]
                             for u in range(4) for v in range(4)], axis=-1)   # (b, oh, ow, 16 cin)
  return patches @ kernel.reshape(16 * cin, -1).astype(x.dtype)


# A 4x4 stride-2 'SAME' transposed convolution in sub-pixel form: output row 2i + a is
# K[_TAPS[a][0]] x[i - 1 + a] + K[_TAPS[a][1]] x[i + a], i.e. a 2x2 window of the input padded by
# one, read at rows i + a and i + a + 1 (a = 0: taps 0, 2 at rows i - 1, i; a = 1: taps 1, 3 at
# rows i, i + 1).
_TAPS = np.array([[0, 2], [1, 3]])


def conv_transpose_4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``lax.conv_transpose(x, kernel, (2, 2), 'SAME')`` (NHWC, HWIO) for a 4x4 kernel: doubles H, W.

  One product of the 2x2 windows of the padded input with the kernel's taps for all four output
  phases, then each phase is read at its offset and the phases interleaved (depth-to-space).
  """
  b, h, w, cin = x.shape
  cout = kernel.shape[-1]
  taps = _TAPS.T                                                        # (offset u, phase a)
  k = kernel[taps[:, None, :, None], taps[None, :, None, :]]            # (u, v, a, b, in, out)
  k = k.transpose(0, 1, 4, 2, 3, 5).reshape(4 * cin, 4 * cout).astype(x.dtype)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  patches = jnp.concatenate([xp[:, u:u + h + 1, v:v + w + 1] for u in (0, 1) for v in (0, 1)],
                            axis=-1)                                     # (b, h+1, w+1, 4 cin)
  y = (patches @ k).reshape(b, h + 1, w + 1, 2, 2, cout)
  rows = [jnp.stack([y[:, a:a + h, c:c + w, a, c] for c in (0, 1)], axis=3) for a in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, cout)


class Conv2x(nn.Module):
  """4x4 stride-2 'SAME' convolution (halves H and W) with ``nn.Conv``'s parameters
  (``kernel`` (4, 4, in, out), ``bias``), computed by :func:`conv_4x4_stride2`."""
  features: int
  kernel_init: nn.initializers.Initializer = _INIT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv_4x4_stride2(x, kernel) + bias


class ConvTranspose2x(nn.Module):
  """4x4 stride-2 'SAME' transposed convolution (doubles H and W) with ``nn.ConvTranspose``'s
  parameters (``kernel`` (4, 4, in, out), ``bias``), computed by :func:`conv_transpose_4x4_stride2`."""
  features: int
  kernel_init: nn.initializers.Initializer = _INIT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv_transpose_4x4_stride2(x, kernel) + bias


class MLPGenerator(nn.Module):
  """z -> leaky-ReLU hidden layers -> one value per pixel -> ``output`` activation."""
  hidden: Sequence[int] = (128, 256)
  image_shape: Sequence[int] = (28, 28, 1)
  output: str = "sigmoid"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train
    h = z
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    h = nn.Dense(math.prod(self.image_shape))(h)
    return _activate(h, self.output).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
  """Flattened image -> leaky-ReLU hidden layers -> one raw output per example, (batch,)."""
  hidden: Sequence[int] = (256, 128)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    return nn.Dense(1)(h)[:, 0]


class DCGANGenerator(nn.Module):
  """z -> dense to (H/2^L, W/2^L, channels[0]) -> transposed convs to channels[1:], then to C.

  L = len(channels) stride-2 layers. Batch norm (``norm``) and ReLU after every layer but the last.
  ``dense``: widths of fully connected layers before the projection to the feature map (InfoGAN's
  MNIST generator, which Lucic et al. 2018 use, has one of 1024).
  """
  channels: Sequence[int] = (128, 64)
  image_shape: Sequence[int] = (28, 28, 1)
  output: str = "tanh"
  norm: str = "batch"
  bn_momentum: float = 0.9
  dense: Sequence[int] = ()

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    height, width, out_channels = self.image_shape
    scale = 2 ** len(self.channels)
    if height % scale or width % scale:
      raise ValueError(f"DCGAN generator: image size {height}x{width} is not divisible by {scale} "
                       f"({len(self.channels)} stride-2 layers); change model.gen_channels.")
    for width_ in self.dense:
      z = nn.relu(_normalize(nn.Dense(width_, kernel_init=_INIT)(z), self.norm, train,
                             self.bn_momentum))
    h = nn.Dense(height // scale * width // scale * self.channels[0], kernel_init=_INIT)(z)
    h = h.reshape(z.shape[0], height // scale, width // scale, self.channels[0])
    h = nn.relu(_normalize(h, self.norm, train, self.bn_momentum))
    for c in self.channels[1:]:
      h = ConvTranspose2x(c)(h)
      h = nn.relu(_normalize(h, self.norm, train, self.bn_momentum))
    h = ConvTranspose2x(out_channels)(h)
    return _activate(h, self.output)


class DCGANDiscriminator(nn.Module):
  """Image -> 4x4 stride-2 convs with ``channels`` -> dense to one raw output per example, (batch,).

  Leaky ReLU (0.2) throughout. ``norm``: 'batch' or 'layer' normalization on every conv layer but
  the first (Radford et al.); 'spectral' divides every layer's weights by their largest singular
  value instead (Miyato et al. 2018; one power iteration per call, its vectors in ``batch_stats``).
  ``dense``: widths of fully connected layers (with ``norm`` and leaky ReLU) between the last
  convolution and the output (InfoGAN's MNIST discriminator has one of 1024).
  """
  channels: Sequence[int] = (64, 128)
  norm: str = "batch"
  bn_momentum: float = 0.9
  dense: Sequence[int] = ()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    spectral = self.norm == "spectral"

    def layer(module, h):
      return nn.SpectralNorm(module)(h, update_stats=train) if spectral else module(h)

    h = x
    for i, c in enumerate(self.channels):
      h = layer(Conv2x(c), h)
      if i and not spectral:
        h = _normalize(h, self.norm, train, self.bn_momentum)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)
    for width in self.dense:
      h = layer(nn.Dense(width, kernel_init=_INIT), h)
      if not spectral:
        h = _normalize(h, self.norm, train, self.bn_momentum)
      h = nn.leaky_relu(h, 0.2)
    return layer(nn.Dense(1, kernel_init=_INIT), h)[:, 0]


ARCHS = ("mlp", "dcgan")


def make_generator(arch: str, *, image_shape: Sequence[int], hidden: Sequence[int] = (128, 256),
                   channels: Sequence[int] = (128, 64), output: str = "tanh", norm: str = "batch",
                   bn_momentum: float = 0.9, dense: Sequence[int] = ()) -> nn.Module:
  if output not in OUTPUTS:
    raise ValueError(f"unknown generator output {output!r} (config.model.gen_output); "
                     f"choose one of {', '.join(OUTPUTS)}.")
  if norm not in ("batch", "layer", "none"):
    raise ValueError(f"unknown generator normalization {norm!r} (config.model.gen_norm); "
                     "choose batch, layer or none.")
  if arch == "mlp":
    return MLPGenerator(hidden=tuple(hidden), image_shape=tuple(image_shape), output=output)
  if arch == "dcgan":
    return DCGANGenerator(channels=tuple(channels), image_shape=tuple(image_shape), output=output,
                          norm=norm, bn_momentum=bn_momentum, dense=tuple(dense))
  raise ValueError(f"unknown model.arch {arch!r}: choose one of {', '.join(ARCHS)}.")


def make_discriminator(arch: str, *, hidden: Sequence[int] = (256, 128),
                       channels: Sequence[int] = (64, 128), norm: str = "batch",
                       bn_momentum: float = 0.9, dense: Sequence[int] = ()) -> nn.Module:
  if norm not in NORMS:
    raise ValueError(f"unknown normalization {norm!r} (config.model.disc_norm); "
                     f"choose one of {', '.join(NORMS)}.")
  if arch == "mlp":
    return MLPDiscriminator(hidden=tuple(hidden))
  if arch == "dcgan":
    return DCGANDiscriminator(channels=tuple(channels), norm=norm, bn_momentum=bn_momentum,
                              dense=tuple(dense))
  raise ValueError(f"unknown model.arch {arch!r}: choose one of {', '.join(ARCHS)}.")
