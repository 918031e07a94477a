"""Many processes, one program: JAX's multi-controller runtime, started from ``launch.py``.

Every process runs the same ``launch.py`` command (plus ``--multihost``); together they see all
devices as one mesh. Each process reads only the data rows of its own devices
(:func:`gen_jax.data.load_split`), all of them take part in every jitted step and in each orbax
save, and only process 0 writes metrics, images and cards. On CPU the cross-process collectives go
through gloo, which JAX ships.

    # two processes with 4 CPU devices each, on one machine (what tests/test_distributed.py runs)
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python launch.py --config=... --workdir=w \\
        --multihost --coordinator_address=localhost:12355 --num_processes=2 --process_id=0
    # ... and the same with --process_id=1
"""

from __future__ import annotations

import logging
from typing import Optional

import jax


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, *, heartbeat_timeout_secs: int = 100) -> None:
  """``jax.distributed.initialize`` with gloo collectives on CPU; with no arguments JAX detects the
  cluster (Cloud TPU VM, SLURM, Open MPI); otherwise all three must be given.

  A process that dies (killed, preempted, out of memory) stops sending heartbeats; after
  ``heartbeat_timeout_secs`` JAX's coordination service stops every other process ("another task
  died"). A save in flight is then never committed (orbax writes into a temporary folder and
  renames it when every process has finished), so rerunning all processes resumes from the newest
  committed checkpoint.
  """
  given = [a is not None for a in (coordinator_address, num_processes, process_id)]
  if any(given) and not all(given):
    raise ValueError("give all of --coordinator_address, --num_processes and --process_id, or none "
                     "of them (then JAX detects a Cloud TPU VM, SLURM or Open MPI cluster).")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id} is not in 0 .. {num_processes - 1} "
                     f"(--num_processes={num_processes}).")
  # Cross-process collectives of CPU devices need an implementation; it is ignored on GPU and TPU.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id, heartbeat_timeout_seconds=heartbeat_timeout_secs)
  logging.info("process %d of %d: %d local of %d devices; if a peer dies, JAX stops this process "
               "after %d s without its heartbeat: rerun every process with the same command to "
               "resume from the newest checkpoint", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count(), heartbeat_timeout_secs)
