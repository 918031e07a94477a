"""Regenerates README.md's results tables from committed metric cards (gen_jax.cards).

    python tools/cards.py README.md results/*.jsonl
    python tools/cards.py README.md results/*.jsonl --compare=results/floor_mnist.jsonl \
        --compare=results/seeds_mnist.jsonl

rewrites the block between ``<!-- cards:begin -->`` and ``<!-- cards:end -->`` of the README (the
first argument) with one row per card of the card files (the other arguments), and, with
``--compare`` (repeated), the block between ``<!-- compare:begin -->`` and ``<!-- compare:end -->``
with one row per model and one column per metric, ranked by FID; with ``--apps`` (repeated), the
block between ``<!-- apps:begin -->`` and ``<!-- apps:end -->`` with the applications table (one
row per model: completion PSNR and classifier accuracy per mask, path lengths); likewise
``--repr`` (``launch.py --mode=probe`` cards: linear probes, k-NN, trustworthiness per feature
source) and ``--compress`` (``--mode=compress`` cards: rates and distortions of every codec), and
``--plot_rd=FILE.png`` plots the ``--compress`` cards' rate-distortion curves.
"""

from __future__ import annotations

import pathlib
import sys

if __name__ == "__main__" and not __package__:  # `python tools/x.py`: the repository root first
  sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

# pylint: disable=g-import-not-at-top,wrong-import-position
from typing import Optional, Sequence

from absl import app, flags

from gen_jax import cards
from tools import cli
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FlagValues()
_COMPARE = flags.DEFINE_multi_string(
    "compare", [], "Card files for the model-by-metric comparison table (repeat the flag).",
    flag_values=FLAGS)
_APPS = flags.DEFINE_multi_string(
    "apps", [], "Card files of launch.py --mode=apps for the applications table (repeat the flag).",
    flag_values=FLAGS)


_REPR = flags.DEFINE_multi_string(
    "repr", [], "Card files of launch.py --mode=probe for the representation tables (repeat).",
    flag_values=FLAGS)
_COMPRESS = flags.DEFINE_multi_string(
    "compress", [], "Card files of launch.py --mode=compress for the codec table (repeat).",
    flag_values=FLAGS)
_PLOT_RD = flags.DEFINE_string(
    "plot_rd", None, "Also plot the --compress cards' rate-distortion curves to this PNG.",
    flag_values=FLAGS)


def _main(argv: Sequence[str]) -> int:
  if len(argv) < 3:
    raise app.UsageError("usage: python tools/cards.py README.md CARDS.jsonl ... "
                         "[--compare=CARDS.jsonl ...]")
  readme, card_files = argv[1], sorted(argv[2:])
  n = cards.update_readme(readme, card_files, _COMPARE.value, _APPS.value, _REPR.value,
                          _COMPRESS.value)
  print(f"{readme}: table of {n} cards from {len(card_files)} file(s)")
  if _PLOT_RD.value:
    from gen_jax.representation import compress  # pylint: disable=import-outside-toplevel
    path = compress.plot(cards.read(_COMPRESS.value), _PLOT_RD.value,
                         title="rate-distortion on the test set (from the cards)")
    print(f"rate-distortion plot in {path}")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command; ``argv``: the arguments after the program name (default ``sys.argv[1:]``)."""
  return cli.run(_main, FLAGS, argv, doc=__doc__, program="tools/cards.py")


if __name__ == "__main__":
  sys.exit(main())
