"""k-nearest-neighbour test accuracy on a trained model's encoder features (gen_jax.evaluate_repr).

    python tools/knn.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist
    python tools/knn.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist \
        --k=1 --k=5 --metric=cosine --pixels

restores the newest checkpoint of ``--workdir`` (trained with ``--config``, which takes the same
``path[:arg]`` and ``--config.field=value`` overrides as launch.py), prints one line per (k,
metric) and writes one metric card per number to ``<workdir>/knn_cards.jsonl`` (beside
``--mode=eval``'s ``cards.jsonl``). ``--pixels`` adds the same classifier on raw pixels, the
baseline any feature must be read against.
"""

from __future__ import annotations

import pathlib
import sys

if __name__ == "__main__" and not __package__:  # `python tools/x.py`: the repository root first
  sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

# pylint: disable=g-import-not-at-top,wrong-import-position
from typing import Optional, Sequence

from absl import flags
from ml_collections import config_flags

from tools import cli
# pylint: enable=g-import-not-at-top,wrong-import-position

PROGRAM = "tools/knn.py"
METRICS = ("euclidean", "cosine")  # gen_jax.evaluate_repr.METRICS, without importing JAX for --help
FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (path[:arg]).",
                                          flag_values=FLAGS, lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's folder (its checkpoints/).",
                               flag_values=FLAGS)
_KS = flags.DEFINE_multi_integer("k", [1], "Neighbours (repeat the flag for several).",
                                 lower_bound=1, flag_values=FLAGS)
_METRIC = flags.DEFINE_multi_enum("metric", ["euclidean"], list(METRICS), "Distance(s).",
                                  flag_values=FLAGS)
_PIXELS = flags.DEFINE_bool("pixels", False, "Also k-NN on raw pixels (the baseline).",
                            flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir"], flag_values=FLAGS)


def _main(argv: Sequence[str], *, command: str) -> int:
  cli.no_arguments(argv)
  from gen_jax import cards, evaluate_repr  # pylint: disable=import-outside-toplevel
  written = evaluate_repr.knn_from_workdir(_CONFIG.value, _WORKDIR.value, ks=_KS.value,
                                           metrics=_METRIC.value, pixels=_PIXELS.value,
                                           command=command)
  for c in written:
    print(f"knn_accuracy: {c['value']:.4f} ({c['notes']}, step {c['step']})")
  path = cards.write(pathlib.Path(_WORKDIR.value) / "knn_cards.jsonl", written)
  print(f"{len(written)} metric cards in {path}")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command; ``argv``: the arguments after the program name (default ``sys.argv[1:]``)."""
  return cli.run_recording_command(_main, FLAGS, argv, doc=__doc__, program=PROGRAM)


if __name__ == "__main__":
  sys.exit(main())
