"""Time of the whole sample-quality evaluation: 10k generated vs 10k test images on the domain network.

    python benchmarks/metrics_speed.py                       # MNIST, 10k vs 10k, 3 rounds
    python benchmarks/metrics_speed.py --dataset=fashion_mnist

What is timed is what ``launch.py --mode=eval`` does after sampling: both image sets through the
dataset's domain classifier (features and class probabilities), then FID, KID (100 subsets of 1000),
precision/recall and density/coverage (k=3), the classifier Inception Score (10 splits) and mode
coverage. 10k training images stand in for the generated ones (the time depends on the sizes, not on
the pixels). Prints the first call (with compilation) and the median of the later rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
  parser.add_argument("--n", type=int, default=10_000)
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  import jax
  from gen_jax import evaluate
  from gen_jax.metrics import networks

  net = networks.load(networks.DEFAULT_FOR_DATASET[args.dataset])
  real, _ = evaluate.real_images(args.dataset, "test", args.n, seed=0)
  fake, _ = evaluate.real_images(args.dataset, "train", args.n, seed=0)
  stages = {}

  def once():
    t = time.perf_counter()
    real_f, _ = evaluate.network_outputs(net, real)
    fake_f, fake_p = evaluate.network_outputs(net, fake)
    t_net = time.perf_counter() - t
    t = time.perf_counter()
    out = evaluate.sample_quality_metrics(real_f, fake_f, fake_p)
    stages.setdefault("network", []).append(t_net)
    stages.setdefault("metrics", []).append(time.perf_counter() - t)
    return out

  print(f"{args.n} vs {args.n} {args.dataset} images, network {net.name}, on "
        f"{jax.devices()[0].device_kind} x{jax.device_count()}")
  t = time.perf_counter()
  out = once()
  first = time.perf_counter() - t
  rounds = []
  for _ in range(args.rounds):
    t = time.perf_counter()
    once()
    rounds.append(time.perf_counter() - t)
  med = lambda xs: statistics.median(xs[1:])
  print(f"first call (with compilation) {first:6.2f} s")
  print(f"  features + probabilities of both sets  median {med(stages['network']):6.2f} s")
  print(f"  FID, KID, P/R, D/C, IS, mode coverage   median {med(stages['metrics']):6.2f} s")
  print(f"all, after compilation                  median {statistics.median(rounds):6.2f} s")
  print("values: " + ", ".join(f"{k} {v[0]:.4g}" for k, v in out.items()))


if __name__ == "__main__":
  main()
