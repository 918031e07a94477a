"""Metric cards: every reported number together with the protocol that produced it.

A card is one JSON object (one line of a ``*.jsonl`` file)::

    {"metric": "fid", "value": 1.23, "std": null, "unit": "", "model": "vae_mnist", ...protocol}

with the protocol fields of :data:`PROTOCOL_FIELDS`: what was compared (n_gen, n_real, the real split),
with which feature network (name and SHA-256), the seeds, a hash of the whole config, the git commit,
package versions and the devices. README.md's results table is generated from committed cards by
:func:`update_readme` (from the repository root: ``python tools/cards.py README.md results/*.jsonl``),
which rewrites the block between ``<!-- cards:begin -->`` and ``<!-- cards:end -->``; a number in that
table that no card holds cannot exist. Compare files (``--compare=FILE``, repeated) also fill the
block between ``<!-- compare:begin -->`` and ``<!-- compare:end -->`` with :func:`comparison`: one
row per model, one column per metric, ranked by FID.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import pathlib
import subprocess
from typing import Any, Iterable, Mapping, Optional, Sequence

PROTOCOL_FIELDS = ("model", "family", "dataset", "step", "n_gen", "n_real", "real_split",
                   "feature_network", "feature_network_sha256", "seeds", "config_hash",
                   "git_commit", "packages", "device_kind", "device_count", "command")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets")
# Fields some cards add: the k of a sweep, the mask and method of a completion, the seconds it
# took, a probe's labels, feature source and dimension, a codec's rate and quantisation step, a
# benchmark's dtype, batch and convolution form.
EXTRA_FIELDS = {"notes", "std_kind", "k", "mask", "method", "secs", "labels", "features", "dim",
                "dtype", "batch_size", "lr_scale", "batch_scale", "conv_impl",
                "bits", "quant_step", "codec"}
BEGIN, END = "<!-- cards:begin -->", "<!-- cards:end -->"
COMPARE_BEGIN, COMPARE_END = "<!-- compare:begin -->", "<!-- compare:end -->"
APPS_BEGIN, APPS_END = "<!-- apps:begin -->", "<!-- apps:end -->"
REPR_BEGIN, REPR_END = "<!-- repr:begin -->", "<!-- repr:end -->"
COMPRESS_BEGIN, COMPRESS_END = "<!-- compress:begin -->", "<!-- compress:end -->"
COMMAND = "python tools/cards.py"  # the command that regenerates the tables, named in them
COMPARE_METRICS = ("fid", "kid", "precision", "recall", "inception_score", "mode_kl_to_uniform",
                   "recon_accuracy", "knn_accuracy")


def config_hash(config) -> str:
  """The first 16 hex digits of the SHA-256 of the config as sorted JSON (an ml_collections
  ConfigDict or a plain mapping)."""
  text = config.to_json(sort_keys=True) if hasattr(config, "to_json") else json.dumps(
      config, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit(repo: Optional[str | pathlib.Path] = None) -> str:
  """The checkout's commit, with ``-dirty`` if tracked files differ from it; 'unknown' outside git."""
  cwd = str(repo or pathlib.Path(__file__).resolve().parents[1])
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return commit + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
  """git commit, package versions, device kind and count of this process."""
  import jax  # pylint: disable=g-import-not-at-top
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return {"git_commit": git_commit(), "packages": versions,
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count()}


def make(metric: str, value: float, *, std: Optional[float] = None, unit: str = "",
         **protocol) -> dict[str, Any]:
  """One card. ``std`` is the spread the metric reports (a standard error or a std over subsets,
  named in ``unit`` or the metric's doc); unknown protocol fields are an error so that a misspelt
  field cannot silently leave a hole in the protocol."""
  unknown = set(protocol) - set(PROTOCOL_FIELDS) - EXTRA_FIELDS
  if unknown:
    raise ValueError(f"unknown metric-card fields {sorted(unknown)}; known: {PROTOCOL_FIELDS}")
  return {"metric": metric, "value": float(value), "std": None if std is None else float(std),
          "unit": unit, **{f: protocol.get(f) for f in PROTOCOL_FIELDS},
          **{k: v for k, v in protocol.items() if k not in PROTOCOL_FIELDS}}


def write(path: str | pathlib.Path, cards: Iterable[Mapping[str, Any]]) -> pathlib.Path:
  """Writes ``cards`` as JSON lines (replacing the file)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(json.dumps(dict(c), sort_keys=True) + "\n" for c in cards))
  return path


def read(paths: Sequence[str | pathlib.Path]) -> list[dict[str, Any]]:
  cards = []
  for p in paths:
    for n, line in enumerate(pathlib.Path(p).read_text().splitlines(), 1):
      if line.strip():
        try:
          cards.append(json.loads(line))
        except json.JSONDecodeError as e:
          raise ValueError(f"{p}:{n} is not a JSON metric card ({e}).") from e
  return cards


def _fmt(card: Mapping[str, Any]) -> str:
  v, s = card["value"], card.get("std")
  if s is None and float(v).is_integer() and abs(v) >= 1:
    return f"{int(v)}" + (f" {card['unit']}" if card.get("unit") else "")
  digits = 4 if abs(v) < 1 else 2
  text = f"{v:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else "")
  return text + (f" {card['unit']}" if card.get("unit") else "")


def table(cards: Sequence[Mapping[str, Any]]) -> str:
  """A Markdown table, one row per card, sorted by model then metric, with the protocol columns
  a reader needs to compare two rows (the full protocol stays in the card files)."""
  head = ("| model | metric | value | n_gen / n_real (split) | feature network | step | seeds "
          "| commit | devices |\n|---|---|---|---|---|---|---|---|---|\n")
  rows = []
  for c in sorted(cards, key=lambda c: (str(c.get("model")), str(c["metric"]), str(c.get("k")))):
    net = c.get("feature_network") or "—"
    if c.get("feature_network_sha256"):
      net += f" `{c['feature_network_sha256'][:12]}`"
    n = (f"{c.get('n_gen') or '—'} / {c.get('n_real') or '—'}"
         + (f" ({c['real_split']})" if c.get("real_split") else ""))
    seeds = ", ".join(f"{k}={v}" for k, v in (c.get("seeds") or {}).items()) or "—"
    commit = str(c.get("git_commit") or "—")[:8]
    dev = f"{c.get('device_count')}× {c.get('device_kind')}" if c.get("device_kind") else "—"
    metric = c["metric"] + (f" (k={c['k']})" if c.get("k") else "")
    step = "—" if c.get("step") is None else c["step"]
    rows.append(f"| {c.get('model')} | {metric} | {_fmt(c)} | {n} | {net} | {step} "
                f"| {seeds} | {commit} | {dev} |")
  return head + "\n".join(rows) + "\n"


def comparison(cards: Sequence[Mapping[str, Any]],
               metrics: Sequence[str] = COMPARE_METRICS) -> str:
  """A Markdown table with one row per model and one column per metric of ``metrics`` that some
  card has (value ± std as the card gives it; '—' where a model has none), rows ranked by FID
  (models without one last, by name). Cards with a ``k`` (IWAE sweeps, k-NN) other than k = 1
  are left out, so that each cell holds one number."""
  cells: dict[str, dict[str, str]] = {}
  fid: dict[str, float] = {}
  for c in cards:
    if c["metric"] not in metrics or c.get("k") not in (None, 1):
      continue
    model = str(c.get("model"))
    cells.setdefault(model, {})[c["metric"]] = _fmt(dict(c, unit=""))
    if c["metric"] == "fid":
      fid[model] = c["value"]
  present = [m for m in metrics if any(m in row for row in cells.values())]
  order = sorted(cells, key=lambda m: (m not in fid, fid.get(m, 0.0), m))
  head = ("| model | " + " | ".join(present) + " |\n|---|" + "---|" * len(present) + "\n")
  return head + "".join("| " + m + " | " + " | ".join(cells[m].get(k, "—") for k in present)
                        + " |\n" for m in order)


def applications(cards: Sequence[Mapping[str, Any]]) -> str:
  """A Markdown table of ``launch.py --mode=apps`` cards: one row per model (the known-pixel-mean
  floor and the real-image ceiling included, once), its completion method, then for each mask the
  PSNR on the missing pixels and the domain classifier's accuracy on the completed images, and the
  perceptual path lengths."""
  masks = list(dict.fromkeys(c["mask"] for c in cards if c.get("mask")))
  rows: dict[str, dict[str, str]] = {}
  for c in cards:
    row = rows.setdefault(str(c.get("model")), {})
    if c.get("method") and c["metric"].startswith("completion"):
      row["method"] = c["method"]
    if c["metric"] == "completion_psnr":
      row[f"{c['mask']}/psnr"] = f"{c['value']:.2f}"
    elif c["metric"] == "completion_accuracy":
      row[f"{c.get('mask')}/acc"] = f"{100 * c['value']:.1f} %"
    elif c["metric"].startswith("ppl_"):
      row[c["metric"]] = f"{c['value']:.0f} ± {c['std']:.0f}"
    if c.get("secs") and c["metric"] in ("completion_psnr", "ppl_encoder", "ppl_prior"):
      row["secs"] = f"{float(row.get('secs', 0)) + c['secs']:.0f}"
  for row in rows.values():     # the real images' accuracy holds for every mask
    if "None/acc" in row:
      row.update({f"{m}/acc": row["None/acc"] for m in masks})
  columns = [f"{m}/{k}" for m in masks for k in ("psnr", "acc")] + ["ppl_encoder", "ppl_prior",
                                                                     "secs"]
  head = ("| model | method | " + " | ".join(
      [f"{m}: PSNR dB | {m}: accuracy" for m in masks]
      + ["PPL (encoder)", "PPL (prior)", "seconds, all of it"])
      + " |\n|---|---|" + "---|" * len(columns) + "\n")
  order = sorted((m for m in rows if any(k in rows[m] for k in columns if k != "secs")),
                 key=lambda m: (m.startswith("real images"), m.startswith("nearest training image"),
                                m.startswith("known-pixel mean"), m))
  text = head + "".join(f"| {m} | {rows[m].get('method', '—')} | "
                        + " | ".join(rows[m].get(k, "—") for k in columns) + " |\n" for m in order)
  return text + _conditional(cards)


CONDITIONAL = (("conditional_accuracy", "samples of the requested class"),
               ("cas", "CAS: trained on generated"), ("cas_real", "trained on as many real"),
               ("cas_few_real", "few real labels"),
               ("cas_few_real_plus_generated", "few real + generated"))


def _cas_classifier(card: Mapping[str, Any]) -> str:
  """The classifier a CAS card names first in its method ('MLP 784-512-10', 'CNN conv16-...'),
  or '—'."""
  method = str(card.get("method") or "")
  return method.split(",")[0] if method.startswith(("MLP", "CNN")) else "—"


def _conditional(cards: Sequence[Mapping[str, Any]]) -> str:
  """The conditional families' table of :func:`applications` (empty without such cards): a row
  per model and CAS classifier; the real-data references (``cas_real``, ``cas_few_real``) are
  shown in the row of the model whose run measured them (same config hash), and the samples'
  accuracy on the domain network (no classifier of ours) in every row of its model."""
  rows: dict[tuple[str, str], dict[str, str]] = {}
  sampled: dict[str, str] = {}
  names = dict(CONDITIONAL)
  for c in cards:
    if c["metric"] not in names:
      continue
    model = str(c.get("model"))
    value = f"{100 * c['value']:.2f} %"
    if c["metric"] == "conditional_accuracy":
      sampled[model] = value
      continue
    if c["metric"] in ("cas_real", "cas_few_real"):   # measured with each model's run
      model = next((str(o["model"]) for o in cards if o["metric"] == "cas"
                    and o.get("config_hash") == c.get("config_hash")), model)
    rows.setdefault((model, _cas_classifier(c)), {})[c["metric"]] = value
  for model in sampled.keys() - {m for m, _ in rows}:
    rows[(model, "—")] = {}
  if not rows:
    return ""
  columns = CONDITIONAL[1:]
  head = ("\n| conditional model | " + names["conditional_accuracy"] + " | CAS classifier | "
          + " | ".join(n for _, n in columns) + " |\n|---|---|---|" + "---|" * len(columns) + "\n")
  return head + "".join(f"| {m} | {sampled.get(m, '—')} | {k} | "
                        + " | ".join(rows[(m, k)].get(c, "—") for c, _ in columns) + " |\n"
                        for m, k in sorted(rows))


PROBE_COLUMNS = (("linear_probe_accuracy", 100, "linear, 100 labels"),
                 ("linear_probe_accuracy", 1000, "1k"), ("linear_probe_accuracy", 10000, "10k"),
                 ("linear_probe_accuracy", 60000, "all"), ("knn_accuracy", 1, "1-NN"),
                 ("knn_accuracy", 5, "5-NN"), ("trustworthiness", None, "trustworthiness"))


def representation(cards: Sequence[Mapping[str, Any]]) -> str:
  """Markdown tables of ``launch.py --mode=probe`` cards, one per dataset: a row per feature
  source (model and features; the baselines once), its dimension, the linear probe's test accuracy
  (mean ± std over the labelled draws) at each number of labels, k-NN and trustworthiness, rows
  ranked by the probe with the fewest labels."""
  out = []
  for dataset in sorted({str(c.get("dataset")) for c in cards}):
    rows: dict[str, dict[str, Any]] = {}
    for c in cards:
      if str(c.get("dataset")) != dataset or not c.get("features"):
        continue
      name = str(c["model"]) if c.get("family") == "data" else f"{c['model']}: {c['features']}"
      row = rows.setdefault(name, {"dim": c.get("dim")})
      sub = c.get("labels") if c["metric"] == "linear_probe_accuracy" else c.get("k")
      if c["metric"] == "trustworthiness":
        sub = None
      row[(c["metric"], sub)] = c
    if not rows:
      continue
    first = PROBE_COLUMNS[0][:2]
    order = sorted(rows, key=lambda m: -rows[m][first]["value"] if first in rows[m] else 1.0)

    def cell(c):
      if c is None:
        return "—"
      if c["metric"] == "trustworthiness":
        return f"{c['value']:.4f}"
      return f"{100 * c['value']:.2f}" + (f" ± {100 * c['std']:.2f}" if c.get("std") else "")

    head = (f"\n**{dataset}** (test accuracy, %)\n\n| features | dim | "
            + " | ".join(n for _, _, n in PROBE_COLUMNS) + " |\n|---|---|"
            + "---|" * len(PROBE_COLUMNS) + "\n")
    out.append(head + "".join(
        f"| {m} | {rows[m]['dim']} | " + " | ".join(cell(rows[m].get((metric, sub)))
                                                    for metric, sub, _ in PROBE_COLUMNS)
        + " |\n" for m in order))
  return "".join(out).lstrip("\n")


def codec_name(card: Mapping[str, Any]) -> str:
  """A codec card's codec, prefixed with its model where the codec's name does not say it (the
  bits-back rate of each VAE)."""
  codec, model = str(card.get("codec")), str(card.get("model"))
  if card.get("family") == "data" or codec.startswith(model):
    return codec
  return f"{model} {codec}"


def compression(cards: Sequence[Mapping[str, Any]], target: float = 0.95) -> str:
  """A Markdown table of ``launch.py --mode=compress`` cards: a row per (dataset, codec), the rate
  where it reaches the target accuracy (``bits_at_accuracy``), and its lowest- and highest-rate
  points (bits per image, PSNR, the classifier's accuracy on the decoded images)."""
  points: dict[tuple[str, str], dict[float, dict[str, float]]] = {}
  at: dict[tuple[str, str], float] = {}
  for c in cards:
    key = (str(c.get("dataset")), codec_name(c))
    if c["metric"] == "bits_at_accuracy":
      at[key] = c["value"]
    elif c["metric"] in ("codec_bits", "codec_psnr", "codec_accuracy"):
      points.setdefault(key, {}).setdefault(c["bits"], {})[c["metric"]] = c["value"]
  if not points:
    return ""

  def show(p):
    psnr = f"{p['codec_psnr']:.1f} dB" if "codec_psnr" in p else "lossless"
    return f"{p['codec_bits']:.0f} bits, {psnr}, {100 * p['codec_accuracy']:.1f} %"

  head = ("| dataset | codec | bits/image at 95 % accuracy | lowest rate | highest rate |\n"
          "|---|---|---|---|---|\n")
  order = sorted(points, key=lambda k: (k[0], at.get(k, float("inf"))))
  def rate(key):
    pts = points[key]
    if len(pts) == 1:
      return "— (one point)"
    if key not in at:
      return "not reached"
    lowest = pts[min(pts)]
    # Already at the target at its lowest rate: the crossing lies below it, so this bounds it.
    return ("≤ " if lowest.get("codec_accuracy", 0) >= target else "") + f"{at[key]:.1f}"

  return head + "".join(
      f"| {d} | {name} | " + rate((d, name))
      + f" | {show(points[(d, name)][min(points[(d, name)])])} | "
      + (show(points[(d, name)][max(points[(d, name)])]) if len(points[(d, name)]) > 1 else "—")
      + " |\n" for d, name in order)


def _fill(text: str, begin: str, end: str, body: str, readme) -> str:
  if begin not in text or end not in text:
    raise ValueError(f"{readme} has no '{begin}' ... '{end}' block to fill; add the two markers "
                     "where the table should go.")
  before, rest = text.split(begin, 1)
  _, after = rest.split(end, 1)
  return before + begin + "\n" + body + end + after


def update_readme(readme: str | pathlib.Path, card_files: Sequence[str | pathlib.Path],
                  compare_files: Sequence[str | pathlib.Path] = (),
                  apps_files: Sequence[str | pathlib.Path] = (),
                  repr_files: Sequence[str | pathlib.Path] = (),
                  compress_files: Sequence[str | pathlib.Path] = ()) -> int:
  """Replaces the block between the card markers of ``readme`` with :func:`table` of
  ``card_files``; if ``compare_files`` are given, the compare block with :func:`comparison` of
  theirs; likewise the apps block (:func:`applications`), the repr block
  (:func:`representation`) and the compress block (:func:`compression`). Returns the number of
  cards in the first table."""
  readme = pathlib.Path(readme)
  text = readme.read_text()
  cards = read(card_files)
  command = (f"{COMMAND} {readme.name} " + " ".join(str(p) for p in card_files)
             + "".join(f" --compare={p}" for p in compare_files)
             + "".join(f" --apps={p}" for p in apps_files)
             + "".join(f" --repr={p}" for p in repr_files)
             + "".join(f" --compress={p}" for p in compress_files))
  note = f"<!-- generated by `{command}`; do not edit by hand -->\n"
  text = _fill(text, BEGIN, END, note + table(cards), readme)
  if compare_files:
    text = _fill(text, COMPARE_BEGIN, COMPARE_END, note + comparison(read(compare_files)), readme)
  if apps_files:
    text = _fill(text, APPS_BEGIN, APPS_END, note + applications(read(apps_files)), readme)
  if repr_files:
    text = _fill(text, REPR_BEGIN, REPR_END, note + representation(read(repr_files)), readme)
  if compress_files:
    text = _fill(text, COMPRESS_BEGIN, COMPRESS_END, note + compression(read(compress_files)),
                 readme)
  readme.write_text(text)
  return len(cards)
