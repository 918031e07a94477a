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

from gen_jax.losses import densities
from gen_jax.models.flows import IAF
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

  def _encoder_outputs(self) -> int:
    return self.outputs_per_code * self.latent_dim

  def setup(self):
    self.encoder = make_encoder(self.arch, hidden=self.hidden, channels=self.channels,
                                out_dim=self._encoder_outputs())
    self.decoder = make_decoder(self.arch, hidden=self.hidden, channels=self.channels,
                                image_shape=self.image_shape)


class VAE(_EncoderDecoder):
  """Gaussian encoder q(z|x) = N(mean, diag(exp(logvar))), prior N(0, I), Bernoulli decoder.

  With ``num_classes`` > 0, the conditional VAE (Sohn et al. 2015): q(z | x, y) and p(x | z, y)
  take the one-hot of the label y beside the flattened image and the code (MLP encoder only).

  With ``flow='iaf'``, q(z|x) is that Gaussian pushed through ``flow_steps`` steps of inverse
  autoregressive flow (:mod:`gen_jax.models.flows`) whose MADEs (``flow_hidden`` units) also read
  a context of ``context_dim`` further encoder outputs (Kingma et al. 2016)."""
  outputs_per_code = 2   # mean and log-variance
  num_classes: int = 0
  flow: str = ""         # '' (a diagonal Gaussian q) or 'iaf'
  flow_steps: int = 0
  flow_hidden: Sequence[int] = (320, 320)
  context_dim: int = 0

  def _encoder_outputs(self) -> int:
    return 2 * self.latent_dim + (self.context_dim if self.flow else 0)

  def setup(self):
    super().setup()
    if self.flow:
      self.posterior_flow = IAF(num_steps=self.flow_steps, hidden=tuple(self.flow_hidden))

  def _with_label(self, h: jax.Array, y: Optional[jax.Array]) -> jax.Array:
    if not self.num_classes:
      return h
    if y is None:
      raise ValueError("a conditional VAE (model.num_classes > 0) needs the labels y.")
    onehot = jax.nn.one_hot(y, self.num_classes, dtype=h.dtype)
    return jnp.concatenate([h, jnp.broadcast_to(onehot, h.shape[:-1] + onehot.shape[-1:])], -1)

  def _encode_all(self, x: jax.Array, y: Optional[jax.Array]):
    if self.num_classes:
      x = self._with_label(x.reshape(x.shape[0], -1), y)
    out = self.encoder(x)
    d = self.latent_dim
    return out[:, :d], out[:, d:2 * d], out[:, 2 * d:]

  def encode(self, x: jax.Array, y: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """Returns (mean, logvar) of the Gaussian q(z|x) (or q(z|x, y)), each (batch, latent_dim);
    with a flow, of its base distribution q(z_0 | x)."""
    mean, logvar, _ = self._encode_all(x, y)
    return mean, logvar

  def posterior(self, x: jax.Array, eps: jax.Array,
                y: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(z, log q(z|x)) for the standard-normal draws ``eps`` of shape (..., batch, latent_dim):
    z = mean + std * eps, then the flow if there is one."""
    mean, logvar, context = self._encode_all(x, y)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_q = densities.gaussian_log_prob(z, mean, logvar)
    if self.flow:
      z, log_det = self.posterior_flow(z, context)
      log_q = log_q - log_det
    return z, log_q

  def code(self, x: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
    """The representative code of x: the mean of q(z|x); with a flow, the flow of the base mean."""
    mean, _, context = self._encode_all(x, y)
    return self.posterior_flow(mean, context)[0] if self.flow else mean

  def decode(self, z: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
    """Bernoulli logits of p(x|z) (or p(x|z, y)); any leading batch axes of z are kept."""
    return self.decoder(self._with_label(z, y))

  def __call__(self, x: jax.Array, key: jax.Array, y: Optional[jax.Array] = None):
    """(logits of p(x|z), mean, logvar) for one z ~ q(z|x) (with a flow, z_T of the flow)."""
    mean, logvar = self.encode(x, y)
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    z = self.posterior(x, eps, y)[0] if self.flow else mean + jnp.exp(0.5 * logvar) * eps
    return self.decode(z, y), mean, logvar


class Autoencoder(_EncoderDecoder):
  """Deterministic autoencoder: x -> code -> Bernoulli logits of x."""

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decode(self.encode(x))
