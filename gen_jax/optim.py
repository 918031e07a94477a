"""Optimizers from config: thin wrappers over optax."""

from __future__ import annotations

import ml_collections
import optax


def make(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """An optax optimizer from ``cfg.name``, ``cfg.learning_rate`` and the named optimizer's options.

  ``cfg.decay_steps`` > 0 decays the learning rate to 0 along a cosine over that many steps
  (Loshchilov & Hutter 2017); ``cfg.lr_boundaries`` (steps) with ``cfg.lr_scales`` multiplies it
  by each scale from its boundary on (piecewise constant, e.g. Burda et al.'s 10^(-i/7) after
  3^i epochs); neither keeps it constant. ``cfg.warmup_steps`` > 0 first ramps the rate linearly
  from 0 over that many updates (the cosine's ``decay_steps`` count them; the piecewise boundaries
  and a constant rate start after them). Every field is read directly: the defaults are those of
  ``configs/common.py:optimizer``.
  """
  lr = cfg.learning_rate
  warmup = cfg.warmup_steps
  if warmup < 0 or (cfg.decay_steps and warmup >= cfg.decay_steps):
    raise ValueError(f"optimizer.warmup_steps={warmup}: the linear warm-up needs 0 <= warmup_steps "
                     f"< decay_steps={cfg.decay_steps} (the cosine's length counts it).")
  if len(cfg.lr_boundaries) != len(cfg.lr_scales) or (cfg.lr_boundaries and cfg.decay_steps):
    raise ValueError(f"optimizer.lr_boundaries={tuple(cfg.lr_boundaries)} and lr_scales="
                     f"{tuple(cfg.lr_scales)}: give one scale per boundary, and use either them "
                     "or optimizer.decay_steps, not both.")
  if cfg.decay_steps:
    lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.decay_steps - warmup)
  elif cfg.lr_boundaries:
    lr = optax.piecewise_constant_schedule(
        cfg.learning_rate, dict(zip(map(int, cfg.lr_boundaries), map(float, cfg.lr_scales))))
  if warmup:   # every schedule above starts where the warm-up ends
    lr = optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.learning_rate, warmup),
         lr if callable(lr) else optax.constant_schedule(lr)], [warmup])
  if cfg.name == "adam":
    tx = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    tx = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay)
  elif cfg.name == "sgd":
    tx = optax.sgd(lr, momentum=cfg.momentum or None)
  elif cfg.name == "rmsprop":
    # decay 0.9 with eps inside the square root is optax's default; PyTorch's RMSprop (which the
    # WGAN reference code used) is decay=0.99, eps_in_sqrt=False.
    tx = optax.rmsprop(lr, decay=cfg.decay, eps=cfg.eps, eps_in_sqrt=cfg.eps_in_sqrt)
  else:
    raise ValueError(f"unknown optimizer {cfg.name!r} (config optimizer.name); "
                     "choose adam, adamw, sgd or rmsprop.")
  clip = cfg.grad_clip_norm
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx
