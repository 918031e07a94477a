"""Glow (Kingma & Dhariwal 2018): a multi-scale normalizing flow of images, exact both ways.

Each of ``levels`` levels squeezes the image (H, W, C) -> (H/2, W/2, 4C) and runs ``steps`` flow
steps, each

* :class:`ActNorm`: a per-channel affine map, initialised to the identity by ``init`` (which sees no
  data); ``Glow.apply(..., data_init=True, mutable=['params'])`` then sets every actnorm, in
  order, so that its output has zero mean and unit variance per channel on the given batch --
  Glow's data-dependent initialisation, which :mod:`gen_jax.steps.flow` runs on the first
  training batch (without it the actnorms need hundreds of Adam steps to reach the data's
  scale);
* :class:`InvConv1x1`: an invertible 1x1 convolution, a plain C x C matrix (not LU-decomposed:
  C <= 16 on MNIST, where ``slogdet`` and ``inv`` cost nothing beside the convolutions),
  initialised to a random rotation;
* :class:`AffineCoupling`: the second half of the channels shifted and scaled by a small
  convolutional network of the first half, y_b = (x_b + t) * s with s = sigmoid(h + 2) /
  sigmoid(2) (Glow's sigmoid(h + 2), divided by its value at h = 0 so that the network's
  zero-initialised last layer makes a fresh coupling exactly the identity).

After every level but the last, half the channels are factored out (RealNVP's multi-scale
architecture) with a learned conditional Gaussian prior N(mean(x_kept), exp(logs(x_kept))^2) whose
network is zero-initialised (Glow's split2d); the last level's output has a learned unconditional
Gaussian prior (zero-initialised mean and log-scale per dimension). Every learned log-scale
(actnorms, the zero-initialised output convolutions, the top prior) is 3 x its parameter, Glow's
``logscale_factor``. :class:`Glow` maps an image to
the standardised codes eps = (z - mean) / exp(logs) of all levels, flattened in a fixed order, so
that the prior of the codes is N(0, I) and log p(x) = log N(eps; 0, I) + log |det d eps / dx|.

The 3x3 convolutions are patch-matrix products (:func:`gen_jax.models.layers.conv_3x3`) on CPU,
for the reason given in :mod:`gen_jax.models.layers` (slow convolution kernel gradients inside
XLA:CPU while loops), and XLA's own on GPU and TPU (``Glow.conv_impl``).

:func:`logit_transform` and :func:`logit_inverse` are RealNVP's pre-processing of pixels in [0, 1]
(Dinh et al. 2017, alpha = 0.05), with its log-Jacobian.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from gen_jax.models import layers

# ---------------------------------------------------------------------------------------------
# Pure pieces.


def squeeze(x: jax.Array) -> jax.Array:
  """(B, H, W, C) -> (B, H/2, W/2, 4C): each 2x2 block of pixels into the channels."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
  """The inverse of :func:`squeeze`: (B, H, W, 4C) -> (B, 2H, 2W, C)."""
  b, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c)


def _sum_per_example(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).sum(-1)


def logit_transform(y: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """(s, log |det ds/dy| per example) for s = logit(alpha + (1 - 2 alpha) y), y in [0, 1]."""
  p = alpha + (1.0 - 2.0 * alpha) * y
  s = jnp.log(p) - jnp.log1p(-p)
  log_det = _sum_per_example(jnp.log1p(-2.0 * alpha) - jnp.log(p) - jnp.log1p(-p))
  return s, log_det


def logit_inverse(s: jax.Array, alpha: float) -> jax.Array:
  """y = (sigmoid(s) - alpha) / (1 - 2 alpha): the inverse of :func:`logit_transform`."""
  return (jax.nn.sigmoid(s) - alpha) / (1.0 - 2.0 * alpha)


# ---------------------------------------------------------------------------------------------
# Layers: each __call__(x) -> (y, log |det dy/dx| per example); inverse(y) -> x.


# Glow's logscale_factor: every learned log-scale is 3 x its parameter, so Adam moves it 3x faster.
# The log-scales a sharp density needs (~ -4 for MNIST's near-constant background) then take
# ~1/3 of the steps to reach at a learning rate that keeps the rest of the flow stable.
LOGSCALE_FACTOR = 3.0


class ZeroConv3x3(nn.Module):
  """Glow's zero-initialised output convolution: (conv(x) + bias) * exp(3 logs), kernel, bias
  and the per-channel ``logs`` all zero at init (the output is zero); 3x3, or 1x1 with
  ``kernel_size=1``."""
  features: int
  kernel_size: int = 3
  conv_impl: str = "auto"   # gen_jax.models.layers.resolve_conv_impl

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.kernel_size == 3:
      h = layers.Conv3x3(self.features, kernel_init=nn.initializers.zeros,
                         impl=layers.resolve_conv_impl(self.conv_impl), name="conv")(x)
    else:
      h = nn.Dense(self.features, kernel_init=nn.initializers.zeros, name="conv")(x)
    logs = self.param("logs", nn.initializers.zeros, (self.features,))
    return h * jnp.exp(LOGSCALE_FACTOR * logs)


class ActNorm(nn.Module):
  """y = (x + bias) * exp(3 logs), per channel; initialised to the identity. With ``data_init``
  (and the params collection mutable) it first sets bias and logs from ``x``'s per-channel mean
  and standard deviation, so that y is standardised."""
  channels: int

  def setup(self):
    self.bias = self.param("bias", nn.initializers.zeros, (self.channels,))
    self.logs = self.param("logs", nn.initializers.zeros, (self.channels,))

  def __call__(self, x: jax.Array, data_init: bool = False) -> tuple[jax.Array, jax.Array]:
    bias, logs = self.bias, LOGSCALE_FACTOR * self.logs
    if data_init:
      axes = tuple(range(x.ndim - 1))
      bias = -x.mean(axes)
      logs = -jnp.log(x.std(axes) + 1e-6)
      self.put_variable("params", "bias", bias)
      self.put_variable("params", "logs", logs / LOGSCALE_FACTOR)
    log_det = x.shape[1] * x.shape[2] * jnp.sum(logs)
    return (x + bias) * jnp.exp(logs), jnp.full((x.shape[0],), log_det, x.dtype)

  def inverse(self, y: jax.Array) -> jax.Array:
    return y * jnp.exp(-LOGSCALE_FACTOR * self.logs) - self.bias


class InvConv1x1(nn.Module):
  """y = x W over the channels of every pixel, W a plain C x C matrix (random rotation at init)."""
  channels: int

  def setup(self):
    self.kernel = self.param("kernel", nn.initializers.orthogonal(), (self.channels, self.channels))

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    log_det = x.shape[1] * x.shape[2] * jnp.linalg.slogdet(self.kernel)[1]
    return x @ self.kernel, jnp.full((x.shape[0],), log_det, x.dtype)

  def inverse(self, y: jax.Array) -> jax.Array:
    return y @ jnp.linalg.inv(self.kernel)


SCALE_OFFSET = 2.0   # Glow's sigmoid(h + 2)

# The inverse of codes far outside the data's range (prior draws at temperature 1 early in
# training) can overflow: a coupling that contracts a dimension by e^-20 expands it by e^20 on the
# way back, the next network sees an input it never saw, and inf - inf makes NaN pixels (61 % of
# the T = 1 samples of the MNIST run after one epoch). The inverse therefore caps every expansion
# at e^MAX_INVERSE_LOG_SCALE and clips every level's values to +-INVERSE_BOUND: bounds no image's
# own code reaches (the data's logits lie in [-2.95, 2.95]), so decode(encode(x)) stays exact,
# while a runaway sample saturates to black or white pixels instead of NaN.
MAX_INVERSE_LOG_SCALE = 30.0
INVERSE_BOUND = 1e6


def _guard(x: jax.Array) -> jax.Array:
  return jnp.clip(x, -INVERSE_BOUND, INVERSE_BOUND)


class AffineCoupling(nn.Module):
  """x = (x_a, x_b) over the channels; y = (x_a, (x_b + t) * s) with (t, h) = NN(x_a) and
  s = sigmoid(h + 2) / sigmoid(2). NN: 3x3 conv, ReLU, 1x1 conv, ReLU, :class:`ZeroConv3x3`."""
  channels: int
  hidden: int
  out_kernel: int = 3   # 1: a 1x1 last layer (~2.5x faster steps on CPU, see the Glow class)
  conv_impl: str = "auto"

  def setup(self):
    self.conv_in = layers.Conv3x3(self.hidden, impl=layers.resolve_conv_impl(self.conv_impl))
    self.conv_mid = nn.Dense(self.hidden)   # a 1x1 convolution
    out = self.channels - self.channels // 2
    self.conv_out = ZeroConv3x3(2 * out, kernel_size=self.out_kernel, conv_impl=self.conv_impl)

  def _shift_log_scale(self, xa: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = nn.relu(self.conv_mid(nn.relu(self.conv_in(xa))))
    h = self.conv_out(h)
    shift, raw = h[..., 0::2], h[..., 1::2]
    log_scale = jax.nn.log_sigmoid(raw + SCALE_OFFSET) - jax.nn.log_sigmoid(SCALE_OFFSET)
    return shift, log_scale

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    xa, xb = jnp.split(x, [self.channels // 2], axis=-1)
    shift, log_scale = self._shift_log_scale(xa)
    yb = (xb + shift) * jnp.exp(log_scale)
    return jnp.concatenate([xa, yb], axis=-1), _sum_per_example(log_scale)

  def inverse(self, y: jax.Array) -> jax.Array:
    ya, yb = jnp.split(y, [self.channels // 2], axis=-1)
    shift, log_scale = self._shift_log_scale(ya)
    xb = yb * jnp.exp(jnp.minimum(-log_scale, MAX_INVERSE_LOG_SCALE)) - shift
    return jnp.concatenate([ya, _guard(xb)], axis=-1)


class FlowStep(nn.Module):
  """ActNorm, then the invertible 1x1 convolution, then the affine coupling."""
  channels: int
  hidden: int
  out_kernel: int = 3
  conv_impl: str = "auto"

  def setup(self):
    self.layers = (ActNorm(self.channels), InvConv1x1(self.channels),
                   AffineCoupling(self.channels, self.hidden, self.out_kernel, self.conv_impl))

  def __call__(self, x: jax.Array, data_init: bool = False) -> tuple[jax.Array, jax.Array]:
    actnorm, *others = self.layers
    x, total = actnorm(x, data_init)
    for layer in others:
      x, log_det = layer(x)
      total = total + log_det
    return x, total

  def inverse(self, y: jax.Array) -> jax.Array:
    for layer in reversed(self.layers):
      y = _guard(layer.inverse(y))
    return y


class SplitPrior(nn.Module):
  """The conditional Gaussian of the factored-out half given the kept half: (mean, log-scale)
  from a :class:`ZeroConv3x3` of the kept half (a standard normal at init)."""
  channels: int   # of the factored-out half
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, kept: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = ZeroConv3x3(2 * self.channels, conv_impl=self.conv_impl)(kept)
    return h[..., 0::2], h[..., 1::2]


# ---------------------------------------------------------------------------------------------
# The flow.


def level_shapes(image_shape: Sequence[int], levels: int) -> list[tuple[int, int, int]]:
  """The (H, W, C) each level's steps run at (after its squeeze)."""
  h, w, c = image_shape
  out = []
  for level in range(levels):
    h, w, c = h // 2, w // 2, 4 * c
    out.append((h, w, c))
    if level < levels - 1:
      c = c - c // 2
  return out


def code_shapes(image_shape: Sequence[int], levels: int) -> list[tuple[int, int, int]]:
  """The shapes of the codes, in the order :class:`Glow` flattens them: the half factored out
  after each level but the last, then the last level's output."""
  shapes = level_shapes(image_shape, levels)
  out = [(h, w, c // 2) for h, w, c in shapes[:-1]]
  return out + [shapes[-1]]


class Glow(nn.Module):
  """The multi-scale flow of logit-space images (see the module docstring).

  ``__call__(s)`` -> (eps (B, D), log |det d eps / ds| (B,)), so log p(s) = log N(eps; 0, I) +
  that log-determinant (the priors' log-scales included); ``inverse(eps)`` -> s exactly.
  ``__call__(s, data_init=True)`` with ``mutable=['params']`` initialises the actnorms from s.

  ``out_kernel``: the couplings' last layer, 3x3 (Glow) or 1x1. On XLA:CPU the 3x3 layer into the
  few output channels is most of a step's time (64 -> 4 channels at 14x14: ~3x the 1x1 middle
  layer, forward and backward), so the 1x1 buys ~2.5x the steps in a fixed time; the first layer
  keeps its 3x3 receptive field.

  ``conv_impl``: the 3x3 convolutions as patch-matrix products ('matmul') or XLA's ('xla');
  'auto', the default, takes the first on CPU and the second on GPU and TPU
  (:mod:`gen_jax.models.layers`).
  """
  image_shape: tuple[int, int, int]
  levels: int = 2
  steps: int = 8
  hidden: int = 64
  out_kernel: int = 3
  conv_impl: str = "auto"

  def setup(self):
    shapes = level_shapes(self.image_shape, self.levels)
    self.flows = [[FlowStep(c, self.hidden, self.out_kernel, self.conv_impl,
                            name=f"level{i}_step{k}")
                   for k in range(self.steps)]
                  for i, (_, _, c) in enumerate(shapes)]
    self.split_priors = [SplitPrior(c // 2, self.conv_impl, name=f"level{i}_prior")
                         for i, (_, _, c) in enumerate(shapes[:-1])]
    top = shapes[-1]
    self.top_mean = self.param("top_mean", nn.initializers.zeros, top)
    self.top_logs = self.param("top_logs", nn.initializers.zeros, top)

  def __call__(self, s: jax.Array, data_init: bool = False) -> tuple[jax.Array, jax.Array]:
    x = s
    log_det = jnp.zeros((s.shape[0],), s.dtype)
    codes = []
    for i, steps in enumerate(self.flows):
      x = squeeze(x)
      for step in steps:
        x, ld = step(x, data_init)
        log_det = log_det + ld
      if i < self.levels - 1:
        c = x.shape[-1]
        x, z = x[..., :c - c // 2], x[..., c - c // 2:]
        mean, logs = self.split_priors[i](x)
        codes.append((z - mean) * jnp.exp(-logs))
        log_det = log_det - _sum_per_example(logs)
    top_logs = LOGSCALE_FACTOR * self.top_logs
    codes.append((x - self.top_mean) * jnp.exp(-top_logs))
    log_det = log_det - jnp.sum(top_logs)
    return jnp.concatenate([e.reshape(e.shape[0], -1) for e in codes], axis=-1), log_det

  def inverse(self, eps: jax.Array) -> jax.Array:
    shapes = code_shapes(self.image_shape, self.levels)
    sizes = [h * w * c for h, w, c in shapes]
    bounds = [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]
    codes = [e.reshape(e.shape[0], *shape)
             for e, shape in zip(jnp.split(eps, bounds, axis=-1), shapes)]
    x = self.top_mean + jnp.exp(LOGSCALE_FACTOR * self.top_logs) * codes[-1]
    for i in reversed(range(self.levels)):
      if i < self.levels - 1:
        mean, logs = self.split_priors[i](x)
        z = mean + jnp.exp(jnp.minimum(logs, MAX_INVERSE_LOG_SCALE)) * codes[i]
        x = jnp.concatenate([x, _guard(z)], axis=-1)
      for step in reversed(self.flows[i]):
        x = step.inverse(x)
      x = unsqueeze(x)
    return x
