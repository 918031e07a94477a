"""Step functions of every model family, and the registry the training loop uses.

Each family module (``gen_jax.steps.vae``, ``gen_jax.steps.ae``, ...) defines pure, module-level
functions over one :class:`gen_jax.state.TrainState` -- ``init_state``, ``train_step``,
``eval_step`` and its capabilities (``sample``, ``reconstruct``, ``encode``, ...) -- that take
``(state, batch, ...)`` positionally and every static choice keyword-only, so a research script can
bind them with ``functools.partial`` and ``jax.jit`` them. Each module also has
``validate(config)`` and ``from_config(config, image_shape) -> Family``: the same functions with
their statics bound from a config, which is all the training loop and the evaluation need.
:mod:`gen_jax.steps.adversarial` holds what the adversarial families share.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Callable, Optional

FAMILIES = ("vae", "ae", "rbm", "dbn", "classifier", "gan", "vaegan", "bigan", "flow")


@dataclasses.dataclass(frozen=True)
class Family:
  """A family's steps and capabilities, every static argument bound; ``None`` where it has none.

  Required:
    init(key) -> state.
    train_step(state, batch) -> (state, metrics): scalar metrics of the batch. ``metrics["loss"]``
      is required: the family's headline training signal, logged as ``train/loss`` and on the
      progress line (VAE: recon + beta * KL; AE: reconstruction NLL; GAN and BiGAN: the
      discriminator's loss; VAE-GAN: the encoder's loss, the feature-space negative ELBO; RBM:
      the pseudo-NLL, or the reconstruction error for Gaussian units; DBN: that of the layer in
      training; classifier: cross-entropy). It is for watching one run, not for comparing
      families: each family's module docstring says what its other metrics are.
    eval_step(state, batch, key) -> metrics: one value per example (the loop averages them).

  Capabilities:
    sample(state, key, num) -> num images in [0, 1]; a conditional family (``num_classes`` > 0)
      also takes ``labels`` (num,) int, the class of each sample.
    reconstruct(state, batch) -> images in [0, 1] through the family's code.
    encode(state, images) -> (batch, d) features of images in [0, 1]: the family's representation
      (a posterior mean, a code, hidden-unit probabilities), deterministic.
    log_likelihood(state, batch, key, *, k) -> per-example lower bound on log p(x) in nats with k
      importance samples (exact as k -> infinity).
    decode(state, z) -> images in [0, 1] from codes z (batch, d): the inverse of ``encode`` for an
      autoencoder, the generator for a GAN, the down-pass p(v | h) for an RBM.
    prior(state, key, num) -> (num, d) codes drawn from the model's prior, the inputs of ``decode``
      (``state`` for a prior with parameters: a hierarchical VAE's p(h1 | h2), a flow's).
    discriminator_features(state, images) -> (batch, F): a GAN discriminator's last hidden layer,
      the feature extractor of Radford et al. 2016 (:mod:`gen_jax.representation.probe`).
    interpolate(state, z_a, z_b, *, num, method) -> (batch, num, H, W, C) images along the path
      from each code of ``z_a`` to that of ``z_b`` ('lerp' or 'slerp',
      :func:`gen_jax.applications.interpolation.path`); set from ``decode`` for every family that
      has one.
    inpaint(state, batch, mask, key) -> completed images in [0, 1]: the pixels where the boolean
      ``mask`` (batch-shaped, :mod:`gen_jax.applications.masks`) is False filled in by the family's
      own method, named by ``inpaint_method``; the known pixels are returned bit-identical.
    inpaint_method: that method's name and settings, for the cards.
    num_classes: > 0 for a conditional family (ACGAN, the conditional VAE): ``sample`` takes
      ``labels``, and ``train_step``, ``eval_step`` and ``reconstruct`` read ``batch["label"]``.
    final_metrics(state, eval_metrics) -> {name: float}: extra metrics computed once at the end of a
      run from the final state and the last test metrics (the RBM's AIS log Z and test NLL). Runs
      on the host (it jits what it needs); its keys are namespaced ('eval/...').
    final_metrics_read_eval: whether ``final_metrics`` reads the last test metrics (the RBM's and
      DBN's add log Z to the test free energy), so that the loop evaluates at the last step even
      with ``eval.at_end=False``; a GAN's (sample scores) does not.

  State layout, the same for every family (:class:`gen_jax.state.TrainState`):
  ``params[net]`` holds a network's trainable parameters (the Flax ``"params"`` collection for a
  Linen module), ``extra["ema"][net]`` the exponential moving average of those that keep one
  (:mod:`gen_jax.steps.adversarial`), ``extra["batch_stats"][net]`` batch-norm statistics.

  Defaults: a config file holds every value a run uses; ``from_config`` reads its fields directly
  (the config is locked) after the family's ``validate(config)``. Keyword defaults of the step
  functions are only the values that switch an option off (no penalty, no code, one critic step).
  """
  init: Callable
  train_step: Callable
  eval_step: Callable
  sample: Optional[Callable] = None
  reconstruct: Optional[Callable] = None
  encode: Optional[Callable] = None
  log_likelihood: Optional[Callable] = None
  decode: Optional[Callable] = None
  prior: Optional[Callable] = None
  discriminator_features: Optional[Callable] = None
  interpolate: Optional[Callable] = None
  inpaint: Optional[Callable] = None
  inpaint_method: Optional[str] = None
  num_classes: int = 0
  final_metrics: Optional[Callable] = None
  final_metrics_read_eval: bool = False

  def __post_init__(self):
    if (self.inpaint is None) != (self.inpaint_method is None):
      raise ValueError("a family's inpaint needs its inpaint_method (a name for the cards).")
    if self.interpolate is None and self.decode is not None:
      from gen_jax.applications import interpolation  # pylint: disable=import-outside-toplevel
      object.__setattr__(self, "interpolate",
                         functools.partial(interpolation.path, self.decode))


def get(name: str):
  """The step module of a family, by the name used in ``config.model.family``."""
  if name not in FAMILIES:
    raise ValueError(f"unknown model family {name!r} (config.model.family); "
                     f"known families: {', '.join(FAMILIES)}.")
  return importlib.import_module(f"{__name__}.{name}")
