"""Time of the feature-based sample-quality metrics for n real vs n generated feature vectors.

    python benchmarks/metrics_speed.py                 # 10k vs 10k, 128-d features, 3 rounds

Prints each metric's first call (compilation + run) and the median of the later calls. The features
are random here: the time of these metrics depends only on n and d, not on the values.
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
  parser.add_argument("--n", type=int, default=10_000)
  parser.add_argument("--dim", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  import jax
  import numpy as np
  from gen_jax.metrics import classifier, fid, kid, prdc

  rng = np.random.default_rng(0)
  real = rng.normal(size=(args.n, args.dim)).astype(np.float32)
  fake = (rng.normal(size=(args.n, args.dim)) * 1.1 + 0.1).astype(np.float32)
  probs = rng.dirichlet(np.full(10, 0.1), size=args.n).astype(np.float32)
  runs = {
      "fid": lambda: fid.fid(real, fake),
      "kid (100 subsets of 1000)": lambda: kid.kid(real, fake, subset_size=1000, num_subsets=100),
      "precision/recall/density/coverage (k=3)": lambda: prdc.prdc(real, fake, k=3),
      "inception score + mode coverage": lambda: (classifier.inception_score(probs),
                                                  classifier.mode_coverage(probs)),
  }
  print(f"{args.n} vs {args.n} features of dim {args.dim} on {jax.devices()[0].device_kind} "
        f"x{jax.device_count()}")
  total = 0.0
  for name, fn in runs.items():
    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    times = []
    for _ in range(args.rounds):
      t = time.perf_counter()
      jax.block_until_ready(fn())
      times.append(time.perf_counter() - t)
    total += statistics.median(times)
    print(f"{name:42s} first call {first:6.2f} s   then median {statistics.median(times):6.2f} s")
  print(f"{'all, after compilation':42s} {total:6.2f} s")


if __name__ == "__main__":
  main()
