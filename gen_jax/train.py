"""The one training loop, for every model family.

``train_and_evaluate(config, workdir)`` loads the data onto the devices, builds the family's steps
from the config, resumes from the newest checkpoint in ``workdir`` if there is one, and then runs
many train steps per dispatch (a jitted loop over device-resident data), evaluating on the test split
at every epoch end and computing the family's likelihood bound at the end.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import pathlib
import signal
import threading
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from gen_jax import data, sharding, writers
from gen_jax.applications import interpolation, masks
from gen_jax import run as run_lib
from gen_jax.likelihood import iwae
from gen_jax.state import TrainState


class TrainingDivergedError(RuntimeError):
  """A metric became NaN or Inf; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------------------------
# Jitted pieces. Module-level so that the statics are explicit and nothing is captured by accident.


def _sum_metrics(a: dict, b: dict) -> dict:
  return {k: a[k] + b[k] for k in a}


def train_steps(state: TrainState, images: jax.Array, num_steps: jax.Array,
                labels: Optional[jax.Array] = None, *, train_step: Callable, batch_size: int,
                steps_per_epoch: int, num_examples: int, max_value: int, binarize: bool,
                data_key: jax.Array, mesh: Mesh, data_axis: str):
  """Runs ``num_steps`` (a traced count, so one compilation serves every chunk length) train steps
  that stay within one epoch, drawing each batch on the devices.

  Batches are ``{"image": float [0, 1]}``, plus ``"label"`` (int32) when ``labels`` is given.

  Returns (state, mean metrics over the steps, first non-finite step or -1, index of the first
  non-finite metric in sorted-name order).
  """
  order_key, binarize_key = jax.random.split(data_key)
  epoch = state.step // steps_per_epoch
  order = data.epoch_order(order_key, epoch, num_examples)

  def get_batch(step):
    pos = (step - epoch * steps_per_epoch) * batch_size
    idx = jax.lax.dynamic_slice(order, (pos,), (batch_size,))
    x = data.to_float(data.gather(images, idx, mesh=mesh, data_axis=data_axis), max_value)
    if binarize:
      x = data.binarize(jax.random.fold_in(binarize_key, step), x)
    if labels is None:
      return {"image": x}
    return {"image": x, "label": data.gather(labels, idx, mesh=mesh, data_axis=data_axis)}

  metric_shapes = jax.eval_shape(train_step, state, get_batch(state.step))[1]
  if "loss" not in metric_shapes:   # at trace time, before any step runs
    raise ValueError(f"the family's train_step returned no 'loss' metric (it gave "
                     f"{', '.join(sorted(metric_shapes))}): the Family contract "
                     "(gen_jax/steps/__init__.py) asks for the headline training signal.")
  names = sorted(metric_shapes)

  def body(_, carry):
    state, sums, bad_step, bad_metric = carry
    step = state.step
    state, metrics = train_step(state, get_batch(step))
    finite = jnp.stack([jnp.all(jnp.isfinite(metrics[k])) for k in names])
    newly_bad = (bad_step < 0) & ~jnp.all(finite)
    bad_step = jnp.where(newly_bad, step, bad_step)
    bad_metric = jnp.where(newly_bad, jnp.argmin(finite), bad_metric)
    return state, _sum_metrics(sums, metrics), bad_step, bad_metric

  zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in metric_shapes.items()}
  state, sums, bad_step, bad_metric = jax.lax.fori_loop(
      0, num_steps, body, (state, zeros, jnp.int32(-1), jnp.int32(0)))
  means = {k: v / num_steps for k, v in sums.items()}
  return state, means, bad_step, bad_metric


def evaluate(state: TrainState, images: jax.Array, key: jax.Array,
             labels: Optional[jax.Array] = None, *, eval_step: Callable, batch_size: int,
             num_examples: int, mesh: Mesh, data_axis: str) -> dict:
  """Mean over the split of each per-example metric of ``eval_step`` (float images in [0, 1];
  int32 ``"label"`` too when ``labels`` is given)."""
  batch_of = functools.partial(data.eval_batch, images, labels=labels, batch_size=batch_size,
                               num_examples=num_examples, mesh=mesh, data_axis=data_axis)
  shapes = jax.eval_shape(eval_step, state, batch_of(0)[0], key)

  def body(i, sums):
    batch, mask = batch_of(i * batch_size)
    metrics = eval_step(state, batch, jax.random.fold_in(key, i))
    return {k: sums[k] + jnp.where(mask, metrics[k], 0).sum() for k in sums}

  sums = jax.lax.fori_loop(0, -(-num_examples // batch_size), body,
                           {k: jnp.zeros((), v.dtype) for k, v in shapes.items()})
  return {k: v / num_examples for k, v in sums.items()}


def train_steps_fn(run: run_lib.Run) -> Callable:
  """:func:`train_steps` of the run's family, config and data, jitted with the state donated:
  ``fn(state, images, num_steps, labels)`` (the loop's and the throughput benchmarks' one function)."""
  config = run.config
  return jax.jit(
      functools.partial(
          train_steps, train_step=run.family.train_step, batch_size=config.batch_size,
          steps_per_epoch=run.train.num_examples // config.batch_size,
          num_examples=run.train.num_examples, max_value=run.train.max_value,
          binarize=config.dataset.binarize == "dynamic", data_key=run.keys["data"], mesh=run.mesh,
          data_axis=run.data_axis),
      donate_argnums=0)


# ---------------------------------------------------------------------------------------------
# The loop.


class _Preemption:
  """SIGTERM (a preempted TPU VM, a cluster scheduler) asks the loop to save and stop."""

  def __init__(self):
    self.requested = False
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint at the next step boundary, then exiting.")
    self.requested = True

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains ``config``'s model, writing everything to ``workdir``; returns the final metrics.

  Resumes from the newest checkpoint in ``<workdir>/checkpoints``. On SIGTERM it saves and returns
  ``{"preempted": True, ...}``. Raises :class:`TrainingDivergedError` on a non-finite metric.
  """
  workdir = pathlib.Path(workdir)
  run = run_lib.build(config)
  mesh, axis, family = run.mesh, run.data_axis, run.family
  masks.check(config.apps.grid_mask)            # the evaluation grids' settings, checked before
  interpolation.check(config.apps.interpolation)  # any training time is spent
  ckpt = run_lib.checkpointer(config, workdir)
  try:
    if ckpt.latest_step() is not None:
      state = ckpt.restore(run_lib.abstract_state(run))
      logging.info("resuming from step %d", int(state.step))
    else:
      state = run_lib.init_state(run)
  except BaseException:
    ckpt.close()   # an unreadable checkpoint: leave no orbax thread behind the error
    raise
  writer = writers.MetricWriter(workdir, tensorboard=config.tensorboard)

  steps_per_epoch = run.train.num_examples // config.batch_size
  total_steps = config.num_steps or config.num_epochs * steps_per_epoch
  eval_every = config.eval.every_steps or steps_per_epoch
  ckpt_every = config.checkpoint.every_steps or steps_per_epoch
  chunk_fn = train_steps_fn(run)
  eval_fns = {
      "eval": jax.jit(functools.partial(
          evaluate, eval_step=family.eval_step, batch_size=config.eval.batch_size,
          num_examples=run.num_test, mesh=mesh, data_axis=axis)),
      "sample": family.sample and jax.jit(family.sample, static_argnums=2),
      "reconstruct": family.reconstruct and jax.jit(family.reconstruct),
      "inpaint": family.inpaint and jax.jit(family.inpaint),
      "interpolate": family.interpolate and jax.jit(
          functools.partial(family.interpolate, num=config.apps.path_points),
          static_argnames="method"),
      "encode": family.encode and jax.jit(family.encode),
      "prior": family.prior and jax.jit(family.prior, static_argnums=2),
  }

  preemption = _Preemption()
  step = int(state.step)
  logging.info("training %s on %s: %d steps (%d epochs of %d), batch %d, %d device(s) on mesh %s",
               config.model.family, config.dataset.name, total_steps, config.num_epochs,
               steps_per_epoch, config.batch_size, mesh.size, dict(mesh.shape))
  # The test metrics at the last step: always, unless eval.at_end is off and nothing reads them.
  eval_at_end = config.eval.at_end or family.final_metrics_read_eval
  t_start, step_start, last_log, last_eval = time.time(), step, 0.0, None
  try:
    while step < total_steps:
      # Chunks never cross an epoch, an eval or a checkpoint boundary, so the chunking is a
      # function of the step alone and a resumed run replays it exactly.
      end = min(step + config.steps_per_dispatch, total_steps,
                *((step // every + 1) * every for every in (steps_per_epoch, eval_every, ckpt_every)))
      state, metrics, bad_step, bad_metric = chunk_fn(
          state, run.train.images, jnp.int32(end - step), run.train.labels)
      metrics = {k: float(v) for k, v in sharding.host_value(metrics).items()}
      if int(bad_step) >= 0:
        name = sorted(metrics)[int(bad_metric)]
        ckpt.wait()
        last = ckpt.latest_step()
        raise TrainingDivergedError(
            f"train/{name} became non-finite (NaN or Inf) at step {int(bad_step)}. "
            + (f"The last good checkpoint, step {last}, is kept in {ckpt.directory}; "
               if last is not None else "No checkpoint had been saved yet; ")
            + "lower --config.optimizer.learning_rate or set --config.optimizer.grad_clip_norm "
            "and rerun with the same --workdir to resume.")
      step = end
      now = time.time()
      rate = (step - step_start) / max(now - t_start, 1e-9)
      writer.write_scalars(step, {f"train/{k}": v for k, v in metrics.items()}
                           | {"train/steps_per_sec": rate,
                              "train/images_per_sec": rate * config.batch_size})
      is_last = step == total_steps
      if now - last_log >= config.log_every_secs or step % eval_every == 0 or is_last:
        last_log = now
        logging.info("step %d/%d (%.0f%%) | %.0f steps/s | ETA %s | train/loss %.4f", step,
                     total_steps, 100 * step / total_steps, rate,
                     writers.format_eta((total_steps - step) / max(rate, 1e-9)), metrics["loss"])
      if (step % eval_every == 0 and not is_last) or (is_last and eval_at_end):
        last_eval = _evaluate_and_write(state, run, eval_fns, writer, config, step)
      if step % ckpt_every == 0 or is_last:
        ckpt.save(step, state)
      if preemption.requested:
        ckpt.save(step, state, wait=True)
        logging.warning("preempted at step %d: checkpoint saved in %s; rerun the same command to "
                        "resume.", step, ckpt.directory)
        return {"preempted": True, "step": step}
    ckpt.save(step, state)
    ckpt.wait()
    if eval_at_end and last_eval is None:  # resumed after the last step: evaluate it once more
      last_eval = _evaluate_and_write(state, run, eval_fns, writer, config, step)
    # final metrics hold the last step's test metrics only (not an earlier epoch's)
    final = _final_metrics(state, run, config, writer, workdir, step,
                           last_eval if eval_at_end else {})
  finally:
    preemption.restore()
    ckpt.close()
    writer.close()
  logging.info("outputs in %s: metrics.jsonl, tensorboard/, checkpoints/, *.png%s", workdir.absolute(),
               ", final_metrics.json" if final else "")
  return final


def _evaluate_and_write(state: TrainState, run: run_lib.Run, fns: dict[str, Callable],
                        writer: writers.MetricWriter, config: ml_collections.ConfigDict,
                        step: int) -> dict[str, float]:
  """Test-split metrics, a grid of samples and one of reconstructions, written at ``step``."""
  metrics = {f"eval/{k}": float(v) for k, v in
             sharding.host_value(fns["eval"](state, run.test_images, run.keys["eval"],
                                        run.test_labels)).items()}
  writer.write_scalars(step, metrics)
  logging.info("eval at step %d: %s", step, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
  num = config.eval.num_images
  if not num:   # eval.num_images=0: the metrics alone (the study judges its checkpoints itself)
    return metrics
  if fns["sample"] is not None:
    classes = run.family.num_classes   # a conditional family's grid: one class per column
    args = (jnp.arange(num) % classes,) if classes else ()
    writer.write_images(step, "samples", sharding.host_value(
        fns["sample"](state, run.keys["sample"], num, *args)), ncols=classes or None)
  if fns["reconstruct"] is not None:
    batch = {"image": run.test_images[:num // 2]}
    if run.test_labels is not None:
      batch["label"] = run.test_labels[:num // 2]
    recon = sharding.host_value(fns["reconstruct"](state, batch))
    pairs = np.stack([sharding.host_value(batch["image"]), recon], axis=1).reshape(-1, *recon.shape[1:])
    writer.write_images(step, "reconstructions", pairs, ncols=int(math.sqrt(num)) // 2 * 2 or 2)
  if fns["inpaint"] is not None:
    images = run.test_images[:num // 2]
    mask = masks.make(config.apps.grid_mask, run.image_shape, num=images.shape[0],
                      key=run.keys["sample"])
    filled = fns["inpaint"](state, {"image": images}, mask, run.keys["sample"])
    pairs = np.stack(sharding.host_value([masks.shown(images, mask), filled]), axis=1)
    writer.write_images(step, "inpaintings", pairs.reshape(-1, *filled.shape[1:]),
                        ncols=int(math.sqrt(num)) // 2 * 2 or 2)
  if fns["interpolate"] is not None and (fns["encode"] or fns["prior"]) is not None:
    rows = config.apps.num_pairs
    if fns["encode"] is not None:   # between test images, through the encoder: straight lines
      z, method = fns["encode"](state, run.test_images[:2 * rows]), "lerp"
    else:                           # between prior draws
      z, method = fns["prior"](state, run.keys["sample"], 2 * rows), config.apps.interpolation
    grid = sharding.host_value(fns["interpolate"](state, z[:rows], z[rows:], method=method))
    writer.write_images(step, "interpolations", grid.reshape(-1, *grid.shape[2:]),
                        ncols=grid.shape[1])
  return metrics


def _final_metrics(state: TrainState, run: run_lib.Run, config: ml_collections.ConfigDict,
                   writer: writers.MetricWriter, workdir: pathlib.Path, step: int,
                   last_eval: dict[str, float]) -> dict[str, Any]:
  """The family's likelihood bound on the whole test split (IWAE for the VAE), with its standard
  error, and the family's own ``final_metrics`` (AIS for the RBM); written to metrics.jsonl and
  final_metrics.json. Skipped if already done for ``step``."""
  path = workdir / "final_metrics.json"
  if path.exists():
    done = json.loads(path.read_text())
    if done.get("step") == step:
      logging.info("final metrics for step %d already in %s", step, path)
      return done
  final: dict[str, Any] = {"step": step, **last_eval}
  k = config.eval.iwae_k
  if run.family.log_likelihood is not None and k:
    nll, stderr, bpd = iwae.summarize(
        iwae.values(state, run, k=k, batch_size=config.eval.iwae_batch_size,
                    seed=config.eval.iwae_seed), math.prod(run.image_shape))
    final |= {"eval/nll_iwae": nll, "eval/nll_iwae_stderr": stderr, "eval/bpd_iwae": bpd,
              "eval/iwae_k": k}
    logging.info("test NLL (IWAE, k=%d): %.2f +- %.2f nats (%.4f bits/dim)", k, nll, stderr, bpd)
    writer.write_scalars(step, {key_: v for key_, v in final.items()
                                if key_.startswith("eval/") and key_ not in last_eval})
  if run.family.final_metrics is not None:
    extra = {k_: float(v) for k_, v in run.family.final_metrics(state, last_eval).items()}
    final |= extra
    writer.write_scalars(step, extra)
  if jax.process_index() == 0:
    path.write_text(json.dumps(final, indent=1))
  return final
