"""Trains and evaluates a model described by an ml_collections config file.

    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist
    python launch.py --config=configs/vae_mnist.py:tiny --config.batch_size=64 --workdir=/tmp/t
    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist --mode=eval

The config is locked: an override of a field the config does not have is an error. Rerunning with
the same --workdir resumes from its newest checkpoint.
"""

import functools
import importlib
import logging
import os
import pathlib
import sys

if __name__ == "__main__":  # the repository root (`configs`, `tools`, this checkout's gen_jax)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from tools import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (path[:arg]).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and images go.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "eval", "apps", "probe", "compress", "floor", "study"],
    "train: train (or resume) and evaluate; eval: evaluate the newest checkpoint of --workdir "
    "(samples, sample-quality metrics, likelihood k sweep, metric cards); apps: the applications "
    "of that checkpoint (completion for every mask, interpolation, path length; PNGs in "
    "<workdir>/apps/, cards in <workdir>/apps_cards.jsonl); floor: metric cards of real train vs "
    "real test images of the config's dataset; probe: linear probes (100 labels to all), k-NN and "
    "trustworthiness of that checkpoint's features and of pixels and PCA (cards in "
    "<workdir>/probe_cards.jsonl); compress: its rate-distortion curve as a codec, next to PCA, "
    "JPEG, WebP and PNG (<workdir>/compress/, <workdir>/compress_cards.jsonl); study: the study of "
    "a study config (configs/study_mnist.py): its runs in <workdir>/runs (resumable), its cards and "
    "report in the config's report_dir.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False,
    "Call jax.distributed.initialize() first. On a Cloud TPU VM pod, SLURM or Open MPI it finds "
    "its peers itself; elsewhere give --coordinator_address, --num_processes and --process_id.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for --multihost where JAX cannot detect "
    "the cluster (e.g. two processes on one machine: localhost:12355).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes of a --multihost run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes-1.")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_secs", 100, "--multihost: a peer silent this long is taken for dead and "
    "JAX stops every process (rerun them all to resume from the newest checkpoint).")
flags.mark_flags_as_required(["config", "workdir"])
_FLAG_HINT = ("Pass --helpfull to see the flags; an override must name a field that the config "
              "file defines.")


def main(argv):
  for handler in logging.getLogger().handlers:
    handler.addFilter(cli.QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import jax  # after flag parsing, so --help is fast
  from gen_jax import checkpoint, data, distributed, train
  if _MULTIHOST.value:
    try:
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                             heartbeat_timeout_secs=_HEARTBEAT.value)
    except ValueError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  elif any(f.value is not None for f in (_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID)):
    raise app.UsageError("--coordinator_address, --num_processes and --process_id need --multihost.")
  if not jax.config.jax_compilation_cache_dir:   # JAX_COMPILATION_CACHE_DIR wins where it is set
    # A rerun, a resume after preemption and the eval modes reuse the compiled steps.
    jax.config.update("jax_compilation_cache_dir", str(data.cache_dir() / "xla"))
  logging.info("JAX %s on %d %s device(s), %d process(es)", jax.__version__, jax.device_count(),
               jax.devices()[0].platform, jax.process_count())
  config = _CONFIG.value
  try:
    config.keys()  # a config file that failed to load raises here, not at flag parsing
  except OSError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  try:
    if ("families" in config) != (_MODE.value == "study"):
      raise ValueError("--mode=study runs a study config (configs/study_mnist.py, "
                       "study_fashion_mnist.py), and the other modes a model config "
                       f"(configs/vae_mnist.py, ...): got --mode={_MODE.value} with "
                       f"{'a study' if 'families' in config else 'a model'} config.")
    if _MODE.value == "train":
      train.train_and_evaluate(config, _WORKDIR.value)
    elif _MODE.value == "study":
      from gen_jax import study  # pylint: disable=import-outside-toplevel
      path = study.run(config, _WORKDIR.value, command=" ".join(["python", *sys.argv]))
      print(f"the study's report: {path}")
    else:
      from gen_jax import cards, evaluate  # the metrics' feature networks load only here
      command = " ".join(["python", *sys.argv])
      workdir = pathlib.Path(_WORKDIR.value)
      if _MODE.value == "apps":
        from gen_jax.applications import suite  # pylint: disable=import-outside-toplevel
        written = suite.evaluate_workdir(config, workdir, command=command)
        path = workdir / "apps_cards.jsonl"
      elif _MODE.value in ("probe", "compress"):
        module = importlib.import_module(f"gen_jax.representation.{_MODE.value}")
        written = module.evaluate_workdir(config, workdir, command=command)
        path = workdir / f"{_MODE.value}_cards.jsonl"
      else:
        if _MODE.value == "eval":
          written = evaluate.evaluate_workdir(config, workdir, command=command)
        else:
          written = evaluate.real_floor(config, num=config.eval.num_samples, command=command)
        path = cards.write(workdir / "cards.jsonl", written)
      for c in written:
        what = "".join(f" ({f}={c[f]})" if f in ("labels", "quant_step") else f" ({c[f]})"
                       for f in ("model", "mask", "features", "labels", "codec", "quant_step")
                       if _MODE.value in ("apps", "probe", "compress") and c.get(f) is not None)
        print(f"{c['metric']}{what}{' (k=%d)' % c['k'] if c.get('k') else ''}: {c['value']:.4f}"
              + (f" ± {c['std']:.4f}" if c["std"] is not None else "") + f" {c['unit']}".rstrip())
      print(f"{len(written)} metric cards in {path}")
  except (data.DatasetError, checkpoint.CheckpointError, train.TrainingDivergedError,
          ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=functools.partial(cli.parse_flags, hint=_FLAG_HINT))
