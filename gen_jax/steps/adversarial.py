"""What the adversarial families share: GAN (:mod:`gen_jax.steps.gan`), VAE-GAN
(:mod:`gen_jax.steps.vaegan`) and BiGAN/ALI (:mod:`gen_jax.steps.bigan`).

* the exponential moving average of the networks that sample or encode, in one layout for every
  family: ``state.extra["ema"][net]``, updated after each step with a warm-up
  (:func:`ema_decay_at`); :func:`inference_params` is what sampling, encoding and evaluation read;
* the discriminator's outputs as they are logged (:func:`outputs`) and the loss-name check;
* the optimizers: ``config.optimizer`` for the networks that make images (and the encoder),
  ``config.disc_optimizer`` for the discriminator;
* the domain classifier that scores samples during training, and the Inception Score and mode
  coverage of a run's final samples (:func:`sample_scores`).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gen_jax import optim
from gen_jax.losses import gan as gan_losses
from gen_jax.state import TrainState

DISC = "disc"


# ---------------------------------------------------------------------------------------------
# Exponential moving averages.


def ema_decay_at(step: jax.Array, ema_decay: float) -> jax.Array:
  """min(ema_decay, (1 + step) / (10 + step)): the EMA's decay after ``step`` updates.

  The warm-up (as tf.train.ExponentialMovingAverage's ``num_updates``) keeps the average from
  dwelling on the random initial weights: 0.1 at the first update, 0.5 at step 8, 0.9 at step 80.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))


def ema_update(ema, params, decay: jax.Array):
  """decay * ema + (1 - decay) * params, leaf by leaf."""
  return optax.incremental_update(params, ema, 1.0 - decay)


def init_ema(params: dict, names: Sequence[str], enabled: bool) -> dict:
  """``{"ema": {name: a copy of params[name]}}`` for ``extra``, or {} when not ``enabled``."""
  return {"ema": jax.tree.map(jnp.array, {n: params[n] for n in names})} if enabled else {}


def update_ema(state: TrainState, decay: jax.Array) -> TrainState:
  """Every average of ``state.extra["ema"]`` moved towards its network's current parameters."""
  if "ema" not in state.extra:
    return state
  ema = {n: ema_update(avg, state.params[n], decay) for n, avg in state.extra["ema"].items()}
  return state.replace(extra={**state.extra, "ema": ema})


def inference_params(state: TrainState) -> dict:
  """The parameters sampling, encoding and evaluation use: each network's EMA if the state keeps
  one, else its current weights (the discriminator's are always current)."""
  return {**state.params, **state.extra.get("ema", {})}


# ---------------------------------------------------------------------------------------------
# Networks with batch norm: statistics in ``state.extra["batch_stats"][net]``.


def batch_stats(state: TrainState, name: str):
  """The batch-norm statistics of network ``name`` (``extra["batch_stats"][name]``), or None."""
  return state.extra.get("batch_stats", {}).get(name)


def apply(module: nn.Module, params, stats, x: jax.Array, *, train: bool = True):
  """(output, updated batch stats or None): batch statistics of ``x`` when ``train``."""
  if stats is None:
    return module.apply({"params": params}, x, train=train), None
  variables = {"params": params, "batch_stats": stats}
  if not train:
    return module.apply(variables, x, train=False), stats
  out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
  return out, updates["batch_stats"]


def apply_q(module: nn.Module, params, stats, x: jax.Array, with_q: bool = True):
  """(output, Q's logits, updated batch stats or None) of a discriminator with an InfoGAN head,
  in training mode; without ``with_q``, :func:`apply` with None for the logits."""
  if not with_q:
    out, stats = apply(module, params, stats, x)
    return out, None, stats
  variables, mutable = {"params": params}, ["intermediates"]
  if stats is not None:
    variables, mutable = variables | {"batch_stats": stats}, mutable + ["batch_stats"]
  out, updates = module.apply(variables, x, train=True, mutable=mutable)
  return out, updates["intermediates"]["q_logits"][0], updates.get("batch_stats")


def with_batch_stats(state: TrainState, name: str, stats) -> TrainState:
  """``state`` with network ``name``'s batch-norm statistics replaced (unchanged for None)."""
  if stats is None:
    return state
  all_stats = dict(state.extra["batch_stats"])
  all_stats[name] = stats
  return state.replace(extra={**state.extra, "batch_stats": all_stats})


# ---------------------------------------------------------------------------------------------
# Losses and outputs.


LOGIT_AND_HINGE = ("minimax", "non_saturating", "hinge")


def check_loss(loss: str, family: str, allowed: Optional[Sequence[str]] = None) -> None:
  """A clear error for a loss that is unknown (``allowed`` None: any of gen_jax.losses.gan) or
  that the family does not support."""
  if allowed is None:
    gan_losses.check(loss)
  elif loss not in allowed:
    raise ValueError(f"model.loss={loss!r} is not supported by the {family} family; choose one "
                     f"of {', '.join(allowed)} (the Wasserstein losses need a Lipschitz critic, "
                     "which this family does not enforce).")


def outputs(loss: str, raw: jax.Array) -> jax.Array:
  """D's outputs as logged: probabilities for the logit losses, raw critic values otherwise."""
  return raw if loss in gan_losses.CRITIC_LOSSES else jax.nn.sigmoid(raw)


def pixel_std(images: jax.Array) -> jax.Array:
  """Per-pixel standard deviation across a batch of images in [0, 1], averaged over pixels: it
  falls towards 0 when a generator collapses to a few images."""
  return jnp.std(images, axis=0).mean()


# ---------------------------------------------------------------------------------------------
# Data for the discriminator.


def to_model_range(x: jax.Array, output: str) -> jax.Array:
  """Images in [0, 1] -> the generator's output range."""
  return 2.0 * x - 1.0 if output == "tanh" else x


def to_unit_range(x: jax.Array, output: str) -> jax.Array:
  """The generator's output range -> images in [0, 1]."""
  return jnp.clip((x + 1.0) / 2.0 if output == "tanh" else x, 0.0, 1.0)


def critic_minibatches(x: jax.Array, n_critic: int) -> jax.Array:
  """(B, ...) -> (B / n_critic, n_critic, ...): minibatch i is ``out[:, i]``, examples i, i + n,
  i + 2n, ... A device holding a contiguous block of rows keeps its share of every minibatch."""
  if x.shape[0] % n_critic:
    raise ValueError(f"batch_size={x.shape[0]} is not a multiple of model.n_critic={n_critic}: "
                     f"each of the n_critic discriminator steps takes batch_size / n_critic real "
                     f"images; set --config.batch_size={x.shape[0] // n_critic * n_critic or n_critic}.")
  return x.reshape(x.shape[0] // n_critic, n_critic, *x.shape[1:])


def check_per_example(disc: nn.Module, what: str) -> None:
  """A clear error for a penalty on a critic whose outputs mix examples (batch norm)."""
  if getattr(disc, "norm", "none") == "batch":
    raise ValueError(f"{what} needs a critic that treats examples independently; "
                     "set model.disc_norm='layer', 'spectral' or 'none' (not 'batch').")


# ---------------------------------------------------------------------------------------------
# From a config.


def optimizers(config: ml_collections.ConfigDict, family: str, makers: Sequence[str], *,
               trains: str) -> dict[str, optax.GradientTransformation]:
  """``{net: config.optimizer for each of makers, "disc": config.disc_optimizer}``; ``trains``
  names the makers in the error for a config without a discriminator optimizer."""
  if "disc_optimizer" not in config:
    raise ValueError(f"a {family} config needs config.disc_optimizer (the discriminator's "
                     f"optimizer, same fields as config.optimizer, which trains {trains}).")
  return {**{n: optim.make(config.optimizer) for n in makers},
          DISC: optim.make(config.disc_optimizer)}


def load_classifier(config: ml_collections.ConfigDict, image_shape: Sequence[int]):
  """The domain network ``config.eval.classifier`` that scores samples during training, or None
  for ''."""
  if not config.eval.classifier:
    return None
  from gen_jax.metrics import networks  # pylint: disable=g-import-not-at-top
  classifier = networks.load(config.eval.classifier)
  if tuple(classifier.image_shape) != tuple(image_shape):
    raise ValueError(f"eval.classifier={config.eval.classifier!r} takes {classifier.image_shape} "
                     f"images but the data are {tuple(image_shape)}; set --config.eval.classifier "
                     "to a network of this dataset, or '' for none.")
  return classifier


def sample_scores(sample: Callable, state: TrainState, *, classifier, num_samples: int,
                  batch_size: int, num_splits: int, seed: int, cat_dim: int = 0
                  ) -> dict[str, float]:
  """Classifier Inception Score (mean and std over ``num_splits`` splits, Salimans et al.) and mode
  coverage of ``num_samples`` samples of ``sample(state, key, num, codes)``; with ``cat_dim`` > 0,
  also the code purity (gen_jax.metrics.classifier) of ``batch_size`` samples of each code value:
  whether an unsupervised categorical code has learnt the classes."""
  from gen_jax.metrics import classifier as cls_metrics  # pylint: disable=g-import-not-at-top
  # p(y|x) of batch_size samples; codes None: random codes (if any).
  fn = jax.jit(lambda st, k, codes: classifier.apply(sample(st, k, batch_size, codes=codes))[1])
  key = jax.random.PRNGKey(seed)
  probs = np.concatenate([np.asarray(jax.device_get(fn(state, jax.random.fold_in(key, i), None)))
                          for i in range(-(-num_samples // batch_size))])[:num_samples]
  is_mean, is_std = cls_metrics.inception_score(probs, num_splits=num_splits)
  coverage = cls_metrics.mode_coverage(cls_metrics.label_histogram(probs))
  out = {"eval/inception_score": is_mean, "eval/inception_score_std": is_std,
         "eval/modes_covered": coverage["modes_covered"],
         "eval/label_kl_to_uniform": coverage["kl_to_uniform"], "eval/is_num_samples": num_samples}
  logging.info("%s on %d samples: Inception Score %.3f +- %.3f, %d classes present, KL(labels || "
               "uniform) %.4f", classifier.name, num_samples, is_mean, is_std,
               coverage["modes_covered"], coverage["kl_to_uniform"])
  if cat_dim:
    code_key = jax.random.fold_in(key, 0x7FFFFFFF)   # past the IS batches' fold_in indices
    purity = cls_metrics.code_purity(np.stack([
        np.asarray(jax.device_get(fn(state, jax.random.fold_in(code_key, c),
                                     jnp.full((batch_size,), c))))
        for c in range(cat_dim)]))
    out |= {f"eval/{k}": v for k, v in purity.items()}
    logging.info("code purity %.3f over %d codes, %d distinct majority classes",
                 purity["code_purity"], cat_dim, purity["code_classes"])
  return out


def final_sample_scores(state: TrainState, eval_metrics: dict[str, float], *, sample: Callable,
                        classifier, num_samples: int, seed: int, cat_dim: int = 0,
                        batch_size: int = 1000, num_splits: int = 10) -> dict[str, float]:
  """:func:`sample_scores` as a ``Family.final_metrics`` (the last test metrics are not used)."""
  del eval_metrics
  return sample_scores(sample, state, classifier=classifier, num_samples=num_samples,
                       batch_size=batch_size, num_splits=num_splits, seed=seed, cat_dim=cat_dim)


def classifier_scores(probs: jax.Array) -> dict[str, jax.Array]:
  """Per-example scores of a batch of generated images from a classifier's p(y|x), (N, C).

  ``cls_log_is``: KL(p(y|x_i) || p(y)) with p(y) the batch's mean prediction; its mean over a batch
  is the log Inception Score of that batch. ``cls_modes``: the number of classes predicted at least
  once in the batch (the same for every example of it). ``cls_max_prob``: the classifier's
  confidence. Falling log IS or modes flag a collapsing generator at every evaluation.
  """
  marginal = probs.mean(axis=0)
  log_is = jnp.sum(jax.scipy.special.xlogy(probs, probs) - jax.scipy.special.xlogy(probs, marginal),
                   axis=-1)
  counts = jax.nn.one_hot(jnp.argmax(probs, axis=-1), probs.shape[-1]).sum(axis=0)
  modes = jnp.sum(counts > 0).astype(jnp.float32)
  return {"cls_log_is": log_is, "cls_modes": jnp.full(probs.shape[:1], modes),
          "cls_max_prob": probs.max(axis=-1)}


def needed(value, name: str, when: str):
  """``value``, or a clear error when an option's companion (a weight, a decay) was not given:
  the step functions take no tuned number by default; the configs hold them."""
  if value is None:
    raise ValueError(f"{name} is needed {when}; pass it (the config files hold its value).")
  return value


# ---------------------------------------------------------------------------------------------
# Completion by latent optimisation (gen_jax.applications.completion), from a config.


def latent_completion(config: ml_collections.ConfigDict, start: str,
                      restarts: bool = False) -> dict:
  """``config.apps``'s latent-optimisation settings as keyword arguments of the families'
  ``inpaint``, and ``inpaint_method``: the name of the method for the cards (``start``: where z
  starts, 'a prior draw' or 'the encoder'; ``restarts``: several prior draws per image,
  ``apps.restarts``)."""
  a = config.apps
  if restarts and a.restarts < 1:
    raise ValueError(f"apps.restarts={a.restarts}: latent optimisation needs at least 1 start.")
  if a.num_steps < 0 or a.learning_rate <= 0 or a.prior_weight < 0 or a.z_weight < 0:
    raise ValueError(f"apps: latent optimisation needs num_steps >= 0 (got {a.num_steps}), "
                     f"learning_rate > 0 ({a.learning_rate}), prior_weight >= 0 ({a.prior_weight}) "
                     f"and z_weight >= 0 ({a.z_weight}).")
  terms = "context L1" + (f" + {a.prior_weight:g} x D's loss" if a.prior_weight else "") + (
      f" + {a.z_weight:g} x |z|^2/2" if a.z_weight else "")
  kwargs = dict(num_steps=a.num_steps, learning_rate=a.learning_rate,
                prior_weight=a.prior_weight, z_weight=a.z_weight)
  if restarts:
    kwargs["restarts"] = a.restarts
    start = f"{a.restarts} {start}s, the best kept" if a.restarts > 1 else f"a {start}"
  return kwargs, (f"latent optimisation (Yeh et al. 2017) from {start}: {terms}, "
                  f"{a.num_steps} Adam steps of {a.learning_rate:g}")
