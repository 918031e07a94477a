"""Deep belief network of two stacked RBMs, trained greedily layer by layer (Hinton et al. 2006).

The first ``layer1_steps`` steps train RBM 1 (pixels -> h1) by CD/PCD exactly as
:mod:`gen_jax.steps.rbm`; the steps after them train RBM 2 (h1 -> h2) on samples h1 ~ q(h1 | v)
of the frozen RBM 1, so one run of the training loop does the whole greedy schedule and a resumed
run picks up in the right layer. The generative model is RBM 2 over h1 (the top, undirected
layer) with the directed p(v | h1) of RBM 1 below it: sampling runs Gibbs in the top RBM and then
one down-pass.

Test log-likelihood (Salakhutdinov & Murray 2008): with the factorial q(h1 | v) of RBM 1,

    log p(v) >= E_q[log p(v | h1) - F_2(h1)] + H(q(h1 | v)) - log Z_2,

where F_2 is the top RBM's free energy over h1 and log Z_2 its log partition function, estimated by
AIS (base rate: the mean of q(h1 | v) over the training data). ``eval_step`` estimates the first
two terms per example with ``num_samples`` draws of h1; :func:`final_metrics` adds log Z_2, so
``eval/nll_bound`` is an upper bound on the test NLL (up to the AIS error) and is reported with the
AIS band. RBM 1 alone is also evaluated as a model of v (``eval/nll_ais_rbm1``) for comparison.
Bernoulli visible units only.
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
from gen_jax.steps import rbm as rbm_steps

NETS = ("rbm1", "rbm2")


def init_state(key: jax.Array, *, rbm1: RBM, rbm2: RBM, tx: optax.GradientTransformation,
               init_scale: float, num_chains: int = 0) -> TrainState:
  """Both RBMs, each with its own optimizer state and (``num_chains`` > 0) persistent chains."""
  if rbm1.gaussian or rbm2.gaussian or rbm1.num_hidden != rbm2.num_visible:
    raise ValueError("a DBN stacks Bernoulli RBMs whose sizes match: RBM 1's hidden layer is RBM 2's "
                     f"visible layer (got {rbm1} and {rbm2}).")
  k1, k2, kc1, kc2, run_key = jax.random.split(key, 5)
  extra = {"data_mean": jnp.zeros((rbm1.num_visible,), jnp.float32),
           "h1_mean": jnp.zeros((rbm2.num_visible,), jnp.float32)}
  if num_chains:
    extra["chains1"] = jax.random.bernoulli(kc1, 0.5, (num_chains, rbm1.num_visible)).astype(jnp.float32)
    extra["chains2"] = jax.random.bernoulli(kc2, 0.5, (num_chains, rbm2.num_visible)).astype(jnp.float32)
  return TrainState.create(
      params={"rbm1": rbm1.init(k1, scale=init_scale), "rbm2": rbm2.init(k2, scale=init_scale)},
      tx={"rbm1": tx, "rbm2": tx}, key=run_key, extra=extra)


def unroll(state: TrainState, key: jax.Array, *, rbm1: RBM) -> TrainState:
  """RBM 2 := RBM 1 turned upside down (W^T, biases swapped), its chains := h1 ~ p(h1 | RBM 1's
  chains). The DBN then defines exactly RBM 1's p(v), so the bound starts at RBM 1's likelihood
  (Hinton et al. 2006: training the top layer from here improves the bound). Needs
  num_hidden2 == num_visible."""
  p1 = state.params["rbm1"]
  params = dict(state.params, rbm2={"W": p1["W"].T, "vbias": p1["hbias"], "hbias": p1["vbias"]})
  extra = dict(state.extra)
  if "chains1" in extra:
    extra["chains2"] = rbm1.sample_hidden(key, p1, extra["chains1"])
  return state.replace(params=params, extra=extra)


def train_step(state: TrainState, batch: dict, *, rbm1: RBM, rbm2: RBM, layer1_steps: int,
               method: str = "pcd", k: int = 1,
               init_top_from_bottom: bool = False) -> tuple[TrainState, dict[str, jax.Array]]:
  """One CD/PCD update of RBM 1 (step < ``layer1_steps``) or of RBM 2 on h1 ~ q(h1 | v).

  With ``init_top_from_bottom`` RBM 2 starts, at step ``layer1_steps``, as :func:`unroll` of RBM 1.
  Metrics are those of :func:`gen_jax.steps.rbm.cd_update` for the layer being trained, plus
  ``layer`` (1 or 2).
  """
  if method not in rbm_steps.METHODS:
    raise ValueError(f"unknown RBM training method {method!r}; choose one of "
                     f"{', '.join(rbm_steps.METHODS)}.")
  v = batch["image"].reshape(batch["image"].shape[0], -1)
  update_key, up_key = jax.random.split(state.step_key())

  def train_layer(state, name, rbm, x, chains_name, mean_name, mean_of, count):
    start = state.extra[chains_name] if method == "pcd" else x
    grads, x_neg, metrics = rbm_steps.cd_update(update_key, state.params[name], x, start, rbm=rbm, k=k)
    extra = dict(state.extra)
    extra[mean_name] = rbm_steps.running_mean(extra[mean_name], mean_of, count)
    if method == "pcd":
      extra[chains_name] = x_neg
    state = state.apply_gradients({name: grads}).replace(extra=extra)
    return state, metrics | {"layer": jnp.float32(1 if name == "rbm1" else 2)}

  def layer1(state):
    return train_layer(state, "rbm1", rbm1, v, "chains1", "data_mean", v, state.step)

  def layer2(state):
    if init_top_from_bottom:
      state = jax.lax.cond(state.step == layer1_steps,
                           lambda s: unroll(s, jax.random.fold_in(up_key, 1), rbm1=rbm1),
                           lambda s: s, state)
    p1 = rbm1.hidden_probs(state.params["rbm1"], v)
    h1 = jax.random.bernoulli(up_key, p1).astype(v.dtype)
    return train_layer(state, "rbm2", rbm2, h1, "chains2", "h1_mean", p1, state.step - layer1_steps)

  return jax.lax.cond(state.step < layer1_steps, layer1, layer2, state)


def _bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
  return -jnp.sum(jax.nn.softplus(-(2 * x - 1) * logits), -1)


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, rbm1: RBM, rbm2: RBM,
              num_samples: int) -> dict[str, jax.Array]:
  """Per example: ``neg_bound_unnorm`` = -(E_q[log p(v | h1) - F_2(h1)] + H(q)) (``num_samples``
  draws of h1; add log Z_2 for the bound on -log p(v)), and RBM 1's ``free_energy`` and ``recon``."""
  p1, p2 = state.params["rbm1"], state.params["rbm2"]
  v = batch["image"].reshape(batch["image"].shape[0], -1)
  logits = rbm1.hidden_logits(p1, v)
  q = jax.nn.sigmoid(logits)
  # H(q) = sum_j softplus(l) - q l for Bernoulli(sigmoid(l)).
  entropy = jnp.sum(jax.nn.softplus(logits) - q * logits, -1)
  h1 = jax.random.bernoulli(key, q, (num_samples, *q.shape)).astype(v.dtype)
  log_pv = _bernoulli_log_prob(rbm1.visible_input(p1, h1), v)                  # (S, B)
  neg_f2 = -rbm2.free_energy(p2, h1.reshape(-1, rbm2.num_visible)).reshape(h1.shape[:2])
  bound = jnp.mean(log_pv + neg_f2, 0) + entropy
  return {"neg_bound_unnorm": -bound, "free_energy": rbm1.free_energy(p1, v),
          "recon": rbm1.reconstruction_error(p1, v)}


def sample(state: TrainState, key: jax.Array, num: int, *, rbm1: RBM, rbm2: RBM,
           image_shape: Sequence[int], num_steps: int) -> jax.Array:
  """Gibbs in the top RBM (from h1 drawn from its base rate) for ``num_steps`` sweeps, then the
  down-pass: the means of p(v | h1)."""
  init_key, chain_key = jax.random.split(key)
  h1 = jax.random.bernoulli(init_key, state.extra["h1_mean"], (num, rbm2.num_visible)).astype(jnp.float32)
  h1 = rbm2.gibbs(chain_key, state.params["rbm2"], h1, num_steps)
  return rbm1.visible_mean(state.params["rbm1"], h1).reshape(num, *image_shape)


def encode(state: TrainState, images: jax.Array, *, rbm1: RBM) -> jax.Array:
  """q(h1 | v): RBM 1's hidden probabilities, the DBN's recognition layer, (batch, num_hidden)."""
  return rbm_steps.encode(state.replace(params={"rbm": state.params["rbm1"]}), images, rbm=rbm1)


def reconstruct(state: TrainState, batch: dict, *, rbm1: RBM) -> jax.Array:
  """Up and down through RBM 1 (mean field)."""
  return rbm_steps.reconstruct(state.replace(params={"rbm": state.params["rbm1"]}), batch, rbm=rbm1)


def decode(state: TrainState, h1: jax.Array, *, rbm1: RBM, image_shape: Sequence[int]) -> jax.Array:
  """The down-pass: the mean of p(v | h1) for first-layer states or probabilities ``h1``."""
  return rbm_steps.decode(state.replace(params={"rbm": state.params["rbm1"]}), h1, rbm=rbm1,
                          image_shape=image_shape)


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, rbm1: RBM,
            rbm2: RBM, num_steps: int) -> jax.Array:
  """Clamped Gibbs sampling in the DBN: each sweep draws h1 ~ q(h1 | v) (RBM 1's up-pass), one
  Gibbs step of the top RBM (h1 -> h2 -> h1), then v ~ p(v | h1) with the known pixels clamped;
  the missing pixels start from the base rate and end as the mean of p(v | h1) of the last sweep.
  The up-pass is the DBN's approximate posterior, so the chain is approximate (the RBM's is exact)."""
  p1, p2 = state.params["rbm1"], state.params["rbm2"]
  images = batch["image"]
  known = mask.reshape(mask.shape[0], -1)
  x = images.reshape(images.shape[0], -1)
  init_key, key = jax.random.split(key)
  start = jax.random.bernoulli(init_key, state.extra["data_mean"], x.shape).astype(jnp.float32)

  def down(k, v):
    k1, k2, k3 = jax.random.split(k, 3)
    h1 = rbm2.gibbs_step(k2, p2, rbm1.sample_hidden(k1, p1, v))
    return h1, k3

  def sweep(t, v):
    h1, k = down(jax.random.fold_in(key, t), v)
    return jnp.where(known, x, rbm1.sample_visible(k, p1, h1))

  v = jax.lax.fori_loop(0, num_steps, sweep, jnp.where(known, x, start))
  h1, _ = down(jax.random.fold_in(key, num_steps), v)
  filled = jnp.where(known, x, jnp.clip(rbm1.visible_mean(p1, h1), 0.0, 1.0))
  return filled.reshape(images.shape)


def _ais(params, mean, rbm, key, num_runs, num_betas, schedule):
  return jax.device_get(ais.log_partition(key, params, jnp.asarray(ais.betas(schedule, num_betas)),
                                          base_rate_logits(mean), rbm=rbm, num_runs=num_runs))


def final_metrics(state: TrainState, eval_metrics: dict[str, float], *, rbm1: RBM, rbm2: RBM,
                  num_runs: int, num_betas: int, schedule: str, seed: int,
                  first_layer: bool) -> dict[str, float]:
  """``eval/nll_bound`` = mean ``neg_bound_unnorm`` + AIS log Z_2 (with its 3-sigma band) and,
  if ``first_layer``, RBM 1's own AIS test NLL ``eval/nll_ais_rbm1``."""
  t0 = time.time()
  key2, key1 = jax.random.split(jax.random.PRNGKey(seed))
  r2 = _ais(state.params["rbm2"], state.extra["h1_mean"], rbm2, key2, num_runs, num_betas, schedule)
  b = eval_metrics["eval/neg_bound_unnorm"]
  out = {"eval/log_z2": float(r2["log_z"]), "eval/log_z2_lo": float(r2["log_z_lo"]),
         "eval/log_z2_hi": float(r2["log_z_hi"]), "eval/nll_bound": b + float(r2["log_z"]),
         "eval/nll_bound_lo": b + float(r2["log_z_lo"]), "eval/nll_bound_hi": b + float(r2["log_z_hi"])}
  logging.info("DBN test NLL bound: %.2f nats [%.2f, %.2f] (AIS on the top RBM: log Z = %.2f)",
               out["eval/nll_bound"], out["eval/nll_bound_lo"], out["eval/nll_bound_hi"],
               out["eval/log_z2"])
  if first_layer:
    r1 = _ais(state.params["rbm1"], state.extra["data_mean"], rbm1, key1, num_runs, num_betas, schedule)
    f = eval_metrics["eval/free_energy"]
    out |= {"eval/log_z1": float(r1["log_z"]), "eval/nll_ais_rbm1": f + float(r1["log_z"]),
            "eval/nll_ais_rbm1_lo": f + float(r1["log_z_lo"]),
            "eval/nll_ais_rbm1_hi": f + float(r1["log_z_hi"])}
    logging.info("RBM 1 alone: test NLL %.2f nats [%.2f, %.2f]", out["eval/nll_ais_rbm1"],
                 out["eval/nll_ais_rbm1_lo"], out["eval/nll_ais_rbm1_hi"])
  out |= {"eval/ais_runs": num_runs, "eval/ais_betas": num_betas, "eval/ais_secs": time.time() - t0}
  return out


def validate(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> None:
  """A clear error for layer sizes or a training method this family cannot train."""
  m, num_pixels = config.model, math.prod(image_shape)
  precision.compute_dtype(m.dtype, "dbn")
  if m.init_top_from_bottom and m.num_hidden2 != num_pixels:
    raise ValueError(f"model.init_top_from_bottom needs model.num_hidden2 = {num_pixels} (the "
                     f"number of pixels), not {m.num_hidden2}.")
  rbm_steps.validate(config)


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config, image_shape)
  m, a = config.model, config.ais
  rbm1 = RBM(math.prod(image_shape), m.num_hidden)
  rbm2 = RBM(m.num_hidden, m.num_hidden2)
  p = functools.partial
  return Family(
      init=p(init_state, rbm1=rbm1, rbm2=rbm2, tx=rbm_steps.optimizer_from_config(config.optimizer),
             num_chains=m.num_chains if m.method == "pcd" else 0, init_scale=m.init_scale),
      train_step=p(train_step, rbm1=rbm1, rbm2=rbm2, layer1_steps=m.layer1_steps,
                   method=m.method, k=m.k, init_top_from_bottom=m.init_top_from_bottom),
      eval_step=p(eval_step, rbm1=rbm1, rbm2=rbm2, num_samples=m.bound_samples),
      sample=p(sample, rbm1=rbm1, rbm2=rbm2, image_shape=tuple(image_shape),
               num_steps=m.sample_steps),
      reconstruct=p(reconstruct, rbm1=rbm1),
      encode=p(encode, rbm1=rbm1),
      decode=p(decode, rbm1=rbm1, image_shape=tuple(image_shape)),
      inpaint=p(inpaint, rbm1=rbm1, rbm2=rbm2, num_steps=config.apps.num_steps),
      inpaint_method=f"clamped Gibbs in the DBN ({config.apps.num_steps} sweeps)",
      final_metrics=(p(final_metrics, rbm1=rbm1, rbm2=rbm2, num_runs=a.num_runs,
                       num_betas=a.num_betas, schedule=a.schedule, seed=a.seed,
                       first_layer=a.first_layer) if a.num_runs else None),
      final_metrics_read_eval=True,
  )
