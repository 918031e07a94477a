"""Trains and evaluates configs over several seeds; writes per-seed and mean ± std metric cards.

    python benchmarks/seed_sweep.py --configs=gan_mnist,dcgan_mnist,wgan_gp_mnist,vae_mnist \
        --seeds=0,1,2 --root=runs/sweep --out=results/seeds_mnist.jsonl

For each config and seed: ``launch.py --config=configs/<name>.py --config.seed=<s>`` (train, resuming
if the workdir has a checkpoint), then ``--mode=eval`` (10k samples vs 10k test images on the domain
network), skipped when the workdir's cards are already those of its newest checkpoint: an
interrupted sweep, run again, goes on where it stopped. Each run's cards stay in its workdir;
``--out`` gets, per config and metric, one card whose value is the mean over the seeds and whose
``std`` is their standard deviation (ddof 1), with the per-seed values in ``notes``. So a claim like "DCGAN beats the MLP GAN" comes with its spread.
Extra ``--override`` flags go to every run (e.g. ``--override=--config.eval.iwae_ks=()``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gen_jax import cards  # noqa: E402


def evaluated(workdir: str) -> bool:
  """Whether ``<workdir>/cards.jsonl`` holds cards of the newest checkpoint and only those."""
  path, ckpt = os.path.join(workdir, "cards.jsonl"), os.path.join(workdir, "checkpoints")
  if not (os.path.exists(path) and os.path.isdir(ckpt)):
    return False
  steps = [int(d) for d in os.listdir(ckpt) if d.isdigit()]
  old = cards.read([path])
  return bool(steps and old) and all(c.get("step") == max(steps) for c in old)


def run(config: str, seed: int, workdir: str, overrides: list[str]) -> list[dict]:
  base = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config={ROOT}/configs/{config}.py",
          f"--config.seed={seed}", f"--workdir={workdir}", *overrides]
  for mode in ("train", "eval"):
    if mode == "eval" and evaluated(workdir):   # an interrupted sweep, rerun: nothing new to do
      print(f"{config} seed {seed}: cards of the newest checkpoint already in {workdir}", flush=True)
      continue
    t = time.time()
    r = subprocess.run(base + [f"--mode={mode}"], capture_output=True, text=True)
    if r.returncode:
      sys.exit(f"{config} seed {seed} --mode={mode} failed:\n{r.stderr[-3000:]}")
    print(f"{config} seed {seed}: {mode} in {time.time() - t:.0f} s", flush=True)
  return cards.read([os.path.join(workdir, "cards.jsonl")])


def aggregate(per_seed: list[list[dict]], model: str) -> list[dict]:
  """One card per (metric, k) that every seed has: mean and std (ddof 1) over seeds, protocol
  from the first seed (a seed evaluated with fewer metrics, e.g. ``eval.num_samples=0``, limits
  the cards to those it has)."""
  out = []
  first = per_seed[0]
  for c in first:
    key = (c["metric"], c.get("k"))
    values = [next((d["value"] for d in run_cards if (d["metric"], d.get("k")) == key), None)
              for run_cards in per_seed]
    if None in values:
      continue
    protocol = {f: c.get(f) for f in cards.PROTOCOL_FIELDS}
    protocol.update(model=f"{model} ({len(values)} seeds)", step=c.get("step"),
                    seeds={"train": [r[0]["seeds"]["train"] for r in per_seed]},
                    command=" ".join(["python", *sys.argv]))
    extra = {"k": c["k"]} if c.get("k") else {}
    out.append(cards.make(c["metric"], statistics.mean(values),
                          std=statistics.stdev(values) if len(values) > 1 else None,
                          unit=c.get("unit", ""), std_kind="std over seeds",
                          notes=f"per seed: {', '.join(f'{v:.4g}' for v in values)}",
                          **extra, **protocol))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", required=True, help="comma-separated config names")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--root", default="runs/sweep")
  parser.add_argument("--out", required=True)
  parser.add_argument("--override", action="append", default=[])
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  all_cards = []
  for name in args.configs.split(","):
    per_seed = [run(name, s, os.path.join(args.root, f"{name}_seed{s}"), args.override)
                for s in seeds]
    all_cards += aggregate(per_seed, name)
  path = cards.write(args.out, all_cards)
  for c in all_cards:
    if c["metric"] in ("fid", "inception_score", "mode_kl_to_uniform", "nll_iwae"):
      print(f"{c['model']:32s} {c['metric']:20s} {c['value']:10.4f} ± {c['std'] or 0:.4f}")
  print(f"{len(all_cards)} cards in {path}")


if __name__ == "__main__":
  main()
