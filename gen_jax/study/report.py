"""The study's report: every axis per family, the claims with their verdicts, and the figures, all
computed from the runs' metric cards (so the report regenerates without training, byte for byte).

    python -m gen_jax.study --config=configs/study_mnist.py --out=results/study_mnist --report_only

:func:`summarize` turns the cards into one :class:`~gen_jax.study.claims.Estimate` per family and
study metric (means and standard errors over seeds; sweeps and curves reduced as each metric's
docstring in :data:`DERIVED` says); :func:`markdown` renders them; :func:`figures` draws the PNGs.
"""

from __future__ import annotations

import collections
import math
import pathlib
import statistics
from typing import Any, Iterable, Mapping, Optional, Sequence

from gen_jax.study import claims as claims_lib
from gen_jax.study.claims import Estimate

QUALITY = ("fid", "precision", "recall", "inception_score", "modes_covered", "nll", "fid_inception")
# the applications axis (gen_jax/study/runner.py applications)
APPLICATIONS = ("completion_accuracy", "probe_accuracy_100", "recon_accuracy", "bits_at_accuracy")
DERIVED = {
    "fid_seed_cv": "standard deviation / mean of the final FID over seeds",
    "fid_lr_sensitivity": "worst / best final FID over the learning-rate sweep (first seed)",
    "fid_batch_sensitivity": "worst / best final FID over the batch sweep (first seed)",
    "failure_rate": "share of all the family's runs that diverged or collapsed",
    "fid_oscillation": "mean |change of log FID| between evaluations in the second half of training",
    "secs_to_threshold": "loop wall-clock until FID first reaches twice its final value",
    "steps_to_threshold": "train steps until FID first reaches twice its final value",
    "steady_images_per_sec": "training images/s between the first and the last kept checkpoint "
                             "(the loop's images/s counts its first chunk's compilation)",
    "total_train_tflops": "training FLOPs per image x images trained, in TFLOP",
}


def _by(cards: Iterable[Mapping[str, Any]], **match) -> list[Mapping[str, Any]]:
  return [c for c in cards if all(c.get(k) == v for k, v in match.items())]


def _is_base(c: Mapping[str, Any]) -> bool:
  return c.get("lr_scale", 1.0) == 1.0 and c.get("batch_scale", 1.0) == 1.0


def _seed(c: Mapping[str, Any]) -> int:
  return (c.get("seeds") or {}).get("train", 0)


def _curves(cards: Sequence[Mapping[str, Any]], family: str, base_only: bool = True
            ) -> dict[int, list[tuple[int, Optional[float], float]]]:
  """{seed: [(step, secs, fid), ...] sorted by step} of the family's base runs."""
  out = collections.defaultdict(list)
  for c in _by(cards, metric="fid_curve", model=family):
    if _is_base(c) or not base_only:
      out[_seed(c)].append((c["step"], c.get("secs"), c["value"]))
  return {s: sorted(v) for s, v in sorted(out.items())}


def _steady_rate(curve, batch_size: Optional[int]) -> Optional[float]:
  """Images/s between the curve's first and last points with a clock (compilation excluded)."""
  timed = [(step, secs) for step, secs, _ in curve if secs is not None]
  if not batch_size or len(timed) < 2 or timed[-1][1] <= timed[0][1]:
    return None
  return (timed[-1][0] - timed[0][0]) * batch_size / (timed[-1][1] - timed[0][1])


def _threshold(curve, final: float) -> tuple[Optional[int], Optional[float]]:
  for step, secs, fid in curve:
    if fid <= 2 * final:
      return step, secs
  return None, None


def _oscillation(curve) -> Optional[float]:
  tail = [fid for _, _, fid in curve[len(curve) // 2:]]
  if len(tail) < 2 or min(tail) <= 0:
    return None
  logs = [math.log(f) for f in tail]
  return statistics.fmean(abs(b - a) for a, b in zip(logs, logs[1:]))


def _sweep_ratio(cards, family: str, field: str) -> Optional[float]:
  """Worst / best final FID over the sweep of ``field`` ('lr_scale' or 'batch_scale') at the first
  seed (the other scale 1); infinite if a run of the sweep diverged or collapsed."""
  other = "batch_scale" if field == "lr_scale" else "lr_scale"
  mine = [c for c in cards if c.get("model") == family and c.get(other, 1.0) == 1.0
          and c["metric"] in ("fid", "diverged", "collapsed")]
  if not mine:
    return None
  first = min(_seed(c) for c in mine)
  mine = [c for c in mine if _seed(c) == first]
  if len({c.get(field, 1.0) for c in mine}) < 2:
    return None
  if any(c["value"] for c in mine if c["metric"] != "fid"):
    return math.inf
  fids = [c["value"] for c in mine if c["metric"] == "fid"]
  return max(fids) / min(fids) if fids else None   # a family without samples (the AE)


def families(cards: Sequence[Mapping[str, Any]]) -> list[str]:
  return sorted({c["model"] for c in cards if c.get("model")})


def summarize(cards: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Estimate]]:
  """{family: {study metric: Estimate}} from the runs' cards."""
  out: dict[str, dict[str, Estimate]] = {}
  for fam in families(cards):
    s: dict[str, Estimate] = {}
    base = [c for c in cards if c.get("model") == fam and _is_base(c)]
    for metric in QUALITY + ("train_images_per_sec", "wall_secs") + APPLICATIONS:
      values = [c["value"] for c in _by(base, metric=metric)]
      if values:
        s[metric] = Estimate.of(values)
    for metric in ("params", "train_flops_per_image", "train_peak_memory"):
      values = [c["value"] for c in _by(base, metric=metric)]
      if values:
        s[metric] = Estimate(values[0], 0.0, 1)
    fids = [c["value"] for c in _by(base, metric="fid")]
    if len(fids) > 1:
      s["fid_seed_cv"] = Estimate(statistics.stdev(fids) / statistics.fmean(fids), 0.0, len(fids))
    for field, name in (("lr_scale", "fid_lr_sensitivity"), ("batch_scale", "fid_batch_sensitivity")):
      ratio = _sweep_ratio(cards, fam, field)
      if ratio is not None:
        s[name] = Estimate(ratio, 0.0, 1)
    runs = collections.defaultdict(int)
    for c in cards:
      if c.get("model") == fam and c["metric"] in ("diverged", "collapsed"):
        key = (_seed(c), c.get("lr_scale", 1.0), c.get("batch_scale", 1.0))
        runs[key] = max(runs[key], int(c["value"]))
    if runs:
      s["failure_rate"] = Estimate(sum(runs.values()) / len(runs), 0.0, len(runs))
    finals = {_seed(c): c["value"] for c in _by(base, metric="fid")}
    batches = {_seed(c): c.get("batch_size") for c in _by(base, metric="fid_curve")}
    osc, secs, steps, steady = [], [], [], []
    for seed, curve in _curves(cards, fam).items():
      o = _oscillation(curve)
      if o is not None:
        osc.append(o)
      rate = _steady_rate(curve, batches.get(seed))
      if rate is not None:
        steady.append(rate)
      if seed in finals:
        st, se = _threshold(curve, finals[seed])
        if st is not None:
          steps.append(st)
        if se is not None:
          secs.append(se)
    for name, values in (("fid_oscillation", osc), ("secs_to_threshold", secs),
                         ("steps_to_threshold", steps), ("steady_images_per_sec", steady)):
      if values:
        s[name] = Estimate.of(values)
    if "train_flops_per_image" in s:
      images = [c["batch_size"] * c["step"] for c in _by(base, metric="fid")
                if c.get("batch_size") and c.get("step")]
      if images:
        s["total_train_tflops"] = Estimate(s["train_flops_per_image"].mean * images[0] / 1e12, 0.0, 1)
    out[fam] = s
  return out


def verdicts(summary: Mapping[str, Mapping[str, Estimate]],
             claims: Sequence[claims_lib.Claim] = claims_lib.CLAIMS) -> list[claims_lib.Verdict]:
  return [claims_lib.verdict(c, {f: m[c.metric] for f, m in summary.items() if c.metric in m})
          for c in claims]


# ---------------------------------------------------------------------------------------------
# Markdown.


def _cell(e: Optional[Estimate], scale: float = 1.0, digits: int = 3) -> str:
  if e is None:
    return "—"
  if math.isinf(e.mean):
    return "∞ (a run failed)"
  text = f"{e.mean * scale:.{digits}g}"
  if e.n > 1 and e.se:
    text += f" ± {e.se * scale:.2g}"
  return text


AXES = {
    "Quality": [("fid", "FID ↓", 1, 3), ("precision", "precision ↑", 1, 3),
                ("recall", "recall ↑", 1, 3), ("inception_score", "IS ↑", 1, 3),
                ("modes_covered", "classes", 1, 3), ("nll", "NLL (nats) ↓", 1, 4),
                ("fid_inception", "Inception FID ↓ (finalists)", 1, 4)],
    "Stability": [("fid_seed_cv", "FID CV over seeds ↓", 1, 2),
                  ("fid_lr_sensitivity", "LR sweep worst/best ↓", 1, 3),
                  ("fid_batch_sensitivity", "batch sweep worst/best ↓", 1, 3),
                  ("failure_rate", "failed runs ↓", 1, 2),
                  ("fid_oscillation", "oscillation ↓", 1, 2)],
    "Speed": [("train_images_per_sec", "train images/s ↑", 1, 4),
              ("steady_images_per_sec", "images/s after the first checkpoint ↑", 1, 4),
              ("secs_to_threshold", "s to 2× final FID ↓", 1, 3),
              ("steps_to_threshold", "steps to 2× final FID ↓", 1, 3),
              ("wall_secs", "run wall-clock (s)", 1, 3)],
    "Compute": [("params", "parameters", 1e-6, 3), ("train_flops_per_image", "MFLOP / image", 1e-6, 4),
                ("total_train_tflops", "training TFLOP", 1, 3),
                ("train_peak_memory", "step peak MiB", 1 / 2**20, 4)],
    "Applications": [("completion_accuracy", "bottom-half completion accuracy ↑", 1, 3),
                     ("probe_accuracy_100", "linear probe, 100 labels ↑", 1, 3),
                     ("recon_accuracy", "reconstruction accuracy ↑", 1, 3),
                     ("bits_at_accuracy", "bits/image at 95 % accuracy ↓", 1, 3)],
}


# the stage-time cards of gen_jax/study/runner.py (one per stage file of a run) and their headers
STAGES = (("secs_training", "training and judging"), ("secs_applications", "applications"),
          ("secs_inception", "Inception FID"))


def _minutes(secs: float) -> str:
  return f"{secs / 60:.1f}"


def cost(cards: Sequence[Mapping[str, Any]]) -> list[str]:
  """The section on what the study cost: each family's wall-clock per stage (summed over its runs,
  from the runner's ``secs_*`` cards), in minutes, and the total; empty without those cards."""
  staged = [c for c in cards if c["metric"] in dict(STAGES)]
  if not staged:
    return []
  devices = sorted({f"{c.get('device_count', 1)} × {c.get('device_kind', '?')}" for c in staged
                    if c["metric"] == STAGES[0][0]})
  lines = ["## What the study cost", "",
           f"Wall-clock minutes of each stage, summed over the family's runs (start-up and "
           f"compilation included), on {', '.join(devices)}.", "",
           "| family | runs | " + " | ".join(h for _, h in STAGES) + " | total |",
           "|---|---|" + "---|" * (len(STAGES) + 1)]
  totals = [0.0] * len(STAGES)
  for fam in families(staged):
    row = [sum(c["value"] for c in _by(staged, metric=m, model=fam)) for m, _ in STAGES]
    runs = len(_by(staged, metric=STAGES[0][0], model=fam))
    totals = [t + r for t, r in zip(totals, row)]
    lines.append(f"| {fam} | {runs} | " + " | ".join(_minutes(v) if v else "—" for v in row)
                 + f" | {_minutes(sum(row))} |")
  runs = len(_by(staged, metric=STAGES[0][0]))
  lines += [f"| **all** | {runs} | " + " | ".join(_minutes(v) for v in totals)
            + f" | **{_minutes(sum(totals))}** |", ""]
  return lines


def markdown(summary: Mapping[str, Mapping[str, Estimate]], verdict_list: Sequence[claims_lib.Verdict],
             *, title: str, preamble: str, figure_names: Sequence[str],
             cost_lines: Sequence[str] = ()) -> str:
  lines = [f"# {title}", "", preamble.strip(), ""]
  fams = list(summary)
  lines += ["## The claims, checked", "",
            "| claim | source | axis | test | a | b | verdict | why |", "|---|---|---|---|---|---|---|---|"]
  for v in verdict_list:
    c = v.claim
    a = "; ".join(f"{f} {v.estimates[f]}" for f in c.a if f in v.estimates) or "—"
    b = "; ".join(f"{f} {v.estimates[f]}" for f in c.b if f in v.estimates) or "—"
    lines.append(f"| “{c.quote}” | {c.source} | {c.axis} | {c.metric} ({c.better} is better): "
                 f"{c.test} | {a} | {b} | **{v.verdict}** | {v.reason()} |")
  lines += ["", "A pair is decided when the means differ by more than 2 standard errors of the "
            "difference (standard errors over seeds; a metric measured once has none, and any "
            "difference decides). *supported*: every pair goes the claimed way; *contradicted*: every "
            "pair goes the other way; *no difference*: every pair is a tie; *depends*: the pairs "
            "split, as listed.", ""]
  for axis, columns in AXES.items():
    lines += [f"## {axis}", "", "| family | " + " | ".join(h for _, h, _, _ in columns) + " |",
              "|---|" + "---|" * len(columns)]
    for fam in fams:
      m = summary[fam]
      lines.append(f"| {fam} | " + " | ".join(_cell(m.get(k), sc, d) for k, _, sc, d in columns)
                   + " |")
    lines.append("")
  lines += ["Derived metrics: " + "; ".join(f"*{k}*: {v}" for k, v in DERIVED.items()) + ".", ""]
  lines += list(cost_lines)
  if figure_names:
    lines += ["## Figures", ""]
    lines += [f"![{name}]({name})" for name in figure_names]
    lines.append("")
  return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib, Agg; no timestamps in the files, so they regenerate byte for byte).


def _save(fig, path: pathlib.Path) -> None:
  fig.savefig(path, dpi=100, metadata={"Software": None}, bbox_inches="tight")


def figures(cards: Sequence[Mapping[str, Any]], summary: Mapping[str, Mapping[str, Estimate]],
            out_dir: pathlib.Path, sample_grids: Optional[Mapping[str, pathlib.Path]] = None
            ) -> list[str]:
  """The study's PNGs in ``out_dir``; returns their file names."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  out_dir.mkdir(parents=True, exist_ok=True)
  names = []
  fams = list(summary)
  colors = {f: plt.get_cmap("tab20")(i % 20) for i, f in enumerate(fams)}

  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  for fam in fams:
    flops = summary[fam].get("train_flops_per_image")
    for seed, curve in _curves(cards, fam).items():
      batch = next((c["batch_size"] for c in _by(cards, model=fam, metric="fid_curve")
                    if _is_base(c) and c.get("batch_size")), None)
      label = fam if seed == min(_curves(cards, fam)) else None
      secs = [(s, f) for _, s, f in curve if s is not None]
      if secs:
        axes[0].plot(*zip(*secs), "-o", ms=3, color=colors[fam], label=label)
      if flops is not None and batch:
        axes[1].plot([st * batch * flops.mean for st, _, _ in curve], [f for _, _, f in curve], "-o",
                     ms=3, color=colors[fam], label=label)
  for ax, xlabel in zip(axes, ("training wall-clock (s)", "training FLOPs")):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("FID (domain network)")
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=7, ncol=2)
  _save(fig, out_dir / "quality_vs_time_and_flops.png")
  plt.close(fig)
  names.append("quality_vs_time_and_flops.png")

  fig, ax = plt.subplots(figsize=(8, 4))
  for i, fam in enumerate(fams):
    fids = [c["value"] for c in _by(cards, metric="fid", model=fam) if _is_base(c)]
    ax.scatter([i] * len(fids), fids, color=colors[fam])
    if fids:
      ax.hlines(statistics.fmean(fids), i - 0.3, i + 0.3, color="k")
  ax.set_xticks(range(len(fams)), fams, rotation=45, ha="right")
  ax.set_yscale("log")
  ax.set_ylabel("final FID, one dot per seed")
  ax.grid(alpha=0.3)
  _save(fig, out_dir / "seed_spread.png")
  plt.close(fig)
  names.append("seed_spread.png")

  scales = sorted({c.get("lr_scale", 1.0) for c in cards if c["metric"] == "fid"})
  if len(scales) > 1:
    grid = [[math.nan] * len(scales) for _ in fams]
    for i, fam in enumerate(fams):
      first = min((_seed(c) for c in _by(cards, metric="fid", model=fam)), default=0)
      for c in _by(cards, metric="fid", model=fam):
        if _seed(c) == first and c.get("batch_scale", 1.0) == 1.0:
          grid[i][scales.index(c.get("lr_scale", 1.0))] = c["value"]
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(fams) + 1.5))
    im = ax.imshow([[math.log10(v) if v == v else math.nan for v in row] for row in grid],
                   cmap="viridis_r", aspect="auto")
    for i, row in enumerate(grid):
      for j, v in enumerate(row):
        ax.text(j, i, "failed" if v != v else f"{v:.3g}", ha="center", va="center", fontsize=7,
                color="w")
    ax.set_xticks(range(len(scales)), [f"×{s:.3g}" for s in scales])
    ax.set_yticks(range(len(fams)), fams)
    ax.set_xlabel("learning rate scale")
    fig.colorbar(im, ax=ax, label="log10 FID")
    _save(fig, out_dir / "lr_sensitivity.png")
    plt.close(fig)
    names.append("lr_sensitivity.png")

  grids = {f: p for f, p in (sample_grids or {}).items() if pathlib.Path(p).exists()}
  if grids:
    from PIL import Image  # pylint: disable=import-outside-toplevel
    cols = min(4, len(grids))
    rows = -(-len(grids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
      ax.axis("off")
    for ax, (fam, path) in zip(axes.flat, sorted(grids.items())):
      ax.imshow(Image.open(path), cmap="gray")
      ax.set_title(fam, fontsize=9)
    _save(fig, out_dir / "samples.png")
    plt.close(fig)
    names.append("samples.png")
  return names
