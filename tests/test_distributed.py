"""Two launch.py processes with 4 CPU devices each, through JAX's multi-controller runtime (gloo
collectives): the same losses as one process on 8 devices, each process reading only its rows,
outputs written once, checkpoints that move between two processes and one, and a dead peer that
stops the run without spoiling a checkpoint. Slow (about 5 minutes on 2 cores): ``-m slow``."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

ARGS = ["--config=configs/vae_mnist.py:tiny", "--config.model.hidden=(32,)",
        "--config.model.latent_dim=4", "--config.batch_size=32", "--config.steps_per_dispatch=10",
        "--config.eval.every_steps=20", "--config.checkpoint.every_steps=20",
        "--config.checkpoint.max_to_keep=10", "--config.eval.iwae_k=4",
        "--config.eval.iwae_k_chunk=2", "--config.eval.num_images=4", "--config.tensorboard=False"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _popen(args, devices, env=None, **kwargs):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **(env or {}))
  return subprocess.Popen([sys.executable, str(ROOT / "launch.py"), *ARGS, *args], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)


def _one(workdir, steps, devices=8, extra=()):
  p = _popen([f"--workdir={workdir}", f"--config.num_steps={steps}", *extra], devices)
  out = p.communicate(timeout=600)[0]
  assert p.returncode == 0, out[-3000:]
  return out


def _two(workdir, steps, extra=(), env=None, heartbeat=100):
  """Processes 0 and 1 of one run, 4 devices each; returns their outputs."""
  common = [f"--workdir={workdir}", f"--config.num_steps={steps}", "--multihost",
            f"--coordinator_address=localhost:{_free_port()}", "--num_processes=2",
            f"--heartbeat_timeout_secs={heartbeat}", *extra]
  procs = [_popen(common + [f"--process_id={i}"], 4, env) for i in (0, 1)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _rows(workdir):
  return [json.loads(line) for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]


def _assert_rows_close(a, b, rel=1e-5, *, resumed=False):
  """Rows ``b`` equal rows ``a`` to ``rel``; ``resumed``: ``b`` is a resumed run, which also has
  the final bound of the run it resumed, so each row of ``a`` need only have its twin in ``b``."""
  if not resumed:
    assert [(r["step"], sorted(r)) for r in a] == [(r["step"], sorted(r)) for r in b]
  twins = {(r["step"], tuple(sorted(r))): r for r in b}
  for ra in a:
    rb = twins[(ra["step"], tuple(sorted(ra)))]
    for k in ra:
      if "per_sec" not in k:
        assert rb[k] == pytest.approx(ra[k], rel=rel, abs=1e-5), (ra["step"], k)


def test_two_processes_match_one_and_checkpoints_move_between_them(tfds_dir, tmp_path):
  cache = tmp_path / "cache"   # a fresh decoded-data cache shows which rows each process read
  t0 = time.time()
  _two(tmp_path / "two", 40, env={"GEN_JAX_CACHE_DIR": str(cache)})
  two_secs = time.time() - t0
  t0 = time.time()
  _one(tmp_path / "one", 40)
  one_secs = time.time() - t0
  # Each process decoded only the rows of its own 4 devices: half of each split.
  assert sorted(p.name for p in (cache / "mnist").rglob("*.npz")) == [
      "test-0-5000.npz", "test-5000-10000.npz", "train-0-30000.npz", "train-30000-60000.npz"]
  # The same metrics row by row, written once (not once per process), and the same images.
  _assert_rows_close(_rows(tmp_path / "one"), _rows(tmp_path / "two"))
  assert (sorted(p.name for p in (tmp_path / "two").glob("*.png"))
          == sorted(p.name for p in (tmp_path / "one").glob("*.png")))
  final_one = json.loads((tmp_path / "one" / "final_metrics.json").read_text())
  final_two = json.loads((tmp_path / "two" / "final_metrics.json").read_text())
  assert final_two["eval/nll_iwae"] == pytest.approx(final_one["eval/nll_iwae"], rel=1e-5)
  # Checkpoints move: two processes' step 40 resumed by one process on 1 device, one process's
  # step 40 resumed by two; both continue as the uninterrupted 8-device run.
  _one(tmp_path / "ref", 60)
  _one(tmp_path / "two", 60, devices=1, extra=["--config.mesh.shape=(1,)"])
  _two(tmp_path / "one", 60)
  ref = _rows(tmp_path / "ref")
  _assert_rows_close(ref, _rows(tmp_path / "two"), resumed=True)
  _assert_rows_close(ref, _rows(tmp_path / "one"), resumed=True)
  print(f"\ntwo processes x 4 devices: {two_secs:.1f} s; one process x 8 devices: {one_secs:.1f} s "
        "(40 steps, eval and a k=4 bound, compile included)")


def test_a_dead_peer_stops_the_run_and_leaves_committed_checkpoints(tfds_dir, tmp_path):
  workdir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
  common = [f"--workdir={workdir}", "--config.num_steps=100000", "--config.eval.iwae_k=0",
            "--multihost", f"--coordinator_address=localhost:{_free_port()}",
            "--num_processes=2", "--heartbeat_timeout_secs=10"]
  procs = [_popen(common + [f"--process_id={i}"], 4) for i in (0, 1)]
  deadline = time.time() + 300
  while not (ckpts / "40").is_dir() and time.time() < deadline:
    time.sleep(0.2)
  procs[1].send_signal(signal.SIGKILL)
  t_kill = time.time()
  out = procs[0].communicate(timeout=240)[0]
  procs[1].communicate(timeout=60)
  stopped_after = time.time() - t_kill
  assert procs[0].returncode != 0
  assert "another task died" in out, out[-3000:]
  # Only committed steps count; a save that was in flight stays a temporary folder, never a step.
  committed = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
  assert committed and 40 in committed
  # One process resumes from the newest committed step and trains on.
  last = max(committed)
  out = _one(workdir, last + 20, devices=8, extra=["--config.eval.iwae_k=0"])
  assert f"resuming from step {last}" in out
  print(f"\nprocess 0 stopped {stopped_after:.1f} s after its peer was killed (heartbeat timeout "
        f"10 s); resumed from step {last}")
