"""A study's report without training: from its committed cards, or from the finished runs of a
study that is still running (or was stopped).

    python -m gen_jax.study.report_cli --out=results/study_mnist_quick     # STUDY.md and PNGs again
    python -m gen_jax.study.report_cli --config=study_mnist:quick --workdir=runs/study_quick
"""

import argparse

from gen_jax import study


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", help="a report folder (cards.jsonl and study.json in it)")
  parser.add_argument("--config", help="a study config of configs/, name[:arg], with --workdir")
  parser.add_argument("--workdir", help="the study's --workdir (its runs/)")
  args = parser.parse_args(argv)
  if args.config and args.workdir:
    import configs  # pylint: disable=import-outside-toplevel
    config = configs.load(args.config)
    print(study.report_from_runs(config, args.workdir, command=" ".join(
        ["python -m gen_jax.study.report_cli", f"--config={args.config}", f"--workdir={args.workdir}"])))
  elif args.out:
    print(study.regenerate(args.out))
  else:
    parser.error("give --out, or --config and --workdir")


if __name__ == "__main__":
  main()
