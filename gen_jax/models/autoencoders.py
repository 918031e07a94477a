"""Encoders, decoders, and the autoencoder / VAE modules built from them.

Images are NHWC floats in [0, 1]. Decoders return Bernoulli logits of the same shape. The conv
encoder and decoder compute their 4x4 stride-2 (transposed) convolutions as matrix products
(:mod:`gen_jax.models.layers`, with ``nn.Conv``'s parameter names, shapes and initialization), which
XLA:CPU differentiates at full speed inside the training loop's ``fori_loop``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.models.layers import Conv2x, ConvTranspose2x


class MLPEncoder(nn.Module):
  """Flatten, ReLU hidden layers, then a linear layer of ``out_dim`` units."""
  hidden: Sequence[int]
  out_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.out_dim)(h)


class MLPDecoder(nn.Module):
  """ReLU hidden layers, then a linear layer to one logit per pixel."""
  hidden: Sequence[int]
  image_shape: Sequence[int]

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = z.reshape(-1, z.shape[-1])  # 2-D matmuls: XLA:CPU is ~2x slower on (k, B, D) inputs
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    size = 1
    for d in self.image_shape:
      size *= d
    return nn.Dense(size)(h).reshape(z.shape[:-1] + tuple(self.image_shape))


class ConvEncoder(nn.Module):
  """Strided 4x4 convolutions (each halves H and W), a dense hidden layer, a linear output."""
  channels: Sequence[int]
  hidden: int
  out_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i, c in enumerate(self.channels):
      h = nn.relu(Conv2x(c, name=f"Conv_{i}")(h))
    h = h.reshape(h.shape[0], -1)
    h = nn.relu(nn.Dense(self.hidden)(h))
    return nn.Dense(self.out_dim)(h)


class ConvDecoder(nn.Module):
  """The mirror of :class:`ConvEncoder`: dense to a small feature map, then strided
  transposed convolutions (each doubles H and W) to one logit per pixel."""
  channels: Sequence[int]   # listed as in the encoder; used in reverse
  hidden: int
  image_shape: Sequence[int]

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    height, width, out_channels = self.image_shape
    scale = 2 ** len(self.channels)
    if height % scale or width % scale:
      raise ValueError(f"ConvDecoder: image size {height}x{width} is not divisible by {scale} "
                       f"({len(self.channels)} stride-2 layers); change model.channels.")
    lead = z.shape[:-1]
    z = z.reshape(-1, z.shape[-1])
    h = nn.relu(nn.Dense(self.hidden)(z))
    h = nn.relu(nn.Dense(height // scale * width // scale * self.channels[-1])(h))
    h = h.reshape(-1, height // scale, width // scale, self.channels[-1])
    for i, c in enumerate(reversed(self.channels[:-1])):
      h = nn.relu(ConvTranspose2x(c, name=f"ConvTranspose_{i}")(h))
    h = ConvTranspose2x(out_channels, name=f"ConvTranspose_{len(self.channels) - 1}")(h)
    return h.reshape(lead + tuple(self.image_shape))


def make_encoder(arch: str, *, hidden: Sequence[int], channels: Sequence[int], out_dim: int):
  if arch == "mlp":
    return MLPEncoder(hidden=tuple(hidden), out_dim=out_dim)
  if arch == "conv":
    return ConvEncoder(channels=tuple(channels), hidden=hidden[-1], out_dim=out_dim)
  raise ValueError(f"unknown model.arch {arch!r}: choose 'mlp' or 'conv'.")


def make_decoder(arch: str, *, hidden: Sequence[int], channels: Sequence[int],
                 image_shape: Sequence[int]):
  if arch == "mlp":
    return MLPDecoder(hidden=tuple(reversed(hidden)), image_shape=tuple(image_shape))
  if arch == "conv":
    return ConvDecoder(channels=tuple(channels), hidden=hidden[-1], image_shape=tuple(image_shape))
  raise ValueError(f"unknown model.arch {arch!r}: choose 'mlp' or 'conv'.")


class _EncoderDecoder(nn.Module):
  """An encoder of ``outputs_per_code`` * latent_dim outputs and its mirror decoder."""
  arch: str
  hidden: Sequence[int]
  latent_dim: int
  image_shape: Sequence[int]
  channels: Sequence[int] = (32, 64)
  outputs_per_code = 1   # a class constant, not a field

  def setup(self):
    self.encoder = make_encoder(self.arch, hidden=self.hidden, channels=self.channels,
                                out_dim=self.outputs_per_code * self.latent_dim)
    self.decoder = make_decoder(self.arch, hidden=self.hidden, channels=self.channels,
                                image_shape=self.image_shape)


class VAE(_EncoderDecoder):
  """Gaussian encoder q(z|x) = N(mean, diag(exp(logvar))), prior N(0, I), Bernoulli decoder.

  With ``num_classes`` > 0, the conditional VAE (Sohn et al. 2015): q(z | x, y) and p(x | z, y)
  take the one-hot of the label y beside the flattened image and the code (MLP encoder only)."""
  outputs_per_code = 2   # mean and log-variance
  num_classes: int = 0

  def _with_label(self, h: jax.Array, y: Optional[jax.Array]) -> jax.Array:
    if not self.num_classes:
      return h
    if y is None:
      raise ValueError("a conditional VAE (model.num_classes > 0) needs the labels y.")
    onehot = jax.nn.one_hot(y, self.num_classes, dtype=h.dtype)
    return jnp.concatenate([h, jnp.broadcast_to(onehot, h.shape[:-1] + onehot.shape[-1:])], -1)

  def encode(self, x: jax.Array, y: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """Returns (mean, logvar) of q(z|x) (or q(z|x, y)), each (batch, latent_dim)."""
    if self.num_classes:
      x = self._with_label(x.reshape(x.shape[0], -1), y)
    mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
    return mean, logvar

  def decode(self, z: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
    """Bernoulli logits of p(x|z) (or p(x|z, y)); any leading batch axes of z are kept."""
    return self.decoder(self._with_label(z, y))

  def __call__(self, x: jax.Array, key: jax.Array, y: Optional[jax.Array] = None):
    mean, logvar = self.encode(x, y)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
    return self.decode(z, y), mean, logvar


class Autoencoder(_EncoderDecoder):
  """Deterministic autoencoder: x -> code -> Bernoulli logits of x."""

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decode(self.encode(x))
