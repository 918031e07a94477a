"""Paths between codes, and how smoothly images change along them.

    images = interpolation.path(family.decode, state, z_a, z_b, num=8, method="slerp")

:func:`path` decodes ``num`` points from ``z_a`` to ``z_b`` (endpoints included): ``lerp`` is the
straight line; ``slerp`` the great circle (Shoemake 1985; White 2016), which keeps codes drawn from
a Gaussian prior at a typical norm. The codes are a family's encodings of two images (through the
encoder) or two draws from its prior.

:func:`path_lengths` is the perceptual path length of Karras et al. 2019 (StyleGAN, eq. 2) with the
domain network's features in place of LPIPS, so that families are comparable on one scale:

    PPL = E_t [ ||phi(g(path(t))) - phi(g(path(t + eps)))||^2 / eps^2 ],   t ~ U(0, 1)

per pair of codes; :func:`summarize` drops the values outside the 1st-99th percentiles, as they do.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("lerp", "slerp")


def check(method: str) -> None:
  if method not in METHODS:
    raise ValueError(f"unknown interpolation {method!r}; choose one of {', '.join(METHODS)} "
                     "(config.apps.interpolation).")


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """(1 - t) a + t b; ``t`` broadcasts against the codes' leading axes."""
  t = jnp.asarray(t, a.dtype)[..., None]
  return a + t * (b - a)


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """The great-circle path from ``a`` to ``b`` scaled by the linearly interpolated norm; equal to
  :func:`lerp` when the angle between them is ~0."""
  t = jnp.asarray(t, a.dtype)[..., None]
  na = jnp.linalg.norm(a, axis=-1, keepdims=True)
  nb = jnp.linalg.norm(b, axis=-1, keepdims=True)
  ua, ub = a / jnp.maximum(na, 1e-12), b / jnp.maximum(nb, 1e-12)
  omega = jnp.arccos(jnp.clip(jnp.sum(ua * ub, axis=-1, keepdims=True), -1.0, 1.0))
  so = jnp.sin(omega)
  small = so < 1e-6
  safe = jnp.where(small, 1.0, so)
  direction = jnp.where(small, (1 - t) * ua + t * ub,
                        (jnp.sin((1 - t) * omega) * ua + jnp.sin(t * omega) * ub) / safe)
  return ((1 - t) * na + t * nb) * direction


def between(a: jax.Array, b: jax.Array, t: jax.Array, method: str) -> jax.Array:
  return (slerp if method == "slerp" else lerp)(a, b, t)


def path(decode: Callable, state, z_a: jax.Array, z_b: jax.Array, *, num: int,
         method: str) -> jax.Array:
  """(batch, num, H, W, C) images decode(state, z) at ``num`` evenly spaced points of the path
  from each row of ``z_a`` to the same row of ``z_b``, both endpoints included."""
  t = jnp.linspace(0.0, 1.0, num)
  z = between(z_a[:, None, :], z_b[:, None, :], t[None, :], method)      # (B, num, D)
  images = decode(state, z.reshape(-1, z.shape[-1]))
  return images.reshape(z_a.shape[0], num, *images.shape[1:])


def path_lengths(decode: Callable, features: Callable, state, z_a: jax.Array, z_b: jax.Array,
                 key: jax.Array, *, epsilon: float, method: str) -> jax.Array:
  """Per pair, ||phi(g(z(t))) - phi(g(z(t + eps)))||^2 / eps^2 at one t ~ U(0, 1 - eps) per pair;
  ``features(images) -> (batch, F)`` is the domain network's feature map."""
  t = jax.random.uniform(key, (z_a.shape[0],), maxval=1.0 - epsilon)
  z0 = between(z_a, z_b, t, method)
  z1 = between(z_a, z_b, t + epsilon, method)
  f = features(decode(state, jnp.concatenate([z0, z1])))
  f0, f1 = jnp.split(f, 2)
  return jnp.sum((f1 - f0) ** 2, axis=-1) / epsilon ** 2


def summarize(lengths: np.ndarray) -> tuple[float, float]:
  """(mean, standard error) of the path lengths inside their 1st-99th percentiles."""
  lengths = np.asarray(lengths, np.float64)
  lo, hi = np.percentile(lengths, [1, 99])
  kept = lengths[(lengths >= lo) & (lengths <= hi)]
  return float(kept.mean()), float(kept.std(ddof=1) / np.sqrt(len(kept)))
