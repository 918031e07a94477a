"""Layers shared by the model families: 4x4 stride-2 (transposed) and 3x3 stride-1 convolutions,
computed as matrix products on CPU and as XLA's native convolutions on GPU and TPU.

XLA:CPU computes the kernel gradient of a convolution ~50x slower inside a while loop than outside
one (measured: 1.6 s vs 34 ms for 3 steps of a 4x4 stride-2 conv, 64 x 14x14x64 -> 7x7x128;
jax-ml/jax#12868), and the training loop runs every step inside a ``lax.fori_loop``; the kernel
gradient of a transposed convolution is slow even outside one (1.16 s vs 96 ms). Patches times a
matrix have only slices and dots in their gradients, which XLA runs at full speed everywhere. The
results equal ``lax.conv_general_dilated`` and ``lax.conv_transpose`` to float rounding, and the
modules have ``nn.Conv``'s and ``nn.ConvTranspose``'s parameters (tests/test_gan.py).

On GPUs and TPUs the matrix-product form materialises a 16-fold (4-fold for the transposed
convolution) patch tensor that the native convolution never builds, and cannot use the cuDNN/TPU
convolution kernels. So every convolution layer takes ``impl`` ('matmul' or 'xla'), and the configs'
``model.conv_impl`` defaults to 'auto': :func:`resolve_conv_impl` picks 'matmul' on CPU and 'xla'
elsewhere. Both give the same function of the same parameters (tests/test_layers.py).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

CONV_IMPLS = ("auto", "matmul", "xla")
_NHWC = ("NHWC", "HWIO", "NHWC")


def resolve_conv_impl(impl: str, backend: str | None = None) -> str:
  """'matmul' or 'xla' for ``impl`` in :data:`CONV_IMPLS`; 'auto' is 'matmul' on the CPU backend
  (``jax.default_backend()`` unless ``backend`` is given) and 'xla' on GPU and TPU."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"unknown model.conv_impl {impl!r}: choose one of {', '.join(CONV_IMPLS)} "
                     "('auto': matrix products on CPU, XLA's convolutions on GPU and TPU).")
  if impl == "auto":
    impl = "matmul" if (backend or jax.default_backend()) == "cpu" else "xla"
  return impl

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


def xla_conv_4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_4x4_stride2` by ``lax.conv_general_dilated``."""
  return jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (2, 2), "SAME",
                                      dimension_numbers=_NHWC)


def xla_conv_transpose_4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_transpose_4x4_stride2` by ``lax.conv_transpose``."""
  return jax.lax.conv_transpose(x, kernel.astype(x.dtype), (2, 2), "SAME", dimension_numbers=_NHWC)


def conv_3x3(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
  """``lax.conv_general_dilated(x, kernel, (1, 1), 'SAME')`` (NHWC, HWIO) for a 3x3 kernel.

  With fewer output than input channels (the couplings' and priors' last layers), nine products of
  the input with one tap each, shifted into place and summed (measured 2.3x faster than patches
  for 64 -> 4 channels, forward and backward, on 64 x 14x14 inputs); otherwise one
  product of the 3x3 patches of the zero-padded input with the flattened kernel. Either way the
  smaller of the two nine-fold tensors is the one materialised. ``precision``: of the products
  (as ``lax.conv_general_dilated``'s)."""
  b, h, w, cin = x.shape
  cout = kernel.shape[-1]
  if cout < cin:
    # out[i, j] = sum_uv x[i + u - 1, j + v - 1] K[u, v]: each tap's product, shifted into place
    out = 0.0
    for u in range(3):
      for v in range(3):
        tap = jnp.matmul(x, kernel[u, v].astype(x.dtype), precision=precision)
        tap = jnp.pad(tap, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = out + tap[:, u:u + h, v:v + w]
    return out
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  patches = jnp.concatenate([xp[:, u:u + h, v:v + w] for u in range(3) for v in range(3)],
                            axis=-1)                                   # (b, h, w, 9 cin)
  return jnp.matmul(patches, kernel.reshape(9 * cin, -1).astype(x.dtype), precision=precision)


def xla_conv_3x3(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
  """:func:`conv_3x3` by ``lax.conv_general_dilated``."""
  return jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (1, 1), "SAME",
                                      dimension_numbers=_NHWC, precision=precision)


class Conv3x3(nn.Module):
  """3x3 stride-1 'SAME' convolution with ``nn.Conv``'s parameters (``kernel`` (3, 3, in, out),
  ``bias``), computed by :func:`conv_3x3` ('matmul') or XLA ('xla'; resolve 'auto' first)."""
  features: int
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  impl: str = "matmul"
  precision: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ops = {"matmul": conv_3x3, "xla": xla_conv_3x3}
    if self.impl not in ops:
      raise ValueError(f"Conv3x3: impl={self.impl!r} is not one of {', '.join(ops)}; resolve "
                       "'auto' with resolve_conv_impl.")
    kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return ops[self.impl](x, kernel, self.precision) + bias


class _Conv4x4Stride2(nn.Module):
  """``kernel`` (4, 4, in, out) and ``bias`` as flax's convolutions name and shape them, applied
  by the subclass's ``ops[impl]`` ('matmul' or 'xla'; resolve 'auto' first)."""
  features: int
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  impl: str = "matmul"
  ops = {}   # impl -> (x, kernel) -> y, set by each subclass

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in type(self).ops:
      raise ValueError(f"{type(self).__name__}: impl={self.impl!r} is not one of "
                       f"{', '.join(type(self).ops)}; resolve 'auto' with resolve_conv_impl.")
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return type(self).ops[self.impl](x, kernel) + bias.astype(x.dtype)


class Conv2x(_Conv4x4Stride2):
  """4x4 stride-2 'SAME' convolution (halves H and W) with ``nn.Conv``'s parameters
  (``kernel`` (4, 4, in, out), ``bias``), computed by :func:`conv_4x4_stride2` or XLA."""
  ops = {"matmul": conv_4x4_stride2, "xla": xla_conv_4x4_stride2}


class ConvTranspose2x(_Conv4x4Stride2):
  """4x4 stride-2 'SAME' transposed convolution (doubles H and W) with ``nn.ConvTranspose``'s
  parameters (``kernel`` (4, 4, in, out), ``bias``), computed by :func:`conv_transpose_4x4_stride2`
  or XLA."""
  ops = {"matmul": conv_transpose_4x4_stride2, "xla": xla_conv_transpose_4x4_stride2}
