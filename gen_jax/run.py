"""Building and restoring a run: the one set-up that training, evaluation and scripts share.

    from gen_jax import run as run_lib
    run = run_lib.build(config)                    # mesh, data on the devices, the family, keys
    state = run_lib.init_state(run)                # a fresh state, born replicated on the mesh
    run, state = run_lib.restore(config, workdir)  # the newest checkpoint of a training run

:func:`restore` reads the checkpoint into :func:`abstract_state` (``jax.eval_shape`` of the
jitted init, carrying the shardings), so no throw-away state is materialised first.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
from typing import Any, Callable, Optional

import jax
import ml_collections
from jax.sharding import Mesh

from gen_jax import checkpoint, data, sharding, steps
from gen_jax.models import layers

BINARIZE = ("dynamic", "none")


@dataclasses.dataclass
class Run:
  """What a config builds once: the mesh, both splits on the devices, the family's steps, keys.

  ``keys``: 'init', 'data', 'eval' and 'sample', split from ``PRNGKey(config.seed)``.
  """
  config: ml_collections.ConfigDict
  mesh: Mesh
  data_axis: str
  train: data.Split
  test_images: jax.Array       # float32 in [0, 1], binarized once with a fixed seed if asked
  num_test: int
  family: steps.Family
  keys: dict
  test_labels: Optional[jax.Array] = None   # int32, sharded like test_images; None if unlabelled

  @property
  def image_shape(self) -> tuple[int, ...]:
    return self.train.image_shape


def build(config: ml_collections.ConfigDict) -> Run:
  """Loads ``config``'s dataset onto its mesh and binds its family's steps; checks the batch
  sizes against the mesh and the data (clear errors, before anything is compiled)."""
  if config.dataset.binarize not in BINARIZE:
    raise ValueError(f"dataset.binarize={config.dataset.binarize!r}: choose 'dynamic' (a fresh "
                     "Bernoulli draw per batch) or 'none'.")
  mesh = sharding.make_mesh(config.mesh)
  axis = config.mesh.data_axis
  sharding.check_batch_size(config.batch_size, mesh, axis)
  sharding.check_batch_size(config.eval.batch_size, mesh, axis, "eval.batch_size")
  ds_info = data.info(config.dataset.name)
  load = functools.partial(data.load_split, config.dataset.name, mesh=mesh, data_axis=axis,
                           data_dir=config.dataset.data_dir or None, cache=config.dataset.cache)
  train = load(ds_info.train_split)
  test = load(ds_info.test_split)
  if config.batch_size > train.num_examples:
    raise ValueError(f"batch_size={config.batch_size} exceeds the {train.num_examples} training "
                     "examples; lower --config.batch_size.")
  keys = dict(zip(("init", "data", "eval", "sample"),
                  jax.random.split(jax.random.PRNGKey(config.seed), 4)))
  eval_binarize_key = jax.random.PRNGKey(config.eval.binarize_seed)

  @functools.partial(jax.jit, out_shardings=sharding.data_sharded(mesh, axis))
  def prepare_test(images):
    x = data.to_float(images, test.max_value)
    return data.binarize(eval_binarize_key, x) if config.dataset.binarize == "dynamic" else x

  family = steps.get(config.model.family).from_config(config, train.image_shape)
  if "conv_impl" in config.model:
    impl = layers.resolve_conv_impl(config.model.conv_impl)
    logging.info("model.conv_impl=%r: 4x4 stride-2 convolutions as %s on %s", config.model.conv_impl,
                 "matrix products" if impl == "matmul" else "XLA convolutions", jax.default_backend())
  return Run(config, mesh, axis, train, prepare_test(test.images), test.num_examples, family,
             keys, test.labels)


def _jitted_init(run: Run):
  return jax.jit(run.family.init, out_shardings=sharding.replicated(run.mesh))


def init_state(run: Run) -> Any:
  """A fresh state of the run's family, replicated over its mesh."""
  return _jitted_init(run)(run.keys["init"])


def abstract_state(run: Run) -> Any:
  """The shapes, dtypes and shardings of :func:`init_state`, computed without running it."""
  return jax.eval_shape(_jitted_init(run), run.keys["init"])


def checkpointer(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                 async_save: Optional[bool] = None) -> checkpoint.Checkpointer:
  """The orbax checkpoints of ``<workdir>/checkpoints`` with ``config.checkpoint``'s settings."""
  return checkpoint.Checkpointer(
      pathlib.Path(workdir) / "checkpoints", max_to_keep=config.checkpoint.max_to_keep,
      async_save=config.checkpoint.async_save if async_save is None else async_save)


def restore(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
            step: Optional[int] = None,
            check: Optional[Callable[[Run], None]] = None,
            run: Optional[Run] = None) -> tuple[Run, Any]:
  """(the run of ``config``, the state saved at ``step`` of ``<workdir>/checkpoints``, default the
  newest). Raises :class:`gen_jax.checkpoint.CheckpointError` if there is none. ``check(run)``
  runs before the checkpoint is read (a command's clear error for a family it cannot serve).
  ``run``: the run of ``config`` built before (restoring several steps then builds it, and
  compiles its jitted functions, once)."""
  run = build(config) if run is None else run
  if check is not None:
    check(run)
  ckpt = checkpointer(config, workdir, async_save=False)
  try:   # no checkpoint (or none of ``step``): the checkpointer's CheckpointError names the fix
    return run, ckpt.restore(abstract_state(run), step)
  finally:
    ckpt.close()
