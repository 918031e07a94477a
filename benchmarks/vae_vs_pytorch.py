"""Training throughput of the 784-400-20 MNIST VAE: gen_jax against PyTorch eager, in one run.

    pip install -e '.[bench]'   # torch 2.13.0, CPU build
    python benchmarks/vae_vs_pytorch.py            # default: 5 rounds of 1 epoch (468 steps) each

Both train the same model (784-400-20 MLP VAE of pytorch/examples, Bernoulli decoder), on the same
real MNIST training set, with batch 128, Adam 1e-3, a fresh dynamic binarization per batch and a new
shuffle per epoch. gen_jax runs its own training loop's jitted multi-step function (data on the
device); PyTorch runs the idiomatic eager loop with the data on the host as one tensor (no
DataLoader worker overhead). Compilation and warm-up are excluded for both. Prints images/s for
each (median of the rounds) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench_gen_jax(steps: int, rounds: int, batch_size: int, config=None) -> list[float]:
  """images/s of each round of gen_jax's own training loop function (gen_jax.compute)."""
  from configs import vae_mnist
  from gen_jax import compute
  from gen_jax import run as run_lib

  config = config or vae_mnist.get_config()
  config.batch_size = batch_size
  run = run_lib.build(config)
  return compute.train_rates(run, run_lib.init_state(run), steps=steps, rounds=rounds)[0]


def bench_pytorch(steps: int, rounds: int, batch_size: int) -> list[float]:
  import numpy as np
  import torch
  from torch import nn
  from torch.nn import functional as F
  from gen_jax import data

  images, _ = data.read_rows("mnist", "train", 0, 60000)
  x_all = torch.from_numpy(images.reshape(60000, 784).astype(np.float32) / 255.0)

  class VAE(nn.Module):  # pytorch/examples/vae/main.py
    def __init__(self):
      super().__init__()
      self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
      self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
      h = F.relu(self.fc1(x))
      mu, logvar = self.fc21(h), self.fc22(h)
      z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
      return self.fc4(F.relu(self.fc3(z))), mu, logvar

  torch.manual_seed(0)
  model = VAE()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)

  def step(x):
    x = torch.bernoulli(x)
    logits, mu, logvar = model(x)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(-1)
    loss = (recon + kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

  return torch_rates(step, x_all, steps=steps, rounds=rounds, batch_size=batch_size, warmup=50)


def torch_rates(step, x_all, *, steps: int, rounds: int, batch_size: int, warmup: int) -> list[float]:
  """images/s of each of ``rounds`` rounds of ``steps`` calls of ``step(batch)`` over a fresh
  shuffle of ``x_all`` (a host tensor), after ``warmup`` steps."""
  import torch

  def epoch(n):
    perm = torch.randperm(len(x_all))
    for i in range(n):
      loss = step(x_all[perm[i * batch_size:(i + 1) * batch_size]])
    return float(loss.detach())

  n = min(steps, len(x_all) // batch_size)
  epoch(warmup)
  rates = []
  for _ in range(rounds):
    t = time.perf_counter()
    epoch(n)
    rates.append(n * batch_size / (time.perf_counter() - t))
  return rates


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=468, help="train steps per round (<= 1 epoch)")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--batch_size", type=int, default=128)
  args = parser.parse_args()
  jax_rates = bench_gen_jax(args.steps, args.rounds, args.batch_size)
  torch_rates = bench_pytorch(args.steps, args.rounds, args.batch_size)
  report(jax_rates, torch_rates)


def report(jax_rates: list[float], torch_rates: list[float]) -> None:
  """Prints both sides' images/s (median, min, max) and the ratio of the medians."""
  import jax
  import torch
  j, t = statistics.median(jax_rates), statistics.median(torch_rates)
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()} (jax {jax.__version__}), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads")
  print(f"{'':10s} {'images/s (median)':>18s} {'min':>10s} {'max':>10s}")
  for name, rates in (("gen_jax", jax_rates), ("pytorch", torch_rates)):
    print(f"{name:10s} {statistics.median(rates):18,.0f} {min(rates):10,.0f} {max(rates):10,.0f}")
  print(f"ratio gen_jax / pytorch: {j / t:.2f}x")

if __name__ == "__main__":
  main()
