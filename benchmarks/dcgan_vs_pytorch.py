"""Training throughput of the MNIST DCGAN: gen_jax against PyTorch eager, in one run.

    pip install -e '.[bench]'   # torch 2.13.0, CPU build
    python benchmarks/dcgan_vs_pytorch.py          # default: 3 rounds of 100 steps each

Both train the same networks (configs/dcgan_mnist.py without InfoGAN's code, model.cat_dim=0):
G: z (100) -> dense 1024 -> dense 7x7x128 -> deconv 64 -> deconv 1, batch norm + ReLU, tanh;
D: conv 64 -> conv 128 -> dense 1024 -> dense 1, batch norm after all but the first layer, leaky
ReLU 0.2; 4x4 kernels, stride 2. Same step: one D update on a real batch and a batch of fakes
(each through D in training mode), one G update on fresh noise, non-saturating loss, Adam 4e-4
(beta1 0.5) for both, batch 64, and the EMA of G's weights (decay 0.999) after each step. gen_jax
runs its training loop's jitted multi-step function (data on the device, convolutions as
``model.conv_impl`` resolves them: matrix products on CPU); PyTorch runs the idiomatic eager loop
with the data on the host as one tensor. Compilation and warm-up are excluded for both.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import vae_vs_pytorch  # noqa: E402  pylint: disable=wrong-import-position


def gen_jax_config():
  from configs import dcgan_mnist
  config = dcgan_mnist.get_config()
  config.model.cat_dim = 0
  return config


def bench_pytorch(steps: int, rounds: int, batch_size: int) -> list[float]:
  import numpy as np
  import torch
  from torch import nn
  from torch.nn import functional as F
  from gen_jax import data

  images, _ = data.read_rows("mnist", "train", 0, 60000)
  x_all = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)
  config = gen_jax_config()
  z_dim, decay = config.model.z_dim, config.model.ema_decay

  def init(m):   # Radford et al.: N(0, 0.02), as gen_jax's DCGAN
    if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      nn.init.zeros_(m.bias)

  gen = nn.Sequential(
      nn.Linear(z_dim, 1024), nn.BatchNorm1d(1024, momentum=0.1), nn.ReLU(),
      nn.Linear(1024, 7 * 7 * 128), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(),
      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
  disc = nn.Sequential(
      nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
      nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten(),
      nn.Linear(7 * 7 * 128, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1))
  torch.manual_seed(0)
  gen.apply(init)
  disc.apply(init)
  opt = {name: torch.optim.Adam(net.parameters(), lr=config.optimizer.learning_rate,
                                betas=(config.optimizer.b1, config.optimizer.b2))
         for name, net in (("gen", gen), ("disc", disc))}
  ema = [p.detach().clone() for p in gen.parameters()]

  def step(real):
    with torch.no_grad():
      fake = gen(torch.randn(batch_size, z_dim))
    loss_d = F.softplus(-disc(real)).mean() + F.softplus(disc(fake)).mean()
    opt["disc"].zero_grad()
    loss_d.backward()
    opt["disc"].step()
    loss_g = F.softplus(-disc(gen(torch.randn(batch_size, z_dim)))).mean()
    opt["gen"].zero_grad()
    loss_g.backward()
    opt["gen"].step()
    with torch.no_grad():
      torch._foreach_lerp_(ema, [p.detach() for p in gen.parameters()], 1.0 - decay)
    return loss_d

  return vae_vs_pytorch.torch_rates(step, x_all, steps=steps, rounds=rounds,
                                    batch_size=batch_size, warmup=20)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=100, help="train steps per round (<= 1 epoch)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=64)
  args = parser.parse_args()
  jax_rates = vae_vs_pytorch.bench_gen_jax(args.steps, args.rounds, args.batch_size,
                                           config=gen_jax_config())
  torch_rates = bench_pytorch(args.steps, args.rounds, args.batch_size)
  vae_vs_pytorch.report(jax_rates, torch_rates)


if __name__ == "__main__":
  main()
