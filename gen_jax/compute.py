"""What a train step costs: parameters, FLOPs and memory from XLA's own analysis of the compiled
step, and measured training throughput through the loop's own multi-step function.

    from gen_jax import compute, run as run_lib
    run = run_lib.build(config); state = run_lib.init_state(run)
    cost = compute.step_cost(run, state)     # {'params': ..., 'flops_per_step': ..., ...}
    rates = compute.train_rates(run, state, steps=200, rounds=3)   # images/s of each round

FLOPs are XLA's ``cost_analysis()`` of one jitted ``train_step`` on one global batch (a
multiply-add counts 2); on several devices the step is analysed as one program over the whole
batch, so the count does not depend on the device count. Peak memory is XLA's
``memory_analysis()``: arguments + outputs + temporaries - aliased bytes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# Dense peak FLOP/s of accelerators (vendor datasheets; bf16 without sparsity, float32 without
# TF32), for the share-of-peak column. Unknown devices (CPUs) get none unless one is given.
PEAK_FLOPS = {
    ("NVIDIA H100 80GB HBM3", "bfloat16"): 989e12, ("NVIDIA H100 80GB HBM3", "float32"): 67e12,
    ("NVIDIA H200", "bfloat16"): 989e12, ("NVIDIA H200", "float32"): 67e12,
    ("NVIDIA A100-SXM4-80GB", "bfloat16"): 312e12, ("NVIDIA A100-SXM4-80GB", "float32"): 19.5e12,
    ("TPU v4", "bfloat16"): 275e12, ("TPU v5 lite", "bfloat16"): 197e12,
    ("TPU v5p", "bfloat16"): 459e12,
}


def num_params(params: Any) -> int:
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(params)))


def example_batch(run) -> dict:
  """A global training batch of the run's shapes (zeros; ``label`` when the data has labels)."""
  b = run.config.batch_size
  batch = {"image": jnp.zeros((b, *run.image_shape), jnp.float32)}
  if run.train.labels is not None:
    batch["label"] = jnp.zeros((b,), jnp.int32)
  return batch


def compiled_cost(fn: Callable, *args) -> dict[str, float]:
  """{'flops', 'bytes_accessed', 'peak_bytes'} of ``jax.jit(fn)`` compiled for ``args``."""
  compiled = jax.jit(fn).lower(*args).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  mem = compiled.memory_analysis()
  peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
          - mem.alias_size_in_bytes) if mem is not None else float("nan")
  return {"flops": float(cost.get("flops", float("nan"))),
          "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
          "peak_bytes": float(peak)}


def step_cost(run, state) -> dict[str, float]:
  """Parameters, FLOPs per train step and per image, bytes accessed and peak memory of the run's
  train step (one global batch)."""
  cost = compiled_cost(run.family.train_step, state, example_batch(run))
  return {"params": num_params(state.params), "flops_per_step": cost["flops"],
          "flops_per_image": cost["flops"] / run.config.batch_size,
          "bytes_accessed": cost["bytes_accessed"], "peak_bytes": cost["peak_bytes"]}


def train_rates(run, state, *, steps: int, rounds: int) -> tuple[list[float], Any]:
  """(images/s of each of ``rounds`` rounds of ``steps`` train steps, the final state), through
  the loop's multi-step function (:func:`gen_jax.train.train_steps`, data on the devices);
  compilation and a warm-up round excluded. ``steps`` is capped at one epoch."""
  from gen_jax import train  # pylint: disable=import-outside-toplevel  (train imports this module)
  config = run.config
  spe = run.train.num_examples // config.batch_size
  fn = train.train_steps_fn(run)
  n = min(steps, spe)
  rates = []
  for i in range(rounds + 1):   # round 0 compiles and warms up
    # Each round starts at an epoch boundary so that no round crosses one.
    state = state.replace(step=jnp.zeros_like(state.step) + i * spe)
    t = time.perf_counter()
    state, metrics, _, _ = fn(state, run.train.images, jnp.int32(n), run.train.labels)
    jax.block_until_ready(metrics)
    if i:
      rates.append(n * config.batch_size / (time.perf_counter() - t))
  return rates, state


def peak_flops(device_kind: str, dtype: str) -> float | None:
  return PEAK_FLOPS.get((device_kind, dtype))


def summary(rates: list[float]) -> dict[str, float]:
  return {"median": float(np.median(rates)), "min": float(min(rates)), "max": float(max(rates))}
