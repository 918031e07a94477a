"""Normalizing flows of the VAE's posterior: inverse autoregressive flow (Kingma et al. 2016).

One :class:`IAFStep` maps z to ``sigma * z + (1 - sigma) * m``, where ``m`` and ``s`` (sigma =
sigmoid(s)) come from a MADE network (Germain et al. 2015) of z and the encoder's context h:
output i sees only z_1..z_{i-1}, so the Jacobian is triangular and
``log |det dz'/dz| = sum_i log sigma_i``. :class:`IAF` chains steps and reverses the order of the
dimensions between them. Every step's output has the input's leading axes (the k samples of the
IWAE bound ride along), and ``inverse`` undoes a step one dimension at a time (D passes; for the
tests' density checks, not for training).

distrax 0.1.9 has no autoregressive bijector (its coupling layers are not autoregressive) and pulls a
nightly TensorFlow Probability build in, so these few masked layers are written here.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def made_masks(dim: int, hidden: Sequence[int]) -> list[np.ndarray]:
  """The (in, out) 0/1 masks of a MADE with ``dim`` inputs and outputs and the ``hidden`` widths.

  Input i has degree i (1..dim); hidden unit j of every layer degree 1 + j mod (dim - 1); a unit
  connects to a layer above where its degree is <= the upper unit's, and to output i only where
  it is < i, so output i depends on inputs 1..i-1 alone (output 1 on none)."""
  degrees = [np.arange(1, dim + 1)]
  for width in hidden:
    degrees.append(1 + np.arange(width) % max(dim - 1, 1))
  masks = [(lo[:, None] <= hi[None, :]).astype(np.float32)
           for lo, hi in zip(degrees[:-1], degrees[1:])]
  masks.append((degrees[-1][:, None] < np.arange(1, dim + 1)[None, :]).astype(np.float32))
  return masks


class MaskedDense(nn.Module):
  """``nn.Dense`` whose kernel is multiplied by a fixed 0/1 ``mask`` of shape (in, out)."""
  mask: np.ndarray
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, self.mask.shape)
    bias = self.param("bias", nn.initializers.zeros, (self.mask.shape[1],))
    return x @ (kernel * jnp.asarray(self.mask, kernel.dtype)) + bias


class IAFStep(nn.Module):
  """z' = sigma(s) * z + (1 - sigma(s)) * m, [m, s] = MADE(z, context) (Kingma et al. 2016, eq. 14).

  ``forget_bias`` starts sigma near 1 (sigmoid(1) = 0.73 here; the paper's "+1 or +2"), so a fresh
  flow is close to the identity."""
  hidden: Sequence[int]
  forget_bias: float = 1.0

  @nn.compact
  def shift_and_logit(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    masks = made_masks(z.shape[-1], self.hidden)
    h = MaskedDense(masks[0])(z) + nn.Dense(self.hidden[0], use_bias=False, name="context")(context)
    h = nn.elu(h)
    for mask in masks[1:-1]:
      h = nn.elu(MaskedDense(mask)(h))
    small = nn.initializers.variance_scaling(0.01, "fan_in", "truncated_normal")
    m = MaskedDense(masks[-1], kernel_init=small, name="shift")(h)
    s = MaskedDense(masks[-1], kernel_init=small, name="logit")(h) + self.forget_bias
    return m, s

  def __call__(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(z', log |det dz'/dz|), the log-determinant with z's leading axes."""
    m, s = self.shift_and_logit(z, context)
    sigma = jax.nn.sigmoid(s)
    return sigma * z + (1.0 - sigma) * m, jax.nn.log_sigmoid(s).sum(-1)

  def inverse(self, z_out: jax.Array, context: jax.Array) -> jax.Array:
    """z with ``self(z, context)[0] == z_out``: pass i solves dimension i from the exact ones
    before it."""
    dims = jnp.arange(z_out.shape[-1])
    z = jnp.zeros_like(z_out)
    for i in range(z_out.shape[-1]):
      m, s = self.shift_and_logit(z, context)
      sigma = jax.nn.sigmoid(s)
      # Dimensions past i are not known yet: zeros, not a guess that could overflow and turn
      # the masked products (0 * inf) into NaN.
      z = jnp.where(dims <= i, (z_out - (1.0 - sigma) * m) / sigma, 0.0)
    return z


class IAF(nn.Module):
  """``num_steps`` :class:`IAFStep` s, the dimensions reversed between consecutive steps."""
  num_steps: int
  hidden: Sequence[int]

  def setup(self):
    self.steps = [IAFStep(tuple(self.hidden), name=f"step_{i}") for i in range(self.num_steps)]

  def __call__(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(z_T, sum over steps of log |det|): log q(z_T | x) = log q(z_0 | x) - that sum."""
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for i, step in enumerate(self.steps):
      if i:
        z = z[..., ::-1]
      z, ld = step(z, context)
      log_det = log_det + ld
    return z, log_det

  def inverse(self, z: jax.Array, context: jax.Array) -> jax.Array:
    for i, step in reversed(list(enumerate(self.steps))):
      z = step.inverse(z, context)
      if i:
        z = z[..., ::-1]
    return z
