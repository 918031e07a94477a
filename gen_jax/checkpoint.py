"""Checkpoints with orbax: async saves, keep N, resume from the newest, clear errors.

The state pytree is saved whole (every network, optimizer state, step and key). The data order is a
pure function of the step, so no iterator position needs saving. Restoring uses an abstract target
that carries the shardings, so arrays come back already placed on the mesh.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be read; nothing on disk was changed."""


class Checkpointer:
  """A thin wrapper over ``ocp.CheckpointManager`` for one state pytree."""

  def __init__(self, directory: str | pathlib.Path, *, max_to_keep: int = 3,
               async_save: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=async_save))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, *, wait: bool = False) -> None:
    """Starts saving ``state`` as ``step`` (async unless ``wait``); a step saved already is skipped."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    if wait:
      self._manager.wait_until_finished()

  def restore(self, state_like: Any, step: Optional[int] = None) -> Any:
    """The state saved at ``step`` (default: the newest), shaped and sharded like ``state_like``."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}: train first (python launch.py "
                            "--config=... --workdir=<the same folder>), or point --workdir at a "
                            "finished run.")
    if step not in self.all_steps():
      raise CheckpointError(
          f"no checkpoint of step {step} in {self.directory}: it holds steps "
          f"{self.all_steps()}; pick one of them (or train to that step first).")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
    try:
      restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax/tensorstore raise many kinds for damaged files
      older = [s for s in self.all_steps() if s < step]
      hint = (f"Move {self.directory / str(step)} aside to resume from step {max(older)}"
              if older else "Move it aside (or use a new --workdir) to start afresh")
      raise CheckpointError(
          f"checkpoint step {step} in {self.directory} cannot be read "
          f"({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}). "
          f"Nothing was deleted. {hint}.") from e
    logging.info("restored step %d from %s", step, self.directory)
    return restored

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
