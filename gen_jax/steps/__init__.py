"""Step functions of every model family, and the registry the training loop uses.

Each family module (``gen_jax.steps.vae``, ``gen_jax.steps.ae``, ...) defines pure, module-level
functions over one :class:`gen_jax.state.TrainState` -- ``init_state``, ``train_step``,
``eval_step``, ``sample``, ``reconstruct`` -- that take ``(state, batch, ...)`` positionally and
every static choice keyword-only, so a research script can bind them with ``functools.partial`` and
``jax.jit`` them. Each module also has ``from_config(config, image_shape) -> Family``: the same
functions with their statics bound from a config, which is all the training loop needs.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Optional

FAMILIES = ("vae", "ae", "rbm", "dbn", "classifier", "gan", "vaegan", "bigan")


@dataclasses.dataclass(frozen=True)
class Family:
  """A family's steps with every static argument bound.

  init(key) -> state
  train_step(state, batch) -> (state, metrics): scalar metrics of the batch.
  eval_step(state, batch, key) -> metrics: one value per example (the loop averages them).
  sample(state, key, num) -> images in [0, 1]; None for families that cannot sample.
  reconstruct(state, batch) -> images in [0, 1]; None for families without an encoder.
  log_likelihood(state, batch, key, *, k) -> per-example lower bound on log p(x) in nats with k
    importance samples (exact as k -> infinity); None if none.
  inpaint(state, batch, key) -> (masked images, completed images): fills the bottom half of each
    image given its top half; None for families that cannot.
  final_metrics(state, eval_metrics) -> {name: float}: extra metrics computed once at the end of a
    run from the final state and the last test metrics (the RBM's AIS log Z and test NLL); None
    if none. Runs on the host (it jits what it needs); its keys should be namespaced ('eval/...').
  """
  init: Callable
  train_step: Callable
  eval_step: Callable
  sample: Optional[Callable] = None
  reconstruct: Optional[Callable] = None
  log_likelihood: Optional[Callable] = None
  final_metrics: Optional[Callable] = None
  inpaint: Optional[Callable] = None


def get(name: str):
  """The step module of a family, by the name used in ``config.model.family``."""
  if name not in FAMILIES:
    raise ValueError(f"unknown model family {name!r} (config.model.family); "
                     f"known families: {', '.join(FAMILIES)}.")
  return importlib.import_module(f"{__name__}.{name}")
