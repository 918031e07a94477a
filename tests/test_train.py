"""The whole loop on real MNIST with a tiny model: resume, sharding, metrics, errors."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import ROOT, tiny_config
from gen_jax import checkpoint, train
from gen_jax import run as run_lib


def _rows(workdir):
  return [json.loads(line) for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]


def _final_params(workdir, config):
  _, state = run_lib.restore(config, workdir)   # the newest checkpoint
  return int(state.step), jax.device_get(state)


def _assert_trees_equal(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(x, y)


def check_resume(make_config, tmp_path):
  """A 20-step run stopped at step 10 and resumed ends with parameters, optimizer states and extras
  bit-identical to an uninterrupted run's (``make_config(**overrides)`` gives a tiny config).
  Returns the final state."""
  full, part = tmp_path / "full", tmp_path / "part"
  train.train_and_evaluate(make_config(), str(full))
  train.train_and_evaluate(make_config(num_steps=10), str(part))   # stops at step 10 ...
  assert _final_params(part, make_config())[0] == 10
  train.train_and_evaluate(make_config(), str(part))               # ... and resumes from it
  step_a, state_a = _final_params(full, make_config())
  step_b, state_b = _final_params(part, make_config())
  assert step_a == step_b == 20
  _assert_trees_equal(state_a, state_b)
  return state_a


def check_devices(make_config, tmp_path, *, rel=1e-5):
  """The same run on 1 and on 8 devices logs the same metrics, row by row."""
  train.train_and_evaluate(make_config(), str(tmp_path / "d1"))
  train.train_and_evaluate(make_config(**{"mesh.shape": (8,)}), str(tmp_path / "d8"))
  one, eight = _rows(tmp_path / "d1"), _rows(tmp_path / "d8")
  assert len(one) == len(eight) and any(k.startswith("train/") for k in one[0])
  for r1, r8 in zip(one, eight):
    for k in r1:
      if "per_sec" not in k:
        assert r8[k] == pytest.approx(r1[k], rel=rel, abs=1e-5), (r1["step"], k)


def test_run_writes_metrics_images_checkpoints_and_the_bound(tfds_dir, tmp_path):
  final = train.train_and_evaluate(tiny_config(), str(tmp_path))
  rows = _rows(tmp_path)
  train_rows = [r for r in rows if "train/loss" in r]
  assert [r["step"] for r in train_rows] == [5, 10, 15, 20]
  assert all(np.isfinite(r["train/loss"]) for r in train_rows)
  eval_rows = [r for r in rows if "eval/neg_elbo" in r]
  assert [r["step"] for r in eval_rows] == [10, 20]
  # -ELBO = recon + KL, and the IWAE bound is at least as tight as the ELBO.
  assert eval_rows[-1]["eval/neg_elbo"] == pytest.approx(
      eval_rows[-1]["eval/recon"] + eval_rows[-1]["eval/kl"], rel=1e-5)
  assert final["eval/nll_iwae"] <= final["eval/neg_elbo"] + 1.0
  assert json.loads((tmp_path / "final_metrics.json").read_text())["step"] == 20
  assert sorted(p.name for p in tmp_path.glob("*.png")) == [
      f"{kind}_{step:08d}.png" for kind in ("inpaintings", "interpolations", "reconstructions",
                                            "samples") for step in (10, 20)]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
  # The public restore reads the newest checkpoint into the abstract (eval_shape) state, which
  # carries the mesh's shardings, and the Family's capabilities work on what comes back.
  config = tiny_config()
  run, state = run_lib.restore(config, tmp_path)
  abstract = run_lib.abstract_state(run)
  assert int(state.step) == 20
  for want, got in zip(jax.tree.leaves(abstract), jax.tree.leaves(state), strict=True):
    assert isinstance(want, jax.ShapeDtypeStruct) and want.sharding is not None
    assert (got.shape, got.dtype, got.sharding) == (want.shape, want.dtype, want.sharding)
  assert run.family.encode(state, run.test_images[:8]).shape == (8, config.model.latent_dim)
  assert run_lib.restore(config, tmp_path, step=10)[1].step == 10
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint in .*train first"):
    run_lib.restore(config, tmp_path / "elsewhere")


def test_no_grids_when_eval_num_images_is_0(tfds_dir, tmp_path):
  train.train_and_evaluate(tiny_config(**{"eval.num_images": 0}), str(tmp_path))
  assert [r["step"] for r in _rows(tmp_path) if "eval/neg_elbo" in r] == [10, 20]
  assert list(tmp_path.glob("*.png")) == []


def test_eval_at_end_off_skips_the_last_test_evaluation_but_not_the_bound(tfds_dir, tmp_path):
  final = train.train_and_evaluate(tiny_config(**{"eval.at_end": False}), str(tmp_path))
  # the epoch-cadence evaluation at step 10 stays; none at step 20, and the final metrics carry
  # no test metric of step 10 as if it were the last step's
  assert [r["step"] for r in _rows(tmp_path) if "eval/neg_elbo" in r] == [10]
  assert "eval/neg_elbo" not in final and final["step"] == 20
  assert np.isfinite(final["eval/nll_iwae"]) and final["eval/iwae_k"] == 4


@pytest.mark.heavy
def test_stopped_and_resumed_run_is_bit_identical(tfds_dir, tmp_path):
  check_resume(tiny_config, tmp_path)


@pytest.mark.heavy
def test_one_and_eight_devices_give_the_same_losses(tfds_dir, tmp_path):
  check_devices(tiny_config, tmp_path)


@pytest.mark.heavy
def test_a_run_stopped_on_8_devices_resumes_on_4_and_on_1_with_the_same_losses(tfds_dir, tmp_path):
  """The preemption story: the global batch is fixed and the data order is a function of the step,
  so a checkpoint resumes on any device count and training continues as if uninterrupted."""
  eight = {"mesh.shape": (8,)}
  train.train_and_evaluate(tiny_config(**eight), str(tmp_path / "ref"))
  ref = _rows(tmp_path / "ref")
  for devices in (4, 1):
    workdir = tmp_path / f"d{devices}"
    train.train_and_evaluate(tiny_config(num_steps=10, **eight), str(workdir))
    train.train_and_evaluate(tiny_config(**{"mesh.shape": (devices,)}), str(workdir))
    # The stopped run also wrote its own final bound at step 10; every row of the reference run
    # has its twin.
    rows = {(r["step"], tuple(sorted(r))): r for r in _rows(workdir)}
    for r_ref in ref:
      r = rows[(r_ref["step"], tuple(sorted(r_ref)))]
      for k in r_ref:
        if "per_sec" not in k:
          assert r[k] == pytest.approx(r_ref[k], rel=1e-5, abs=1e-5), (devices, r["step"], k)


def test_nan_loss_stops_with_the_step_and_metric_and_keeps_the_checkpoint(tfds_dir, tmp_path):
  train.train_and_evaluate(tiny_config(num_steps=10), str(tmp_path))
  with pytest.raises(train.TrainingDivergedError,
                     # the NaN learning rate spoils the parameters in step 10, so step 11's loss
                     match=r"train/\w+ became non-finite .* at step 11\. The last good checkpoint, "
                           r"step 10, is kept"):
    train.train_and_evaluate(tiny_config(**{"optimizer.learning_rate": float("nan")}), str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10"]


def test_unreadable_checkpoint_is_a_clear_error_and_older_ones_stay(tfds_dir, tmp_path):
  train.train_and_evaluate(tiny_config(), str(tmp_path))
  newest = tmp_path / "checkpoints" / "20"
  damaged = [f for f in newest.rglob("*") if f.is_file() and f.parent.name == "d"]
  assert damaged
  for f in damaged:  # the array data files of the newest checkpoint
    f.write_bytes(b"garbage")
  with pytest.raises(checkpoint.CheckpointError, match=r"step 20 .* cannot be read.*Nothing was "
                                                       r"deleted.*resume from step 10"):
    train.train_and_evaluate(tiny_config(num_steps=30), str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]


def test_restoring_a_step_that_was_not_saved_names_the_saved_ones(tmp_path):
  state = {"w": np.arange(3.0, dtype=np.float32)}
  ckpt = checkpoint.Checkpointer(tmp_path / "c", async_save=False)
  for step in (25, 50):
    ckpt.save(step, state)
  with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint of step 150 .* holds steps "
                                                       r"\[25, 50\]"):
    ckpt.restore(state, 150)
  np.testing.assert_array_equal(ckpt.restore(state, 50)["w"], state["w"])
  ckpt.close()
  empty = checkpoint.Checkpointer(tmp_path / "empty", async_save=False)
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint in .*train first"):
    empty.restore(state)
  empty.close()


def _launch(args, xla_flags=""):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags)
  return subprocess.Popen([sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_misspelt_override_is_an_error_that_names_it(tmp_path):
  p = _launch(["--config=configs/vae_mnist.py:tiny", "--config.batch_sise=64", f"--workdir={tmp_path}"])
  out, _ = p.communicate(timeout=120)
  assert p.returncode != 0
  assert "batch_sise" in out
  assert "Traceback" not in out


def test_indivisible_batch_is_a_clear_error_from_launch(tmp_path):
  p = _launch(["--config=configs/vae_mnist.py:tiny", "--config.batch_size=100", f"--workdir={tmp_path}"],
              xla_flags="--xla_force_host_platform_device_count=8")
  out, _ = p.communicate(timeout=120)
  assert p.returncode == 1
  assert "batch_size=100 cannot be split evenly over the 8 devices" in out
  assert "Traceback" not in out


@pytest.mark.heavy
def test_sigterm_saves_and_exits_cleanly_and_the_resumed_run_matches(tfds_dir, tmp_path):
  args = ["--config=configs/vae_mnist.py:tiny", "--config.model.hidden=(32,)",
          "--config.model.latent_dim=4", "--config.batch_size=32", "--config.num_steps=3000",
          "--config.steps_per_dispatch=10", "--config.eval.every_steps=1000",
          "--config.eval.iwae_k=0", "--config.tensorboard=False"]
  # The uninterrupted reference run "b" goes alongside the run "a" that is stopped and resumed.
  reference = _launch(args + [f"--workdir={tmp_path / 'b'}"])
  p = _launch(args + [f"--workdir={tmp_path / 'a'}"])
  lines = []
  for line in p.stdout:
    lines.append(line)
    if "step 10/" in line or ("step " in line and "/3000" in line):
      break
  p.send_signal(signal.SIGTERM)
  out = "".join(lines) + p.communicate(timeout=120)[0]
  assert p.returncode == 0, out
  assert "preempted at step" in out
  saved = [int(s) for s in os.listdir(tmp_path / "a" / "checkpoints")]
  assert saved and max(saved) < 3000
  # Resume to the end, and compare with the uninterrupted run.
  q = _launch(args + [f"--workdir={tmp_path / 'a'}"])
  for proc in (q, reference):
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
  config = tiny_config(**{"model.hidden": (32,), "model.latent_dim": 4, "batch_size": 32,
                          "num_steps": 3000})
  step_a, state_a = _final_params(tmp_path / "a", config)
  step_b, state_b = _final_params(tmp_path / "b", config)
  assert step_a == step_b == 3000
  _assert_trees_equal(state_a, state_b)


@pytest.mark.heavy
def test_kill_9_during_an_async_save_resumes_from_the_previous_checkpoint(tfds_dir, tmp_path):
  """SIGKILL while orbax is writing a checkpoint: the half-written step stays a temporary folder
  that no restore reads (orbax commits a step by renaming it when complete), and the rerun resumes
  from the previous step, losing at most one checkpoint interval, and replays the same losses."""
  every = 10
  args = ["--config=configs/vae_mnist.py:tiny", "--config.model.hidden=(1024,1024)",
          "--config.model.latent_dim=4", "--config.batch_size=32", "--config.num_steps=100000",
          f"--config.steps_per_dispatch={every}", f"--config.checkpoint.every_steps={every}",
          "--config.checkpoint.max_to_keep=100", "--config.eval.every_steps=100000",
          "--config.eval.iwae_k=0", "--config.tensorboard=False", f"--workdir={tmp_path}"]
  ckpts = tmp_path / "checkpoints"
  p = _launch(args)
  in_flight, deadline = None, time.time() + 300
  try:
    while in_flight is None and time.time() < deadline and p.poll() is None:
      names = os.listdir(ckpts) if ckpts.is_dir() else []
      committed = [n for n in names if n.isdigit()]
      pending = [n for n in names if "tmp" in n]
      if committed and pending:   # a save in flight, with an earlier one committed
        p.kill()                  # SIGKILL: no handler, no cleanup
        in_flight = int(pending[0].split(".")[0])
      time.sleep(0.002)
  finally:
    p.kill()
    out = p.communicate(timeout=60)[0]
  assert in_flight is not None, "no save was caught in flight: " + out[-2000:]
  committed = sorted(int(n) for n in os.listdir(ckpts) if n.isdigit())
  assert in_flight not in committed
  last = max(committed)
  assert last >= in_flight - every            # at most one interval lost
  before = _rows(tmp_path)
  rows_before = {r["step"]: r for r in before if "train/loss" in r}
  q = _launch([a for a in args if "num_steps" not in a] + [f"--config.num_steps={last + 2 * every}"])
  out = q.communicate(timeout=300)[0]
  assert q.returncode == 0, out[-3000:]
  assert f"resuming from step {last}" in out
  replayed = [r for r in _rows(tmp_path)[len(before):] if "train/loss" in r]
  for r in replayed:
    if r["step"] in rows_before:              # steps trained before the kill, trained again
      assert r["train/loss"] == pytest.approx(rows_before[r["step"]]["train/loss"], rel=1e-6)
  assert max(r["step"] for r in replayed) == last + 2 * every


def test_a_row_cut_short_by_a_kill_is_dropped_before_the_resumed_run_appends(tmp_path):
  from gen_jax import writers
  (tmp_path / "metrics.jsonl").write_text('{"step": 10, "train/loss": 1.5}\n{"step": 20, "trai')
  writer = writers.MetricWriter(tmp_path, tensorboard=False)
  writer.write_scalars(20, {"train/loss": 1.25})
  writer.close()
  assert _rows(tmp_path) == [{"step": 10, "train/loss": 1.5}, {"step": 20, "train/loss": 1.25}]
