"""Training throughput of every family's default config on the devices present, with XLA's FLOPs.

    python benchmarks/throughput.py                          # every default MNIST config
    python benchmarks/throughput.py --configs=vae_mnist,dcgan_mnist --dtype=bfloat16
    python benchmarks/throughput.py --out=results/throughput_cpu.jsonl   # also write metric cards
    python benchmarks/throughput.py --configs=dcgan_cifar10,dcgan_cifar10@1024 --mock_data=50000

For each config: parameters; training FLOPs per image (XLA's cost analysis of the compiled train
step, a multiply-add counting 2); peak memory of the step (XLA's memory analysis); training
images/s through the loop's own multi-step function (median of ``--rounds`` rounds of ``--steps``
steps, compilation and a warm-up round excluded); achieved FLOP/s; and the share of the device's
dense peak where it is known (gen_jax/compute.py, or ``--peak_tflops``). The device mesh is each
config's own (all devices on the data axis). ``--mock_data=N`` replaces every dataset by N random
examples of its shapes (gen_jax.data.mock_datasets), for datasets that are not on the machine:
throughput does not depend on the pixels. A config that fails is reported and the table goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_CONFIGS = ("vae_mnist", "conv_vae_mnist", "ae_mnist", "cvae_mnist", "vae_iaf_mnist",
                   "gan_mnist", "dcgan_mnist", "wgan_mnist", "wgan_gp_mnist", "acgan_mnist",
                   "vaegan_mnist", "bigan_mnist", "rbm_mnist", "dbn_mnist", "glow_mnist")


def measure(name: str, *, dtype: str, steps: int, rounds: int, batch_size: int = 0) -> dict:
  """One row of the table; ``name`` is a config of configs/ (``name[:arg][@batch]``)."""
  if "@" in name:
    name, batch = name.rsplit("@", 1)
    batch_size = int(batch)
  import jax  # pylint: disable=import-outside-toplevel
  from gen_jax import compute, precision  # pylint: disable=import-outside-toplevel
  from gen_jax import run as run_lib  # pylint: disable=import-outside-toplevel
  from gen_jax.models import layers  # pylint: disable=import-outside-toplevel
  import configs  # pylint: disable=import-outside-toplevel
  config = configs.load(name)
  if config.model.family in precision.FLOAT32_ONLY:
    dtype = "float32"   # these families refuse bfloat16; the table's dtype column says so
  config.model.dtype = dtype
  if batch_size:
    config.batch_size = batch_size
  run = run_lib.build(config)
  state = run_lib.init_state(run)
  cost = compute.step_cost(run, state)
  rates, _ = compute.train_rates(run, state, steps=steps, rounds=rounds)
  rate = compute.summary(rates)
  conv = (layers.resolve_conv_impl(config.model.conv_impl) if "conv_impl" in config.model else "-")
  return {"config": name, "family": config.model.family, "dataset": config.dataset.name,
          "conv_impl": conv, "batch_size": config.batch_size,
          "dtype": dtype, **cost, "images_per_sec": rate["median"], "images_per_sec_min": rate["min"],
          "images_per_sec_max": rate["max"], "flops_per_sec": rate["median"] * cost["flops_per_image"],
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count()}


def cards_of(row: dict, command: str, mock_data: int = 0) -> list[dict]:
  from gen_jax import cards  # pylint: disable=import-outside-toplevel
  env = cards.environment()
  common = dict(model=row["config"], family=row["family"], dataset=row["dataset"], command=command,
                dtype=row["dtype"], batch_size=row["batch_size"], conv_impl=row["conv_impl"], **env)
  data = f"; {mock_data} random examples of the dataset's shapes (--mock_data)" if mock_data else ""
  return [cards.make("train_images_per_sec", row["images_per_sec"], unit="images/s", **common,
                     notes=f"median of rounds; min {row['images_per_sec_min']:.0f}, max "
                           f"{row['images_per_sec_max']:.0f}{data}"),
          cards.make("train_flops_per_image", row["flops_per_image"], unit="FLOP", **common,
                     notes="XLA cost analysis of the compiled train step / batch size"),
          cards.make("train_peak_memory", row["peak_bytes"], unit="bytes", **common,
                     notes="XLA memory analysis of the compiled train step"),
          cards.make("params", row["params"], **common)]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                      help="comma-separated config names of configs/ (name, name:arg, name@batch_size)")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--steps", type=int, default=100, help="train steps per round (<= 1 epoch)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--batch_size", type=int, default=0, help="0: each config's own")
  parser.add_argument("--peak_tflops", type=float, default=0.0,
                      help="the device's dense peak (all devices), for the share-of-peak column; "
                           "0: known accelerators only")
  parser.add_argument("--mock_data", type=int, default=0,
                      help="N > 0: every dataset replaced by N random examples of its shapes")
  parser.add_argument("--out", default="", help="write metric cards (JSON lines) here")
  args = parser.parse_args(argv)
  if args.mock_data:
    from gen_jax import data  # pylint: disable=import-outside-toplevel
    with data.mock_datasets(args.mock_data):
      return table(args)
  return table(args)


def table(args) -> list[dict]:
  import jax  # pylint: disable=import-outside-toplevel
  from gen_jax import cards, compute  # pylint: disable=import-outside-toplevel
  kind = jax.devices()[0].device_kind
  def peak(dtype):
    return args.peak_tflops * 1e12 or (compute.peak_flops(kind, dtype) or 0) * jax.device_count()

  print(f"device: {kind} x{jax.device_count()} ({jax.default_backend()}), jax {jax.__version__}, "
        f"dtype {args.dtype}")
  head = (f"{'config':26s} {'family':10s} {'batch':>5s} {'params':>10s} {'MFLOP/img':>10s} "
          f"{'peak MiB':>9s} {'images/s':>10s} {'GFLOP/s':>9s} {'% peak':>7s} {'conv':>6s} dtype")
  print(head)
  rows, written, failed = [], [], []
  for name in args.configs.split(","):
    try:
      row = measure(name, dtype=args.dtype, steps=args.steps, rounds=args.rounds,
                    batch_size=args.batch_size)
    except Exception as e:  # pylint: disable=broad-except  (one config's failure ends no table)
      failed.append(name)
      traceback.print_exc()
      print(f"{name:26s} FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            flush=True)
      continue
    rows.append(row)
    share = (f"{100 * row['flops_per_sec'] / peak(row['dtype']):7.2f}" if peak(row["dtype"])
             else f"{'n/a':>7s}")
    print(f"{name:26s} {row['family']:10s} {row['batch_size']:5d} {row['params']:10,d} "
          f"{row['flops_per_image'] / 1e6:10.2f} {row['peak_bytes'] / 2**20:9.1f} "
          f"{row['images_per_sec']:10,.0f} {row['flops_per_sec'] / 1e9:9.2f} {share} "
          f"{row['conv_impl']:>6s} {row['dtype']}", flush=True)
    written += cards_of(row, " ".join(["python", *sys.argv]), args.mock_data)
    if args.out:   # after every config, so that an interrupted table keeps what it measured
      cards.write(args.out, written)
  if args.out:
    print(f"{len(written)} metric cards in {args.out}")
  if failed:
    raise SystemExit(f"failed: {', '.join(failed)}")
  return rows


if __name__ == "__main__":
  main()
