"""The study: every family trained, measured and compared the same way, on five axes, and the
claims of the field checked against the measurements.

    python launch.py --mode=study --config=configs/study_mnist.py:quick --workdir=runs/study_quick
    python -m gen_jax.study.report_cli --out=results/study_mnist_quick   # report from cards only

:mod:`gen_jax.study.runner` trains the grid (resumable), :mod:`gen_jax.study.claims` holds the
claims and the verdict logic, :mod:`gen_jax.study.report` writes the Markdown and the figures.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import time
from typing import Optional

import ml_collections

from gen_jax import cards as cards_lib

CARDS = "cards.jsonl"
REPORT = "STUDY.md"
META = "study.json"      # the report's title and preamble


def run(study: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
        command: Optional[str] = None) -> pathlib.Path:
  """Trains every run of the study that has not finished (in ``<workdir>/runs``), gathers all
  their cards into ``<study.report_dir>/cards.jsonl`` (default ``<workdir>/report``), copies the
  sample grids there and writes the report; returns the report's path."""
  from gen_jax.study import runner  # pylint: disable=import-outside-toplevel
  restore_from_report(study, workdir)
  t0 = time.time()
  runner.run_all(study, workdir, command=command)
  logging.info("study: %d runs' cards in %.0f s", len(runner.specs(study)), time.time() - t0)
  return report_from_runs(study, workdir, command=command)


def _report_dir(study: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> pathlib.Path:
  return pathlib.Path(study.report_dir or pathlib.Path(workdir) / "report")


def restore_from_report(study: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> list[str]:
  """Marks the runs whose cards the report folder already holds (a committed, possibly partial
  study) as finished in ``<workdir>/runs``, so that a fresh checkout trains only the rest; returns
  their names. Cards of a run whose training config has changed since (another ``config_hash``:
  the protocol or the family's config file was edited) are left out, so that run is trained
  again."""
  from gen_jax.study import runner  # pylint: disable=import-outside-toplevel
  path = _report_dir(study, workdir) / CARDS
  if not path.exists():
    return []
  by_file: dict[tuple[str, str], list] = {}
  hashes: dict[str, str] = {}
  stale = set()
  for c in cards_lib.read([path]):
    spec = runner.RunSpec(c["model"], (c.get("seeds") or {}).get("train", 0),
                          c.get("lr_scale", 1.0), c.get("batch_scale", 1.0))
    if c.get("config_hash") and c["model"] in study.families:
      if spec.name not in hashes:
        hashes[spec.name] = cards_lib.config_hash(runner.run_config(study, spec))
      if c["config_hash"] != hashes[spec.name]:
        stale.add(spec.name)
        continue
    by_file.setdefault((spec.name, runner.file_of(c["metric"])), []).append(c)
  if stale:
    logging.warning("study: %d runs of %s were measured under another config (the protocol or "
                    "the family's config changed since); they are trained again: %s", len(stale),
                    path, ", ".join(sorted(stale)))
  restored = []
  for spec in runner.specs(study):
    todo = [name for name in runner.STAGE_FILES if (spec.name, name) in by_file
            and not (pathlib.Path(workdir) / "runs" / spec.name / name).exists()]
    for name in todo:
      cards_lib.write(pathlib.Path(workdir) / "runs" / spec.name / name, by_file[spec.name, name])
    if todo:
      restored.append(spec.name)
  if restored:
    logging.info("study: %d finished runs restored from %s", len(restored), path)
  return restored


def report_from_runs(study: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     command: Optional[str] = None) -> pathlib.Path:
  """The report of the runs of ``<workdir>/runs`` that have finished (all of them after
  :func:`run`; those done so far while a study is still running), without training."""
  from gen_jax.study import runner  # pylint: disable=import-outside-toplevel
  written, missing = [], []
  for spec in runner.specs(study):
    run_dir = pathlib.Path(workdir) / "runs" / spec.name
    if not (run_dir / runner.RUN_FILE).exists():
      missing.append(spec.name)
    written += cards_lib.read([run_dir / name for name in runner.STAGE_FILES
                               if (run_dir / name).exists()])
  out = _report_dir(study, workdir)
  out.mkdir(parents=True, exist_ok=True)
  cards_lib.write(out / CARDS, written)
  for family in study.families:
    grid = pathlib.Path(workdir) / "runs" / runner.RunSpec(family, study.seeds[0]).name / "study_samples.png"
    if grid.exists():
      shutil.copyfile(grid, out / f"samples_{family}.png")
  text = preamble(study, command)
  if missing:
    text += (f"\n\n**Partial:** {len(missing)} of {len(runner.specs(study))} runs had not finished "
             f"when this report was written: {', '.join(missing)}.")
  return write_report(out, title=study.title, preamble=text)


def preamble(study: ml_collections.ConfigDict, command: Optional[str]) -> str:
  fams = ", ".join(f"{name} (`configs/{e.config}.py`"
                   + "".join(f", {k}={v}" for k, v in e.overrides) + ")"
                   for name, e in study.families.items())
  return (f"Generated by `{command or 'python launch.py --mode=study ...'}` from the runs' metric "
          f"cards (`{CARDS}` beside this file); regenerate it without training with "
          f"`python -m gen_jax.study.report_cli --out=<this folder>`.\n\n"
          f"Protocol: {study.dataset}; every family trained on {study.budget_images:,} images "
          f"(its own batch size and optimizer), seeds {tuple(study.seeds)}, learning-rate scales "
          f"{tuple(study.lr_scales)} and batch scales {tuple(study.batch_scales)} at the first seed; "
          f"{study.num_evals} evaluations per run; sample quality of {study.num_samples:,} samples "
          f"against {study.num_real:,} test images in the domain network's features (the same for "
          f"every family). "
          + (f"Applications at every seed's base run, from its final checkpoint, with "
             + ", ".join(f"{k}={v}" for k, v in study.apps_overrides) + ". "
             if study.get("applications") else "")
          + f"Families: {fams}.")


def write_report(out: str | pathlib.Path, *, title: str, preamble: str) -> pathlib.Path:
  """``<out>/STUDY.md`` and its PNGs from ``<out>/cards.jsonl`` (and ``samples_*.png``)."""
  from gen_jax.study import report  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(out)
  cards = cards_lib.read([out / CARDS])
  summary = report.summarize(cards)
  verdicts = report.verdicts(summary)
  grids = {p.stem[len("samples_"):]: p for p in sorted(out.glob("samples_*.png"))}
  names = report.figures(cards, summary, out, grids)
  path = out / REPORT
  (out / META).write_text(json.dumps({"title": title, "preamble": preamble}, indent=1) + "\n")
  path.write_text(report.markdown(summary, verdicts, title=title, preamble=preamble,
                                  figure_names=names, cost_lines=report.cost(cards)))
  return path


def regenerate(out: str | pathlib.Path, title: Optional[str] = None) -> pathlib.Path:
  """The report of ``out`` again from its committed cards and preamble (no training)."""
  out = pathlib.Path(out)
  meta = json.loads((out / META).read_text())
  return write_report(out, title=title or meta["title"], preamble=meta["preamble"])


