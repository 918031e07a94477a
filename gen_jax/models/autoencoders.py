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


ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


def activation(name: str):
  """The hidden units' nonlinearity by name (``model.activation``)."""
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown model.activation {name!r}: choose {' or '.join(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


class MLPEncoder(nn.Module):
  """Flatten, hidden layers (ReLU, or ``activation``), then a linear layer of ``out_dim`` units."""
  hidden: Sequence[int]
  out_dim: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = activation(self.activation)(nn.Dense(width)(h))
    return nn.Dense(self.out_dim)(h)


class MLPDecoder(nn.Module):
  """Hidden layers (ReLU, or ``activation``), then a linear layer to one logit per pixel."""
  hidden: Sequence[int]
  image_shape: Sequence[int]
  activation: str = "relu"

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = z.reshape(-1, z.shape[-1])  # 2-D matmuls: XLA:CPU is ~2x slower on (k, B, D) inputs
    for width in self.hidden:
      h = activation(self.activation)(nn.Dense(width)(h))
    size = 1
    for d in self.image_shape:
      size *= d
    return nn.Dense(size)(h).reshape(z.shape[:-1] + tuple(self.image_shape))


class ConvEncoder(nn.Module):
  """Strided 4x4 convolutions (each halves H and W), a dense hidden layer, a linear output."""
  channels: Sequence[int]
  hidden: int
  out_dim: int
  conv_impl: str = "matmul"   # gen_jax.models.layers.resolve_conv_impl

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i, c in enumerate(self.channels):
      h = nn.relu(Conv2x(c, impl=self.conv_impl, name=f"Conv_{i}")(h))
    h = h.reshape(h.shape[0], -1)
    h = nn.relu(nn.Dense(self.hidden)(h))
    return nn.Dense(self.out_dim)(h)


class ConvDecoder(nn.Module):
  """The mirror of :class:`ConvEncoder`: dense to a small feature map, then strided
  transposed convolutions (each doubles H and W) to one logit per pixel."""
  channels: Sequence[int]   # listed as in the encoder; used in reverse
  hidden: int
  image_shape: Sequence[int]
  conv_impl: str = "matmul"

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
      h = nn.relu(ConvTranspose2x(c, impl=self.conv_impl, name=f"ConvTranspose_{i}")(h))
    h = ConvTranspose2x(out_channels, impl=self.conv_impl, name=f"ConvTranspose_{len(self.channels) - 1}")(h)
    return h.reshape(lead + tuple(self.image_shape))


def make_encoder(arch: str, *, hidden: Sequence[int], channels: Sequence[int], out_dim: int,
                 act: str = "relu", conv_impl: str = "matmul"):
  if arch == "mlp":
    return MLPEncoder(hidden=tuple(hidden), out_dim=out_dim, activation=act)
  if arch == "conv":
    return ConvEncoder(channels=tuple(channels), hidden=hidden[-1], out_dim=out_dim,
                       conv_impl=conv_impl)
  raise ValueError(f"unknown model.arch {arch!r}: choose 'mlp' or 'conv'.")


def make_decoder(arch: str, *, hidden: Sequence[int], channels: Sequence[int],
                 image_shape: Sequence[int], act: str = "relu", conv_impl: str = "matmul"):
  if arch == "mlp":
    return MLPDecoder(hidden=tuple(reversed(hidden)), image_shape=tuple(image_shape), activation=act)
  if arch == "conv":
    return ConvDecoder(channels=tuple(channels), hidden=hidden[-1], image_shape=tuple(image_shape),
                       conv_impl=conv_impl)
  raise ValueError(f"unknown model.arch {arch!r}: choose 'mlp' or 'conv'.")


class _EncoderDecoder(nn.Module):
  """An encoder of ``outputs_per_code`` * latent_dim outputs and its mirror decoder."""
  arch: str
  hidden: Sequence[int]
  latent_dim: int
  image_shape: Sequence[int]
  channels: Sequence[int] = (32, 64)
  activation: str = "relu"   # the MLPs' hidden units: 'relu' or 'tanh'
  conv_impl: str = "matmul"  # arch 'conv': gen_jax.models.layers.resolve_conv_impl
  outputs_per_code = 1   # a class constant, not a field

  def _encoder_outputs(self) -> int:
    return self.outputs_per_code * self.latent_dim

  def setup(self):
    self.encoder = make_encoder(self.arch, hidden=self.hidden, channels=self.channels,
                                out_dim=self._encoder_outputs(), act=self.activation,
                                conv_impl=self.conv_impl)
    self.decoder = make_decoder(self.arch, hidden=self.hidden, channels=self.channels,
                                image_shape=self.image_shape, act=self.activation,
                                conv_impl=self.conv_impl)


class VAE(_EncoderDecoder):
  """Gaussian encoder q(z|x) = N(mean, diag(exp(logvar))), prior N(0, I), Bernoulli decoder.

  With ``num_classes`` > 0, the conditional VAE (Sohn et al. 2015): q(z | x, y) and p(x | z, y)
  take the one-hot of the label y beside the flattened image and the code (MLP encoder only).

  With ``flow='iaf'``, q(z|x) is that Gaussian pushed through ``flow_steps`` steps of inverse
  autoregressive flow (:mod:`gen_jax.models.flows`) whose MADEs (``flow_hidden`` units) also read
  a context of ``context_dim`` further encoder outputs (Kingma et al. 2016).

  With ``latent_dim2`` > 0, two stochastic layers (Burda et al. 2016, section 5): h1 of
  ``latent_dim`` units and h2 of ``latent_dim2``, q(h1|x) q(h2|h1) and p(h2) p(h1|h2) p(x|h1),
  the Gaussians between h1 and h2 computed by MLPs of ``hidden2`` units (reversed in p). The code
  z is (h1, h2) concatenated, ``code_dim`` = latent_dim + latent_dim2 wide; the decoder reads h1."""
  outputs_per_code = 2   # mean and log-variance
  num_classes: int = 0
  flow: str = ""         # '' (a diagonal Gaussian q) or 'iaf'
  flow_steps: int = 0
  flow_hidden: Sequence[int] = (320, 320)
  context_dim: int = 0
  latent_dim2: int = 0   # > 0: a second stochastic layer h2
  hidden2: Sequence[int] = ()

  @property
  def code_dim(self) -> int:
    """Width of z: latent_dim, or latent_dim + latent_dim2 with two stochastic layers."""
    return self.latent_dim + self.latent_dim2

  @property
  def closed_form_kl(self) -> bool:
    """Whether KL(q(z|x) || p(z)) is the Gaussian's closed form (no flow, one stochastic layer)."""
    return not self.flow and not self.latent_dim2

  def _encoder_outputs(self) -> int:
    return 2 * self.latent_dim + (self.context_dim if self.flow else 0)

  def setup(self):
    super().setup()
    if self.flow:
      self.posterior_flow = IAF(num_steps=self.flow_steps, hidden=tuple(self.flow_hidden))
    if self.latent_dim2:
      self.encoder2 = MLPEncoder(hidden=tuple(self.hidden2), out_dim=2 * self.latent_dim2,
                                 activation=self.activation)
      self.prior1 = MLPEncoder(hidden=tuple(reversed(self.hidden2)), out_dim=2 * self.latent_dim,
                               activation=self.activation)

  @staticmethod
  def _gaussian(net: nn.Module, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) of a Gaussian layer ``net`` of h, any leading axes of h kept."""
    out = net(h.reshape(-1, h.shape[-1]))
    mean, logvar = jnp.split(out.reshape(h.shape[:-1] + out.shape[-1:]), 2, axis=-1)
    return mean, logvar

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
    """Returns (mean, logvar) of the Gaussian q(z|x) (or q(z|x, y)), each (batch, code_dim);
    with a flow, of its base distribution q(z_0 | x); with two stochastic layers, of
    q(h1|x) q(h2 | h1 = its mean), a Gaussian near the posterior (MWG's proposal)."""
    mean, logvar, _ = self._encode_all(x, y)
    if self.latent_dim2:
      mean2, logvar2 = self._gaussian(self.encoder2, mean)
      return jnp.concatenate([mean, mean2], -1), jnp.concatenate([logvar, logvar2], -1)
    return mean, logvar

  def posterior(self, x: jax.Array, eps: jax.Array,
                y: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(z, log q(z|x)) for the standard-normal draws ``eps`` of shape (..., batch, code_dim):
    z = mean + std * eps, then the flow if there is one; with two stochastic layers h1 so, then
    h2 ~ q(h2 | h1) from the rest of eps."""
    mean, logvar, context = self._encode_all(x, y)
    d = self.latent_dim
    z = mean + jnp.exp(0.5 * logvar) * eps[..., :d]
    log_q = densities.gaussian_log_prob(z, mean, logvar)
    if self.flow:
      z, log_det = self.posterior_flow(z, context)
      log_q = log_q - log_det
    if self.latent_dim2:
      mean2, logvar2 = self._gaussian(self.encoder2, z)
      h2 = mean2 + jnp.exp(0.5 * logvar2) * eps[..., d:]
      log_q = log_q + densities.gaussian_log_prob(h2, mean2, logvar2)
      z = jnp.concatenate([z, h2], -1)
    return z, log_q

  def log_prior(self, z: jax.Array) -> jax.Array:
    """log p(z): N(0, I), or p(h2) p(h1 | h2) with two stochastic layers."""
    if not self.latent_dim2:
      return densities.standard_normal_log_prob(z)
    h1, h2 = z[..., :self.latent_dim], z[..., self.latent_dim:]
    mean, logvar = self._gaussian(self.prior1, h2)
    return densities.standard_normal_log_prob(h2) + densities.gaussian_log_prob(h1, mean, logvar)

  def sample_prior(self, eps: jax.Array) -> jax.Array:
    """z ~ p(z) from standard-normal draws ``eps`` (..., code_dim): ancestral with two layers."""
    if not self.latent_dim2:
      return eps
    h2 = eps[..., self.latent_dim:]
    mean, logvar = self._gaussian(self.prior1, h2)
    return jnp.concatenate([mean + jnp.exp(0.5 * logvar) * eps[..., :self.latent_dim], h2], -1)

  def code(self, x: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
    """The representative code of x: the mean of q(z|x); with a flow, the flow of the base mean;
    with two stochastic layers, (mean of q(h1|x), mean of q(h2 | that mean))."""
    if self.latent_dim2:
      return self.encode(x, y)[0]
    mean, _, context = self._encode_all(x, y)
    return self.posterior_flow(mean, context)[0] if self.flow else mean

  def decode(self, z: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
    """Bernoulli logits of p(x|z) (or p(x|z, y)); any leading batch axes of z are kept. With two
    stochastic layers p(x | h1), h1 the first latent_dim entries of z."""
    return self.decoder(self._with_label(z[..., :self.latent_dim], y))

  def __call__(self, x: jax.Array, key: jax.Array, y: Optional[jax.Array] = None):
    """(logits of p(x|z), mean, logvar) for one z ~ q(z|x) (with a flow, z_T of the flow; with two
    stochastic layers, (h1, h2) drawn in turn, and every network of p(z) run once)."""
    mean, logvar = self.encode(x, y)
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    if self.closed_form_kl:
      z = mean + jnp.exp(0.5 * logvar) * eps
    else:
      z = self.posterior(x, eps, y)[0]
      if self.latent_dim2:
        self.log_prior(z)   # creates p(h1 | h2)'s parameters at init
    return self.decode(z, y), mean, logvar


class Autoencoder(_EncoderDecoder):
  """Deterministic autoencoder: x -> code -> Bernoulli logits of x."""

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decode(self.encode(x))
