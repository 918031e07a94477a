"""Generators and discriminators of the adversarial families: GAN, VAE-GAN, BiGAN (Flax Linen).

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
  (:mod:`gen_jax.models.layers`; see there why), with the parameters of ``nn.Conv``.

Batch norm: modules take ``train``; with ``train=True`` they normalize with the statistics of the
batch they are given (under ``jax.jit`` over a sharded batch, those are global over all devices)
and update running averages in the ``batch_stats`` collection with ``bn_momentum``.

The hybrid families' discriminators (no batch norm: each example's output depends on that example
alone, so per-example eval metrics mean what they say and a sharded batch needs no cross-device
statistics; leaky ReLU 0.2 throughout; images NHWC in [0, 1]; dropout (``dropout`` > 0, ALI's
regulariser) is active only with ``train=True`` and then needs a ``'dropout'`` PRNG key):

* :class:`FeatureDiscriminator` (VAE-GAN, Larsen et al. 2016): an image discriminator that also
  returns the activations of its last hidden layer, ``Dis_l(x)``, the feature space in which the
  VAE-GAN measures reconstructions.
* :class:`JointDiscriminator` (BiGAN, Donahue et al. 2017; ALI, Dumoulin et al. 2017): a
  discriminator on (x, z) pairs: an x path and a z path whose features are concatenated and passed
  through a joint path to one logit.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from gen_jax.models.layers import (  # noqa: F401  (re-exported)
    Conv2x as _Conv2x, ConvTranspose2x as _ConvTranspose2x, conv_4x4_stride2,
    conv_transpose_4x4_stride2)

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


class Conv2x(_Conv2x):
  """:class:`gen_jax.models.layers.Conv2x` with Radford et al.'s N(0, 0.02) initialization."""
  kernel_init: nn.initializers.Initializer = _INIT


class ConvTranspose2x(_ConvTranspose2x):
  """:class:`gen_jax.models.layers.ConvTranspose2x` with N(0, 0.02) initialization."""
  kernel_init: nn.initializers.Initializer = _INIT


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


def _centred(x: jax.Array, centre: bool) -> jax.Array:
  """[0, 1] -> [-1, 1] (2x - 1) when ``centre``: the discriminators' optional first step.

  A sigmoid generator's images, and real images with them, stay in [0, 1]; fed to D as they are,
  the MLP GAN of configs/gan_mnist.py collapsed to a few images within its first 1000 steps
  (seeds 0 and 1: per-pixel batch std 0.01, D(G(z)) = 0, Inception Score 1.4 and 1.2 after 30
  epochs), while the same networks on centred inputs drew all ten digits by step 3000. Centring
  is the one difference between a tanh and a sigmoid generator that D sees (2 sigmoid(h) - 1 =
  tanh(h / 2)), so it keeps the sigmoid output of the original GAN."""
  return 2.0 * x - 1.0 if centre else x


def _info_head(module: nn.Module, h: jax.Array, q_dim: int) -> None:
  """InfoGAN's Q (Chen et al. 2016): logits of q(c | x) over ``q_dim`` categories from the
  discriminator's last hidden layer ``h`` (dense 128, leaky ReLU, dense ``q_dim``), sown into the
  ``intermediates`` collection as ``q_logits``; a caller that does not ask for it gets D's output
  alone. Nothing when ``q_dim`` is 0."""
  if q_dim:
    q = nn.leaky_relu(nn.Dense(128, kernel_init=_INIT, name="q_hidden")(h), 0.2)
    module.sow("intermediates", "q_logits", nn.Dense(q_dim, kernel_init=_INIT, name="q_out")(q))


class MLPDiscriminator(nn.Module):
  """Flattened image -> leaky-ReLU hidden layers -> one raw output per example, (batch,).
  ``centre``: see :func:`_centred`. ``q_dim`` > 0: InfoGAN's Q head, see :func:`_info_head`."""
  hidden: Sequence[int] = (256, 128)
  centre: bool = False
  q_dim: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    h = _centred(x, self.centre).reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    self.sow("intermediates", "features", h)   # the last hidden layer, a feature extractor
    _info_head(self, h, self.q_dim)
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
  conv_impl: str = "matmul"   # gen_jax.models.layers.resolve_conv_impl

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
      h = ConvTranspose2x(c, impl=self.conv_impl)(h)
      h = nn.relu(_normalize(h, self.norm, train, self.bn_momentum))
    h = ConvTranspose2x(out_channels, impl=self.conv_impl)(h)
    return _activate(h, self.output)


class DCGANDiscriminator(nn.Module):
  """Image -> 4x4 stride-2 convs with ``channels`` -> dense to one raw output per example, (batch,).

  Leaky ReLU (0.2) throughout. ``norm``: 'batch' or 'layer' normalization on every conv layer but
  the first (Radford et al.); 'spectral' divides every layer's weights by their largest singular
  value instead (Miyato et al. 2018; one power iteration per call, its vectors in ``batch_stats``).
  ``dense``: widths of fully connected layers (with ``norm`` and leaky ReLU) between the last
  convolution and the output (InfoGAN's MNIST discriminator has one of 1024). ``centre``: see
  :func:`_centred`. ``q_dim`` > 0: InfoGAN's Q head on the last hidden layer, see
  :func:`_info_head`.
  """
  channels: Sequence[int] = (64, 128)
  norm: str = "batch"
  bn_momentum: float = 0.9
  dense: Sequence[int] = ()
  centre: bool = False
  q_dim: int = 0
  conv_impl: str = "matmul"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    spectral = self.norm == "spectral"

    def layer(module, h):
      return nn.SpectralNorm(module)(h, update_stats=train) if spectral else module(h)

    h = _centred(x, self.centre)
    for i, c in enumerate(self.channels):
      h = layer(Conv2x(c, impl=self.conv_impl), h)
      if i and not spectral:
        h = _normalize(h, self.norm, train, self.bn_momentum)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)
    for width in self.dense:
      h = layer(nn.Dense(width, kernel_init=_INIT), h)
      if not spectral:
        h = _normalize(h, self.norm, train, self.bn_momentum)
      h = nn.leaky_relu(h, 0.2)
    self.sow("intermediates", "features", h)   # Radford et al.'s feature extractor
    _info_head(self, h, self.q_dim)
    return layer(nn.Dense(1, kernel_init=_INIT), h)[:, 0]


ARCHS = ("mlp", "dcgan")


def make_generator(arch: str, *, image_shape: Sequence[int], hidden: Sequence[int] = (128, 256),
                   channels: Sequence[int] = (128, 64), output: str = "tanh", norm: str = "batch",
                   bn_momentum: float = 0.9, dense: Sequence[int] = (),
                   conv_impl: str = "matmul") -> nn.Module:
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
                          norm=norm, bn_momentum=bn_momentum, dense=tuple(dense),
                          conv_impl=conv_impl)
  raise ValueError(f"unknown model.arch {arch!r}: choose one of {', '.join(ARCHS)}.")


def make_discriminator(arch: str, *, hidden: Sequence[int] = (256, 128),
                       channels: Sequence[int] = (64, 128), norm: str = "batch",
                       bn_momentum: float = 0.9, dense: Sequence[int] = (),
                       centre: bool = False, q_dim: int = 0,
                       conv_impl: str = "matmul") -> nn.Module:
  if norm not in NORMS:
    raise ValueError(f"unknown normalization {norm!r} (config.model.disc_norm); "
                     f"choose one of {', '.join(NORMS)}.")
  if arch == "mlp":
    return MLPDiscriminator(hidden=tuple(hidden), centre=centre, q_dim=q_dim)
  if arch == "dcgan":
    return DCGANDiscriminator(channels=tuple(channels), norm=norm, bn_momentum=bn_momentum,
                              dense=tuple(dense), centre=centre, q_dim=q_dim, conv_impl=conv_impl)
  raise ValueError(f"unknown model.arch {arch!r}: choose one of {', '.join(ARCHS)}.")


# ---------------------------------------------------------------------------------------------
# The hybrid families' discriminators.

IMAGE_PATHS = ("mlp", "conv")


def _conv(features: int, name: str, impl: str) -> _Conv2x:
  """A 4x4 stride-2 'SAME' convolution with ``nn.Conv``'s parameters and initialization
  (:mod:`gen_jax.models.layers`)."""
  return _Conv2x(features, impl=impl, name=name)   # nn.Conv's own initialization, not N(0, 0.02)


class _ImagePath(nn.Module):
  """x -> features: an MLP on the flattened image, or 4x4 stride-2 convolutions then flattening.

  With ``arch='conv'`` the hidden widths apply after the convolutions (a dense layer each).
  """
  arch: str
  hidden: Sequence[int]
  channels: Sequence[int] = ()
  dropout: float = 0.0
  conv_impl: str = "matmul"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.arch not in IMAGE_PATHS:
      raise ValueError(f"unknown discriminator arch {self.arch!r} (config.model.disc_arch); "
                       f"choose one of {', '.join(IMAGE_PATHS)}.")
    h = x
    if self.arch == "conv":
      for i, c in enumerate(self.channels):
        h = nn.leaky_relu(_conv(c, f"Conv_{i}", self.conv_impl)(h), 0.2)
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h.reshape(h.shape[0], -1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return h


class FeatureDiscriminator(nn.Module):
  """Image -> (logit (batch,), features Dis_l(x) (batch, F)).

  The hidden layers are the ``channels`` convolutions (``arch='conv'``) and then the ``hidden``
  dense layers, each followed by a leaky ReLU; ``Dis_l(x)`` is the (flattened) output of hidden
  layer ``feature_layer`` of that list (Python indexing: -1, the default, is the last; Larsen et al.
  take the fourth convolution's output, the layer before the dense layers).
  """
  arch: str = "mlp"
  hidden: Sequence[int] = (512, 256)
  channels: Sequence[int] = (32, 64)
  feature_layer: int = -1
  conv_impl: str = "matmul"   # gen_jax.models.layers.resolve_conv_impl

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
    del train   # no dropout or normalization: the same function in training and evaluation
    if self.arch not in IMAGE_PATHS:
      raise ValueError(f"unknown discriminator arch {self.arch!r} (config.model.disc_arch); "
                       f"choose one of {', '.join(IMAGE_PATHS)}.")
    num = len(self.hidden) + (len(self.channels) if self.arch == "conv" else 0)
    if not -num <= self.feature_layer < num:
      raise ValueError(f"model.feature_layer={self.feature_layer} but the discriminator has {num} "
                       f"hidden layers; choose one of {-num}..{num - 1}.")
    outputs = []
    h = x
    if self.arch == "conv":
      for i, c in enumerate(self.channels):
        h = nn.leaky_relu(_conv(c, f"Conv_{i}", self.conv_impl)(h), 0.2)
        outputs.append(h)
    h = h.reshape(h.shape[0], -1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
      outputs.append(h)
    features = outputs[self.feature_layer]
    return nn.Dense(1)(h)[:, 0], features.reshape(features.shape[0], -1)


class JointDiscriminator(nn.Module):
  """(x, z) -> one logit per pair, (batch,).

  x path: ``x_hidden`` (after ``channels`` convolutions if ``arch='conv'``); z path: ``z_hidden``;
  then the concatenation through ``joint_hidden`` to a linear output. Dropout after every hidden
  layer when ``dropout`` > 0 and ``train``.
  """
  arch: str = "mlp"
  x_hidden: Sequence[int] = (512,)
  z_hidden: Sequence[int] = (512,)
  joint_hidden: Sequence[int] = (512,)
  channels: Sequence[int] = (32, 64)
  dropout: float = 0.0
  conv_impl: str = "matmul"   # gen_jax.models.layers.resolve_conv_impl

  @nn.compact
  def __call__(self, x: jax.Array, z: jax.Array, train: bool = True) -> jax.Array:
    if x.shape[0] != z.shape[0]:
      raise ValueError(f"JointDiscriminator: {x.shape[0]} images but {z.shape[0]} codes; give "
                       "one code per image.")
    hx = _ImagePath(self.arch, tuple(self.x_hidden), tuple(self.channels), self.dropout,
                    self.conv_impl, name="x_path")(x, train)
    hz = _ImagePath("mlp", tuple(self.z_hidden), (), self.dropout, name="z_path")(z, train)
    h = jnp.concatenate([hx, hz], axis=-1)
    for width in self.joint_hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(1)(h)[:, 0]
