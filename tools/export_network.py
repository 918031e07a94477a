"""Exports a trained classifier checkpoint as a versioned weights file of gen_jax.metrics.networks.

    python tools/export_network.py --config=configs/classifier_mnist.py \
        --workdir=runs/classifier_mnist --name=mnist-cnn-v1

writes ``gen_jax/metrics/weights/mnist_cnn_v1.msgpack`` (or ``--out_dir``), measures the exported
network's test accuracy (``--skip_accuracy`` not to), and prints its SHA-256 and the ``NETWORKS``
entry to paste into ``gen_jax/metrics/networks.py``. A name already registered with another hash
is refused: a changed network needs a new version name.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import sys

if __name__ == "__main__" and not __package__:  # `python tools/x.py`: the repository root first
  sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

# pylint: disable=g-import-not-at-top,wrong-import-position
from typing import Optional, Sequence

from absl import flags
import flax.serialization
import jax

from gen_jax.metrics import networks
from gen_jax.metrics.networks import NETWORKS, WEIGHTS_DIR, NetworkSpec, WeightsHashError
from tools import cli
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FlagValues()
_CONFIG = flags.DEFINE_string("config", None, "The classifier config file it was trained with "
                              "(path[:arg]).", flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run's --workdir.", flag_values=FLAGS)
_NAME = flags.DEFINE_string("name", None, "Versioned network name, e.g. mnist-cnn-v1.",
                            flag_values=FLAGS)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).", flag_values=FLAGS)
_OUT_DIR = flags.DEFINE_string("out_dir", None, f"Output folder (default: {WEIGHTS_DIR}).",
                               flag_values=FLAGS)
_SKIP_ACCURACY = flags.DEFINE_bool("skip_accuracy", False,
                                   "Do not measure the test accuracy of the exported network.",
                                   flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir", "name"], flag_values=FLAGS)


def export(config, workdir: str | pathlib.Path, name: str, *,
           out_dir: str | pathlib.Path | None = None,
           step: Optional[int] = None) -> tuple[pathlib.Path, str, NetworkSpec]:
  """Writes the classifier parameters of ``workdir``'s newest (or ``step``'s) checkpoint, trained
  with ``config``, to ``out_dir`` (default: the package's weights folder) as ``name``'s file.

  Returns (path, sha256, the NetworkSpec to register, without test accuracy). Refuses to give a
  registered name a file with another hash: a changed network needs a new version name.
  """
  from gen_jax import checkpoint, data  # pylint: disable=import-outside-toplevel
  from gen_jax.steps import classifier as steps_lib  # pylint: disable=import-outside-toplevel
  if config.model.family != "classifier":
    raise ValueError(f"export takes a classifier config (model.family 'classifier'), got "
                     f"{config.model.family!r}.")
  ckpt = checkpoint.Checkpointer(pathlib.Path(workdir) / "checkpoints")
  try:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint in {ckpt.directory}: train first with "
                              f"python launch.py --config=... --workdir={workdir}")
    data_dir = config.dataset.data_dir or None   # the image shape is the dataset's
    image_shape = tuple(data.read_rows(config.dataset.name,
                                       data.info(config.dataset.name).test_split, 0, 1,
                                       data_dir=data_dir)[0].shape[1:])
    family = steps_lib.from_config(config, image_shape)
    state = ckpt.restore(jax.eval_shape(family.init, jax.random.PRNGKey(config.seed)), step)
  finally:
    ckpt.close()
  # The file holds Flax variables ({"params": ...}), as networks.load reads them.
  blob = flax.serialization.to_bytes({"params": jax.device_get(state.params[steps_lib.NET])})
  digest = networks._sha256(blob)  # pylint: disable=protected-access
  if name in NETWORKS and NETWORKS[name].sha256 != digest:
    raise WeightsHashError(
        f"{name!r} is registered with sha256 {NETWORKS[name].sha256}; this checkpoint gives "
        f"{digest}. A changed network must get a new version name (e.g. bump -vN).")
  path = pathlib.Path(out_dir or WEIGHTS_DIR) / networks.weights_file_name(name)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(blob)
  spec = NetworkSpec(file=str(path) if out_dir else path.name, sha256=digest,
                     arch=steps_lib.model_kwargs(config),
                     dataset=config.dataset.name, image_shape=image_shape)
  return path, digest, spec


def load_config(arg: str):
  """The config of a config file argument ``path[:arg]``, as ``launch.py --config`` reads it."""
  path, _, config_arg = arg.partition(":")
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"config file {path} not found.")
  root = str(path.resolve().parent.parent)   # configs/x.py imports `configs.common`
  if root not in sys.path:
    sys.path.insert(0, root)
  module_spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(config_arg or None)


def _spec_source(name: str, spec: NetworkSpec) -> str:
  fields = ", ".join(f"{f.name}={getattr(spec, f.name)!r}" for f in dataclasses.fields(spec))
  return f"    {name!r}: NetworkSpec({fields}),"


def _main(argv: Sequence[str]) -> int:
  cli.no_arguments(argv)
  name = _NAME.value
  config = load_config(_CONFIG.value)
  path, digest, spec = export(config, _WORKDIR.value, name, out_dir=_OUT_DIR.value,
                              step=_STEP.value)
  if not _SKIP_ACCURACY.value:
    net = networks.load(name, registry={name: spec})
    images, labels = networks.labelled_test_split(
        spec.dataset, data_dir=config.dataset.data_dir or None)
    spec = dataclasses.replace(spec, test_accuracy=round(networks.accuracy(net, images, labels), 4))
  spec = dataclasses.replace(spec, config=_CONFIG.value.partition(":")[0])
  print(f"wrote  {path} ({path.stat().st_size} bytes)")
  print(f"sha256 {digest}")
  if spec.test_accuracy is not None:
    print(f"test accuracy {spec.test_accuracy:.4f} ({spec.dataset})")
  print("NETWORKS entry for gen_jax/metrics/networks.py:")
  print(_spec_source(name, spec))
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command; ``argv``: the arguments after the program name (default ``sys.argv[1:]``)."""
  return cli.run(_main, FLAGS, argv, doc=__doc__, program="tools/export_network.py")


if __name__ == "__main__":
  sys.exit(main())
