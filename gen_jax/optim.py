"""Optimizers from config: thin wrappers over optax."""

from __future__ import annotations

import ml_collections
import optax


def make(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """An optax optimizer from ``cfg.name``, ``cfg.learning_rate`` and the named optimizer's options.

  ``cfg.decay_steps`` > 0 decays the learning rate to 0 along a cosine over that many steps
  (Loshchilov & Hutter 2017); absent or 0 keeps it constant.
  """
  lr = cfg.learning_rate
  if cfg.get("decay_steps", 0):
    lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.decay_steps)
  if cfg.name == "adam":
    tx = optax.adam(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999), eps=cfg.get("eps", 1e-8))
  elif cfg.name == "adamw":
    tx = optax.adamw(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     weight_decay=cfg.get("weight_decay", 1e-4))
  elif cfg.name == "sgd":
    tx = optax.sgd(lr, momentum=cfg.get("momentum", None) or None)
  elif cfg.name == "rmsprop":
    # decay 0.9 with eps inside the square root is optax's default; PyTorch's RMSprop (which the
    # WGAN reference code used) is decay=0.99, eps_in_sqrt=False.
    tx = optax.rmsprop(lr, decay=cfg.get("decay", 0.9), eps=cfg.get("eps", 1e-8),
                       eps_in_sqrt=cfg.get("eps_in_sqrt", True))
  else:
    raise ValueError(f"unknown optimizer {cfg.name!r} (config optimizer.name); "
                     "choose adam, adamw, sgd or rmsprop.")
  clip = cfg.get("grad_clip_norm", 0.0)
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx
