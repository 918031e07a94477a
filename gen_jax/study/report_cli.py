"""Regenerates a study's report from its committed cards: ``python -m gen_jax.study.report_cli
--out=results/study_mnist_quick`` (STUDY.md and the PNGs, byte for byte, no training)."""

import argparse

from gen_jax import study


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="the study's report folder (cards.jsonl in it)")
  args = parser.parse_args(argv)
  print(study.regenerate(args.out))


if __name__ == "__main__":
  main()
