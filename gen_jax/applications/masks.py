"""Masks of known pixels for image completion: ``True`` where a pixel is given.

    mask = masks.make("centre", (28, 28, 1), num=64)            # (64, 28, 28, 1) bool
    mask = masks.make("random_80", (28, 28, 1), num=64, key=k)  # 80 % of pixels missing

Every mask is (num, H, W, C) with the same pattern in every channel. The deterministic masks hide
half the image (``bottom``, ``left``) or the central square of half the side (``centre``, a quarter
of the pixels); the random ones hide each pixel independently with the named percentage (drawn per
image from ``key``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

MASKS = ("bottom", "left", "centre", "random_50", "random_80")


def check(name: str) -> None:
  if name not in MASKS:
    raise ValueError(f"unknown completion mask {name!r}; choose one of {', '.join(MASKS)} "
                     "(config.apps.masks, or the mask argument).")


def make(name: str, image_shape: Sequence[int], *, num: int,
         key: Optional[jax.Array] = None) -> jax.Array:
  """(num, H, W, C) bool, True on the known pixels, for mask ``name`` (:data:`MASKS`)."""
  check(name)
  height, width, channels = image_shape
  shape = (num, height, width, channels)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  if name.startswith("random_"):
    if key is None:
      raise ValueError(f"mask {name!r} is random: pass a key.")
    missing = int(name.split("_")[1]) / 100
    known = jax.random.uniform(key, (num, height, width, 1)) >= missing
    return jnp.broadcast_to(known, shape)
  if name == "bottom":
    known = jnp.broadcast_to(rows < height // 2, (height, width))
  elif name == "left":
    known = jnp.broadcast_to(cols >= width // 2, (height, width))
  else:  # centre: the central (H/2) x (W/2) square is missing
    h0, w0 = height // 4, width // 4
    hole = ((rows >= h0) & (rows < h0 + height // 2)) & ((cols >= w0) & (cols < w0 + width // 2))
    known = ~hole
  return jnp.broadcast_to(known[None, :, :, None], shape)


def known_mean_fill(images: jax.Array, mask: jax.Array) -> jax.Array:
  """Each image with its unknown pixels set to the mean of its known ones: the trivial completion
  (the floor of the completion cards) and the starting point of the iterative methods."""
  axes = tuple(range(1, images.ndim))
  count = jnp.maximum(jnp.sum(mask, axis=axes, keepdims=True), 1)
  mean = jnp.sum(jnp.where(mask, images, 0.0), axis=axes, keepdims=True) / count
  return jnp.where(mask, images, mean)


def shown(images: jax.Array, mask: jax.Array, fill: float = 0.5) -> jax.Array:
  """The images as the model sees them, for grids: unknown pixels at ``fill`` (grey)."""
  return jnp.where(mask, images, fill)
