"""Restricted Boltzmann machine trained by CD-k or persistent CD (PCD, Tieleman 2008).

The RBM's learning signal is not the gradient of a loss: each step computes the sufficient
statistics <v h^T> under the data and under negative samples (k Gibbs sweeps from the data for CD-k;
the persistent chains, advanced k sweeps, for PCD) and hands ``model - data`` (the sign optax
minimises) to ``state.apply_gradients``. Momentum and weight decay come from the optax chain
(:func:`make_optimizer`). The persistent chains and the running mean of the training pixels (which
the AIS base-rate model needs) live in ``state.extra`` and are checkpointed with the parameters.

Usage in a research script::

    from functools import partial
    import jax
    from gen_jax.models.rbm import RBM
    from gen_jax.steps import rbm as rbm_steps

    model = RBM(num_visible=784, num_hidden=500)
    tx = rbm_steps.make_optimizer(learning_rate=0.05, momentum=0.5, weight_decay=2e-4)
    state = rbm_steps.init_state(jax.random.PRNGKey(0), rbm=model, tx=tx, init_scale=0.01,
                                 num_chains=100)
    step = jax.jit(partial(rbm_steps.train_step, rbm=model, method="pcd", k=1), donate_argnums=0)
    state, metrics = step(state, {"image": x})   # x: (100, 28, 28, 1) in {0, 1}

The test NLL is the mean test free energy plus log Z, estimated by AIS (:mod:`gen_jax.likelihood.ais`); the
training loop gets it from :func:`final_metrics` at the end of a run.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import precision
from gen_jax.likelihood import ais
from gen_jax.models.rbm import RBM, base_rate_logits
from gen_jax.state import TrainState
from gen_jax.steps import Family

NET = "rbm"
METHODS = ("cd", "pcd")


def make_optimizer(*, learning_rate: float, momentum: float = 0.0, weight_decay: float = 0.0,
                   decay_steps: int = 0, final_learning_rate: float = 0.0) -> optax.GradientTransformation:
  """SGD with momentum and L2 weight decay on W only (not the biases), as in Hinton's guide;
  with ``decay_steps`` the learning rate falls linearly to ``final_learning_rate`` over them."""
  lr = (optax.linear_schedule(learning_rate, final_learning_rate, decay_steps) if decay_steps
        else learning_rate)
  parts = []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay,
                                           mask={"W": True, "vbias": False, "hbias": False}))
  parts.append(optax.sgd(lr, momentum=momentum or None))
  return optax.chain(*parts)


def init_state(key: jax.Array, *, rbm: RBM, tx: optax.GradientTransformation, init_scale: float,
               num_chains: int = 0) -> TrainState:
  """A fresh state. ``num_chains`` > 0 adds persistent chains (uniform random binary states, or
  N(0, s^2) for Gaussian units) to ``extra``; ``extra['data_mean']`` starts at 0."""
  init_key, chain_key, run_key = jax.random.split(key, 3)
  extra = {"data_mean": jnp.zeros((rbm.num_visible,), jnp.float32)}
  if num_chains:
    shape = (num_chains, rbm.num_visible)
    extra["chains"] = (rbm.sigma * jax.random.normal(chain_key, shape) if rbm.gaussian
                       else jax.random.bernoulli(chain_key, 0.5, shape).astype(jnp.float32))
  return TrainState.create(params={NET: rbm.init(init_key, scale=init_scale)}, tx={NET: tx},
                           key=run_key, extra=extra)


def _flat(images: jax.Array) -> jax.Array:
  return images.reshape(images.shape[0], -1)


def monitors(key: jax.Array, params: dict, v: jax.Array, *, rbm: RBM) -> dict[str, jax.Array]:
  """Per-example training monitors: free energy, reconstruction error (squared, summed over
  pixels) and, for Bernoulli units, the stochastic pseudo-likelihood NLL (nats)."""
  out = {"free_energy": rbm.free_energy(params, v), "recon": rbm.reconstruction_error(params, v)}
  if not rbm.gaussian:
    out["pseudo_nll"] = rbm.pseudo_nll(key, params, v)
  return out


def cd_update(key: jax.Array, params: dict, v: jax.Array, start: jax.Array, *, rbm: RBM,
              k: int = 1) -> tuple[dict, jax.Array, dict[str, jax.Array]]:
  """The CD/PCD learning signal for data ``v``: k Gibbs sweeps from ``start`` (the data for CD, the
  persistent chains for PCD). Returns (grads = model stats - data stats, the chains' new states,
  batch-mean monitors: ``loss``, ``recon``, ``free_energy``, ``free_energy_gap``, ``pseudo_nll``).

  ``loss`` is the pseudo-likelihood NLL for Bernoulli units and the reconstruction error for
  Gaussian ones: a monitor, not what is minimised.
  """
  chain_key, monitor_key = jax.random.split(key)
  v_neg = rbm.gibbs(chain_key, params, start, k)
  grads = rbm.nll_grads(params, v, v_neg)
  m = {name: x.mean() for name, x in monitors(monitor_key, params, v, rbm=rbm).items()}
  m["free_energy_gap"] = m["free_energy"] - rbm.free_energy(params, v_neg).mean()
  m["loss"] = m["recon"] if rbm.gaussian else m["pseudo_nll"]
  return grads, v_neg, m


def running_mean(mean: jax.Array, x: jax.Array, count: jax.Array) -> jax.Array:
  """The mean of ``count`` batch means updated with the batch ``x`` (an incremental average)."""
  return mean + (x.mean(0) - mean) / (count + 1).astype(jnp.float32)


def train_step(state: TrainState, batch: dict, *, rbm: RBM, method: str = "pcd",
               k: int = 1) -> tuple[TrainState, dict[str, jax.Array]]:
  """One CD-k (``method='cd'``) or PCD-k (``'pcd'``, chains in ``state.extra['chains']``) update.

  Metrics (see :func:`cd_update`): ``loss``, ``recon``, ``free_energy`` of the batch,
  ``free_energy_gap`` = mean F(data) - mean F(negative samples), and ``pseudo_nll``.
  """
  if method not in METHODS:
    raise ValueError(f"unknown RBM training method {method!r}; choose one of {', '.join(METHODS)}.")
  v = _flat(batch["image"])
  start = state.extra["chains"] if method == "pcd" else v
  grads, v_neg, metrics = cd_update(state.step_key(), state.params[NET], v, start, rbm=rbm, k=k)
  # The running mean of every training batch seen: after whole epochs, the training pixel means.
  extra = dict(state.extra, data_mean=running_mean(state.extra["data_mean"], v, state.step))
  if method == "pcd":
    extra["chains"] = v_neg
  return state.apply_gradients({NET: grads}).replace(extra=extra), metrics


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, rbm: RBM) -> dict[str, jax.Array]:
  """Per-example ``free_energy``, ``recon`` and (Bernoulli) ``pseudo_nll``, in nats."""
  return monitors(key, state.params[NET], _flat(batch["image"]), rbm=rbm)


def sample(state: TrainState, key: jax.Array, num: int, *, rbm: RBM, image_shape: Sequence[int],
           num_steps: int) -> jax.Array:
  """``num`` independent Gibbs chains started from the base-rate model (pixels drawn from the
  training means) and run ``num_steps`` sweeps; returns the means of p(v | h) of the last sweep."""
  params = state.params[NET]
  init_key, chain_key, last_key = jax.random.split(key, 3)
  mean = state.extra["data_mean"]
  if rbm.gaussian:
    v = mean + rbm.sigma * jax.random.normal(init_key, (num, rbm.num_visible))
  else:
    v = jax.random.bernoulli(init_key, mean, (num, rbm.num_visible)).astype(jnp.float32)
  v = rbm.gibbs(chain_key, params, v, num_steps)
  x = rbm.visible_mean(params, rbm.sample_hidden(last_key, params, v))
  return jnp.clip(x, 0.0, 1.0).reshape(num, *image_shape)


def encode(state: TrainState, images: jax.Array, *, rbm: RBM) -> jax.Array:
  """The hidden units' probabilities p(h_j = 1 | v) of images, (batch, num_hidden)."""
  return rbm.hidden_probs(state.params[NET], _flat(images))


def reconstruct(state: TrainState, batch: dict, *, rbm: RBM) -> jax.Array:
  """Mean-field reconstruction: the mean of p(v | h = p(h | v))."""
  params = state.params[NET]
  x = batch["image"]
  return jnp.clip(rbm.visible_mean(params, rbm.hidden_probs(params, _flat(x))), 0, 1).reshape(x.shape)


def decode(state: TrainState, h: jax.Array, *, rbm: RBM, image_shape: Sequence[int]) -> jax.Array:
  """The mean of p(v | h) for hidden states or probabilities ``h`` (batch, num_hidden)."""
  v = rbm.visible_mean(state.params[NET], h)
  return jnp.clip(v, 0.0, 1.0).reshape(h.shape[0], *image_shape)


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, rbm: RBM,
            num_steps: int) -> jax.Array:
  """Clamped Gibbs sampling: the pixels where ``mask`` is False resampled from p(v | h) for
  ``num_steps`` sweeps with the known ones clamped, starting from the base-rate model (the training
  pixel means); returns the known pixels as given and, on the others, the mean of p(v | h) after
  the last sweep, with the batch's shape."""
  return clamped_gibbs(state.params[NET], state.extra["data_mean"], batch["image"], mask, key,
                       rbm=rbm, num_steps=num_steps)


def clamped_gibbs(params, data_mean: jax.Array, images: jax.Array, mask: jax.Array,
                  key: jax.Array, *, rbm: RBM, num_steps: int) -> jax.Array:
  """:func:`inpaint` for one RBM's ``params`` and the base rate ``data_mean`` of its visible units
  (the DBN completes with its bottom RBM's down-pass through this too)."""
  known = _flat(mask)
  x = _flat(images)
  init_key, chain_key, last_key = jax.random.split(key, 3)
  if rbm.gaussian:
    start = data_mean + rbm.sigma * jax.random.normal(init_key, known.shape)
  else:
    start = jax.random.bernoulli(init_key, data_mean, known.shape).astype(jnp.float32)
  v = rbm.clamped_gibbs(chain_key, params, jnp.where(known, x, start), known, num_steps)
  filled = jnp.where(known, x, jnp.clip(
      rbm.visible_mean(params, rbm.sample_hidden(last_key, params, v)), 0.0, 1.0))
  return filled.reshape(images.shape)


def base_vbias(state: TrainState, *, rbm: RBM) -> jax.Array:
  """Visible biases of the AIS base-rate model, from the training pixel means."""
  mean = state.extra["data_mean"]
  return mean if rbm.gaussian else base_rate_logits(mean)


def log_partition(state: TrainState, key: jax.Array, *, rbm: RBM, num_runs: int, num_betas: int,
                  schedule: str) -> dict[str, jax.Array]:
  """AIS estimate of log Z (with its 3-sigma band) from the base-rate model of the training data."""
  return ais.log_partition(key, state.params[NET], jnp.asarray(ais.betas(schedule, num_betas)),
                           base_vbias(state, rbm=rbm), rbm=rbm, num_runs=num_runs)


def final_metrics(state: TrainState, eval_metrics: dict[str, float], *, rbm: RBM, num_runs: int,
                  num_betas: int, schedule: str, seed: int) -> dict[str, float]:
  """Test NLL = mean test free energy (``eval/free_energy``) + AIS log Z, with the band from
  log(Z_hat -/+ 3 sigma_hat); run once by the training loop at the end."""
  t0 = time.time()
  res = jax.device_get(log_partition(state, jax.random.PRNGKey(seed), rbm=rbm, num_runs=num_runs,
                                     num_betas=num_betas, schedule=schedule))
  secs = time.time() - t0
  f = eval_metrics["eval/free_energy"]
  out = {"eval/log_z": float(res["log_z"]), "eval/log_z_lo": float(res["log_z_lo"]),
         "eval/log_z_hi": float(res["log_z_hi"]), "eval/nll_ais": f + float(res["log_z"]),
         "eval/nll_ais_lo": f + float(res["log_z_lo"]), "eval/nll_ais_hi": f + float(res["log_z_hi"]),
         "eval/ais_runs": num_runs, "eval/ais_betas": num_betas, "eval/ais_secs": secs}
  if not rbm.gaussian:
    out["eval/bpd_ais"] = out["eval/nll_ais"] / (rbm.num_visible * math.log(2))
  logging.info("AIS (%d runs, %d %s temperatures, %.0f s): log Z = %.2f [%.2f, %.2f]; "
               "test NLL = %.2f nats [%.2f, %.2f]", num_runs, num_betas, schedule, secs,
               out["eval/log_z"], out["eval/log_z_lo"], out["eval/log_z_hi"], out["eval/nll_ais"],
               out["eval/nll_ais_lo"], out["eval/nll_ais_hi"])
  return out


def create_model(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> RBM:
  m = config.model
  return RBM(num_visible=math.prod(image_shape), num_hidden=m.num_hidden,
             visible=m.visible, sigma=m.sigma)


def optimizer_from_config(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """SGD with momentum, weight decay and a linear learning-rate decay (:func:`make_optimizer`)
  from ``config.optimizer`` (:func:`validate` checks its name)."""
  return make_optimizer(learning_rate=cfg.learning_rate, momentum=cfg.momentum,
                        weight_decay=cfg.weight_decay, decay_steps=cfg.decay_steps,
                        final_learning_rate=cfg.final_learning_rate)


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for a training method or optimizer this family does not have."""
  precision.compute_dtype(config.model.dtype, "rbm")
  if config.model.method not in METHODS:
    raise ValueError(f"unknown RBM training method {config.model.method!r} (config.model.method); "
                     f"choose one of {', '.join(METHODS)}.")
  if config.optimizer.name != "sgd":
    raise ValueError(f"the RBM is trained with optimizer.name='sgd' (momentum and weight decay "
                     f"through optax), not {config.optimizer.name!r}.")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config)
  rbm = create_model(config, image_shape)
  m, a = config.model, config.ais
  p = functools.partial
  return Family(
      init=p(init_state, rbm=rbm, tx=optimizer_from_config(config.optimizer),
             num_chains=m.num_chains if m.method == "pcd" else 0, init_scale=m.init_scale),
      train_step=p(train_step, rbm=rbm, method=m.method, k=m.k),
      eval_step=p(eval_step, rbm=rbm),
      sample=p(sample, rbm=rbm, image_shape=tuple(image_shape), num_steps=m.sample_steps),
      reconstruct=p(reconstruct, rbm=rbm),
      encode=p(encode, rbm=rbm),
      decode=p(decode, rbm=rbm, image_shape=tuple(image_shape)),
      inpaint=p(inpaint, rbm=rbm, num_steps=config.apps.num_steps),
      inpaint_method=f"clamped Gibbs ({config.apps.num_steps} sweeps)",
      final_metrics=(p(final_metrics, rbm=rbm, num_runs=a.num_runs, num_betas=a.num_betas,
                       schedule=a.schedule, seed=a.seed) if a.num_runs else None),
      final_metrics_read_eval=True,
  )
