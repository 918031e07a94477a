"""Discriminators of the hybrid families (Flax Linen modules only).

* :class:`FeatureDiscriminator` (VAE-GAN, Larsen et al. 2016): an image discriminator that also
  returns the activations of its last hidden layer, ``Dis_l(x)``, the feature space in which the
  VAE-GAN measures reconstructions.
* :class:`JointDiscriminator` (BiGAN, Donahue et al. 2017; ALI, Dumoulin et al. 2017): a
  discriminator on (x, z) pairs: an x path and a z path whose features are concatenated and passed
  through a joint path to one logit.

Neither discriminator uses batch norm: each example's output depends on that example alone, so
per-example eval metrics mean what they say and a sharded batch needs no cross-device statistics. Leaky ReLU (0.2)
throughout. Dropout (``dropout`` > 0, ALI's regulariser of the joint discriminator) is active only
with ``train=True`` and then needs a ``'dropout'`` PRNG key.

Images are NHWC in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.models.layers import Conv2x

ARCHS = ("mlp", "conv")


def _conv(features: int, name: str) -> Conv2x:
  """A 4x4 stride-2 'SAME' convolution with ``nn.Conv``'s parameters and initialization, as a
  matrix product (:mod:`gen_jax.models.layers`)."""
  return Conv2x(features, name=name)


class _ImagePath(nn.Module):
  """x -> features: an MLP on the flattened image, or 4x4 stride-2 convolutions then flattening.

  With ``arch='conv'`` the hidden widths apply after the convolutions (a dense layer each).
  """
  arch: str
  hidden: Sequence[int]
  channels: Sequence[int] = ()
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.arch not in ARCHS:
      raise ValueError(f"unknown discriminator arch {self.arch!r} (config.model.disc_arch); "
                       f"choose one of {', '.join(ARCHS)}.")
    h = x
    if self.arch == "conv":
      for i, c in enumerate(self.channels):
        h = nn.leaky_relu(_conv(c, f"Conv_{i}")(h), 0.2)
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

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
    del train   # no dropout or normalization: the same function in training and evaluation
    if self.arch not in ARCHS:
      raise ValueError(f"unknown discriminator arch {self.arch!r} (config.model.disc_arch); "
                       f"choose one of {', '.join(ARCHS)}.")
    num = len(self.hidden) + (len(self.channels) if self.arch == "conv" else 0)
    if not -num <= self.feature_layer < num:
      raise ValueError(f"model.feature_layer={self.feature_layer} but the discriminator has {num} "
                       f"hidden layers; choose one of {-num}..{num - 1}.")
    outputs = []
    h = x
    if self.arch == "conv":
      for i, c in enumerate(self.channels):
        h = nn.leaky_relu(_conv(c, f"Conv_{i}")(h), 0.2)
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

  @nn.compact
  def __call__(self, x: jax.Array, z: jax.Array, train: bool = True) -> jax.Array:
    if x.shape[0] != z.shape[0]:
      raise ValueError(f"JointDiscriminator: {x.shape[0]} images but {z.shape[0]} codes; give "
                       "one code per image.")
    hx = _ImagePath(self.arch, tuple(self.x_hidden), tuple(self.channels), self.dropout,
                    name="x_path")(x, train)
    hz = _ImagePath("mlp", tuple(self.z_hidden), (), self.dropout, name="z_path")(z, train)
    h = jnp.concatenate([hx, hz], axis=-1)
    for width in self.joint_hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(1)(h)[:, 0]
