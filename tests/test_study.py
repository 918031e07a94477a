"""The study: verdicts on synthetic measurements, the derived metrics on synthetic cards, a report
that regenerates byte for byte, resumption, and (slow) the tiny study end to end."""

import json
import math
import pathlib

import pytest

import configs as configs_lib
from configs import study_mnist
from gen_jax import cards as cards_lib
from gen_jax import study
from gen_jax.study import claims, report, runner
from gen_jax.study.claims import Estimate

CLAIM = claims.Claim("k", "A beats B", "test", "quality", "fid", "lower", ("a1", "a2"), ("b1",), "")


@pytest.mark.parametrize("estimates, expected", [
    ({"a1": Estimate(10, 1, 3), "a2": Estimate(12, 1, 3), "b1": Estimate(20, 1, 3)}, "supported"),
    ({"a1": Estimate(30, 1, 3), "a2": Estimate(25, 1, 3), "b1": Estimate(20, 1, 3)}, "contradicted"),
    ({"a1": Estimate(10, 1, 3), "a2": Estimate(30, 1, 3), "b1": Estimate(20, 1, 3)}, "depends"),
    # a1 within 2 standard errors of the difference (2 * sqrt(2) * 3 = 8.5): a tie; a2 wins: depends
    ({"a1": Estimate(12, 3, 3), "a2": Estimate(10, 1, 3), "b1": Estimate(20, 3, 3)}, "depends"),
    ({"a1": Estimate(12, 3, 3), "a2": Estimate(12, 3, 3), "b1": Estimate(20, 3, 3)}, "no difference"),
    ({"a1": Estimate(1, 0, 2), "b1": Estimate(1, 0, 2)}, "no difference"),   # identical
    ({"a1": Estimate(10, 1, 3), "b1": Estimate(20, 1, 3)}, "supported"),   # a2 not measured
    ({"a1": Estimate(10, 1, 3)}, "not measured"),
])
def test_verdicts(estimates, expected):
  v = claims.verdict(CLAIM, estimates)
  assert v.verdict == expected
  if expected == "depends":
    assert "vs" in v.reason()


def test_higher_is_better_flips_the_comparison():
  up = claims.Claim("k", "", "", "", "precision", "higher", ("a",), ("b",), "")
  assert claims.verdict(up, {"a": Estimate(0.9, 0.01, 3), "b": Estimate(0.5, 0.01, 3)}).verdict == "supported"
  assert claims.verdict(up, {"a": Estimate(0.5, 0.01, 3), "b": Estimate(0.9, 0.01, 3)}).verdict == "contradicted"


def test_estimate_is_the_mean_and_its_standard_error():
  e = Estimate.of([1.0, 2.0, 3.0, 6.0])
  assert e.mean == 3.0 and e.n == 4
  assert e.se == pytest.approx(math.sqrt(((4 + 1 + 0 + 9) / 3)) / 2)


def _card(metric, value, family, seed=0, lr=1.0, batch=1.0, **extra):
  return cards_lib.make(metric, value, model=family, seeds={"train": seed}, lr_scale=lr,
                        batch_scale=batch, batch_size=100, **extra)


def synthetic_cards():
  """Two families: 'steady' (the same FID every seed, a smooth curve), 'wobbly' (spread over seeds,
  an oscillating curve, a diverged run at learning rate x3)."""
  out = []
  for seed, fid in ((0, 10.0), (1, 10.0)):
    out += [_card("fid", fid, "steady", seed, step=400), _card("precision", 0.8, "steady", seed)]
    out += [_card("fid_curve", v, "steady", seed, step=s, secs=5 + s / 10)   # 5 s compiling
            for s, v in ((100, 80.0), (200, 40.0), (300, 20.0), (400, 10.0))]
  for seed, fid in ((0, 8.0), (1, 12.0)):
    out += [_card("fid", fid, "wobbly", seed, step=400), _card("precision", 0.9, "wobbly", seed)]
    out += [_card("fid_curve", v, "wobbly", seed, step=s, secs=s / 20)
            for s, v in ((100, 15.0), (200, 30.0), (300, 2 * fid), (400, fid))]
  out += [_card("fid", 20.0, "steady", 0, lr=3.0, step=400), _card("diverged", 0, "steady", 0, lr=3.0)]
  out += [_card("diverged", 1, "wobbly", 0, lr=3.0)]
  out += [_card("diverged", 0, "sampleless", 0, lr=x) for x in (1.0, 3.0)]   # an AE: no FID
  for fam in ("steady", "wobbly"):
    out += [_card("diverged", 0, fam, s) for s in (0, 1)]
    out += [_card("train_flops_per_image", 1e6, fam), _card("params", 1000, fam)]
  out += [_card("probe_accuracy_100", v, "steady", seed) for seed, v in ((0, 0.7), (1, 0.8))]
  out += [_card("secs_training", 60.0, "steady", seed) for seed in (0, 1)]
  out += [_card("secs_training", 90.0, "steady", 0, lr=3.0), _card("secs_applications", 30.0, "steady")]
  out += [_card("secs_training", 120.0, "wobbly", 0), _card("secs_inception", 300.0, "wobbly")]
  return out


def test_the_cost_table_sums_each_family_s_stages():
  lines = report.cost(synthetic_cards())
  # steady: 60 + 60 + 90 s training (3 runs), 30 s applications; wobbly: 120 s, and 300 s Inception
  assert "| steady | 3 | 3.5 | 0.5 | — | 4.0 |" in lines
  assert "| wobbly | 1 | 2.0 | — | 5.0 | 7.0 |" in lines
  assert "| **all** | 4 | 5.5 | 0.5 | 5.0 | **11.0** |" in lines
  assert not any(l.startswith("| sampleless") for l in lines)   # it has no stage cards
  assert report.cost([c for c in synthetic_cards() if not c["metric"].startswith("secs_")]) == []


def test_summary_of_synthetic_cards():
  s = report.summarize(synthetic_cards())
  assert s["steady"]["fid"] == Estimate(10.0, 0.0, 2)
  assert s["steady"]["fid_seed_cv"].mean == 0.0
  assert s["wobbly"]["fid_seed_cv"].mean == pytest.approx(math.sqrt(8) / 10)
  assert s["steady"]["fid_lr_sensitivity"].mean == 2.0          # 20 / 10
  assert math.isinf(s["wobbly"]["fid_lr_sensitivity"].mean)      # its x3 run diverged
  assert s["steady"]["failure_rate"].mean == 0.0
  assert s["wobbly"]["failure_rate"].mean == pytest.approx(1 / 3)
  # steady reaches 2 x 10 = 20 at step 300 (35 s); wobbly reaches 2 x final at step 100 (5 s)
  assert s["steady"]["steps_to_threshold"] == Estimate(300.0, 0.0, 2)
  assert s["steady"]["secs_to_threshold"].mean == 35.0
  # 300 steps of 100 images in the 30 s between the first and last checkpoints (the 5 s of
  # compilation before the first left out: 40,000 images in 45 s would be 889/s)
  assert s["steady"]["steady_images_per_sec"] == Estimate(1000.0, 0.0, 2)
  assert s["wobbly"]["steady_images_per_sec"].mean == pytest.approx(2000.0)
  assert s["wobbly"]["steps_to_threshold"].mean == 100.0
  # second half of the curve: steady 20 -> 10, wobbly 2f -> f: both |log 2|
  assert s["steady"]["fid_oscillation"].mean == pytest.approx(math.log(2))
  assert s["steady"]["total_train_tflops"].mean == pytest.approx(1e6 * 100 * 400 / 1e12)
  assert "fid_lr_sensitivity" not in s["sampleless"] and s["sampleless"]["failure_rate"].mean == 0
  probe = s["steady"]["probe_accuracy_100"]
  assert (probe.mean, probe.se, probe.n) == (pytest.approx(0.75), pytest.approx(0.05), 2)


def test_report_regenerates_byte_for_byte(tmp_path):
  out = tmp_path / "report"
  out.mkdir()
  cards_lib.write(out / study.CARDS, synthetic_cards())
  first = study.write_report(out, title="T", preamble="P")
  files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
  assert {"STUDY.md", "quality_vs_time_and_flops.png", "seed_spread.png",
          "lr_sensitivity.png"} <= set(files)
  for p in out.glob("*.png"):
    p.unlink()
  (out / "STUDY.md").unlink()
  assert study.regenerate(out) == first
  assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == files
  text = files["STUDY.md"].decode()
  assert "| steady | 10 | 0.8 |" in text
  assert "**not measured**" in text
  assert "## What the study cost" in text


def test_run_config_scales_the_learning_rates_and_batch_and_spends_the_budget():
  study_cfg = study_mnist.get_config("quick")
  spec = runner.RunSpec("dcgan", 1, lr_scale=3.0)
  config = runner.run_config(study_cfg, spec)
  assert config.seed == 1 and config.model.cat_dim == 0
  assert config.optimizer.learning_rate == pytest.approx(3 * 4e-4)
  assert config.disc_optimizer.learning_rate == pytest.approx(3 * 4e-4)
  assert config.num_steps * config.batch_size == pytest.approx(12_800, rel=0.05)
  assert config.num_steps % study_cfg.num_evals == 0
  assert config.checkpoint.every_steps == config.num_steps // study_cfg.num_evals
  # The loop evaluates once, at the end, without grids: the checkpoints are judged by the study.
  assert config.eval.every_steps == config.num_steps and config.eval.num_images == 0
  beta = runner.run_config(study_cfg, runner.RunSpec("beta_vae", 0, batch_scale=0.5))
  assert beta.model.beta == 4.0 and beta.batch_size == 64
  # Glow's warm-up (200 of 8,433 steps) stays the same share of the 200-step run.
  flow = runner.run_config(study_cfg, runner.RunSpec("flow", 0))
  assert (flow.optimizer.decay_steps, flow.optimizer.warmup_steps) == (200, 4)


@pytest.mark.parametrize("name", ["study_mnist", "study_fashion_mnist"])
def test_every_family_of_both_study_configs_builds_on_its_dataset(name):
  from gen_jax import steps  # pylint: disable=import-outside-toplevel
  study_cfg = configs_lib.load(f"{name}:quick")
  dataset = "fashion_mnist" if "fashion" in name else "mnist"
  assert study_cfg.dataset == dataset
  for family in study_cfg.families:
    config = runner.run_config(study_cfg, runner.RunSpec(family, 0))
    # each family trains on the study's images (MNIST's statically binarized copy for the MNIST
    # RBM and DBN), a GAN's own scores use that dataset's classifier, and it builds from its run
    # config, before any training time is spent
    allowed = (dataset, "binarized_mnist") if dataset == "mnist" else (dataset,)
    assert config.dataset.name in allowed, (family, config.dataset.name)
    if config.eval.get("classifier"):
      assert config.eval.classifier == dataset.replace("_", "-") + "-cnn-v1", family
    assert config.eval.at_end is False
    built = steps.get(config.model.family).from_config(config, (28, 28, 1))
    assert built.train_step is not None, family


def test_the_grid_has_seeds_then_sweeps():
  s = study_mnist.get_config("quick")
  names = [spec.name for spec in runner.specs(s)]
  assert len(names) == len(s.families) * (len(s.seeds) + len(s.lr_scales) - 1)
  assert names[:2] == ["ae-seed0-lr1-batch1", "beta_vae-seed0-lr1-batch1"]   # families sorted
  assert names.index("dcgan-seed1-lr1-batch1") < names.index("dcgan-seed0-lr3-batch1")


def test_a_finished_run_is_skipped(tmp_path):
  s = study_mnist.get_config("tiny")
  spec = runner.RunSpec("vae", 0)
  done = tmp_path / "runs" / spec.name / "study_cards.jsonl"
  done.parent.mkdir(parents=True)
  cards_lib.write(done, [_card("fid", 1.0, "vae")])
  # No judge and no data are needed: the run's cards are read back, nothing is trained.
  assert runner.run(s, spec, tmp_path, judge=None) == [json.loads(done.read_text())]


def test_a_committed_report_marks_its_runs_finished_in_a_fresh_workdir(tmp_path):
  s = study_mnist.get_config("tiny")
  s.report_dir = str(tmp_path / "report")
  got = [_card("fid", 700.0, "vae", 1), _card("wall_secs", 3.0, "vae", 1),
         _card("fid", 650.0, "gan", 0, lr=3.0)]
  cards_lib.write(tmp_path / "report" / study.CARDS, got)
  restored = study.restore_from_report(s, tmp_path / "work")
  assert restored == ["vae-seed1-lr1-batch1", "gan-seed0-lr3-batch1"]
  assert cards_lib.read([tmp_path / "work" / "runs" / "vae-seed1-lr1-batch1" / "study_cards.jsonl"]
                        ) == [json.loads(json.dumps(c)) for c in got[:2]]
  assert study.restore_from_report(s, tmp_path / "work") == []   # already there


def test_cards_of_a_changed_config_are_not_restored(tmp_path):
  s = study_mnist.get_config("tiny")
  s.report_dir = str(tmp_path / "report")
  now = cards_lib.config_hash(runner.run_config(s, runner.RunSpec("vae", 0)))
  cards_lib.write(tmp_path / "report" / study.CARDS,
                  [_card("fid", 700.0, "vae", 0, config_hash=now),
                   _card("fid", 650.0, "gan", 0, config_hash="0123456789abcdef")])
  assert study.restore_from_report(s, tmp_path / "work") == ["vae-seed0-lr1-batch1"]
  assert not (tmp_path / "work" / "runs" / "gan-seed0-lr1-batch1").exists()


def test_restore_puts_application_cards_in_their_own_file(tmp_path):
  s = study_mnist.get_config("tiny")
  s.report_dir = str(tmp_path / "report")
  got = [_card("fid", 700.0, "vae", 0), _card("probe_accuracy_100", 0.7, "vae", 0)]
  cards_lib.write(tmp_path / "report" / study.CARDS, got)
  assert study.restore_from_report(s, tmp_path / "work") == ["vae-seed0-lr1-batch1"]
  run_dir = tmp_path / "work" / "runs" / "vae-seed0-lr1-batch1"
  assert [c["metric"] for c in cards_lib.read([run_dir / runner.RUN_FILE])] == ["fid"]
  assert [c["metric"] for c in cards_lib.read([run_dir / runner.APPS_FILE])] == ["probe_accuracy_100"]


def test_the_finalists_are_the_lowest_mean_fids_of_the_base_runs():
  s = study_mnist.get_config("quick")
  s.inception_finalists = 2
  got = [_card("fid", 30.0, "a", 0), _card("fid", 10.0, "a", 1),     # mean 20
         _card("fid", 15.0, "b", 0), _card("fid", 16.0, "b", 1),     # mean 15.5
         _card("fid", 5.0, "c", 0, lr=3.0), _card("fid", 25.0, "c", 0),   # base 25
         _card("probe_accuracy_100", 0.1, "d", 0)]
  assert runner.finalists(s, got) == ["b", "a"]


def test_the_inception_stage_skips_without_weights(tmp_path, monkeypatch):
  from gen_jax.metrics import inception
  monkeypatch.setattr(inception, "default_params_path", lambda: tmp_path / "none.msgpack")
  s = study_mnist.get_config("tiny")
  assert runner.inception(s, "vae", tmp_path) == []
  assert not (tmp_path / "runs" / "vae-seed0-lr1-batch1" / runner.INCEPTION_FILE).exists()


def test_each_metric_has_its_stage_file():
  assert runner.file_of("fid") == runner.RUN_FILE
  assert runner.file_of("completion_accuracy") == runner.APPS_FILE
  assert runner.file_of("fid_inception") == runner.INCEPTION_FILE
  assert [runner.file_of(m) for m in runner.STAGE_SECS.values()] == list(runner.STAGE_SECS)


def test_the_application_cards_a_run_keeps():
  config = study_mnist.get_config("tiny")
  run_cfg = runner.run_config(config, runner.RunSpec("vae", 0))
  for path, value in config.apps_overrides:
    configs_lib.set_field(run_cfg, path, value, if_present=True)
  me = "vae-seed0-lr1-batch1"
  written = [
      cards_lib.make("completion_accuracy", 0.8, model=me, mask="bottom"),
      cards_lib.make("completion_accuracy", 0.3, model="known-pixel mean (100 images)", mask="bottom"),
      cards_lib.make("linear_probe_accuracy", 0.6, model=me, labels=100, features="encoder"),
      cards_lib.make("linear_probe_accuracy", 0.7, model=me, labels=100, features="discriminator"),
      cards_lib.make("linear_probe_accuracy", 0.9, model="raw pixels (mnist)", labels=100),
      *[cards_lib.make("codec_accuracy", a, model=me, codec=f"{me} code", quant_step=q)
        for q, a in ((1.0, 0.5), (0.25, 0.9), (0.5, 0.8))],
      cards_lib.make("bits_at_accuracy", 50.0, model=me, codec=f"{me} code"),
      cards_lib.make("bits_at_accuracy", 300.0, model="JPEG (mnist)", codec="JPEG"),
  ]
  got = [(m, c["value"]) for pick in (runner._pick_completion, runner._pick_probe,
                                       runner._pick_compress)
         for m, c in pick(written, run_cfg, me)]
  assert got == [("completion_accuracy", 0.8), ("probe_accuracy_100", 0.7),
                 ("recon_accuracy", 0.9), ("bits_at_accuracy", 50.0)]
  assert set(m for m, _ in got) == set(report.APPLICATIONS)


def test_a_study_config_in_another_mode_is_a_clear_error(tmp_path):
  import subprocess
  import sys
  from conftest import ROOT
  out = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--config=configs/study_mnist.py",
                        f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 1
  assert "--mode=study runs a study config" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_tiny_study_runs_resumes_and_reports(tfds_dir, tmp_path):
  s = study_mnist.get_config("tiny")
  s.report_dir = str(tmp_path / "report")
  path = study.run(s, tmp_path / "work")
  text = pathlib.Path(path).read_text()
  assert "| vae |" in text and "| gan |" in text
  got = cards_lib.read([tmp_path / "report" / study.CARDS])
  assert {c["metric"] for c in got} >= {"fid", "fid_curve", "train_images_per_sec", "wall_secs",
                                         "train_flops_per_image", "nll"}
  apps = {(c["model"], c["metric"], c.get("features")) for c in got if c["metric"] in report.APPLICATIONS}
  for seed in s.seeds:   # every seed's base run: the VAE's encoder, the GAN's discriminator
    assert sum(1 for c in got if c["metric"] == "completion_accuracy" and c["model"] == "vae"
               and c["seeds"]["train"] == seed) == 1
  assert {("vae", "completion_accuracy", None), ("vae", "probe_accuracy_100", "encoder"),
          ("vae", "recon_accuracy", None), ("gan", "completion_accuracy", None),
          ("gan", "probe_accuracy_100", "discriminator")} <= apps
  assert "| vae |" in text.split("## Applications")[1]
  run_dir = tmp_path / "work" / "runs" / "vae-seed0-lr1-batch1"
  eval_steps = [r["step"] for r in runner._rows(run_dir) if "eval/neg_elbo" in r]
  assert eval_steps == [runner.run_config(s, runner.RunSpec("vae", 0)).num_steps]
  assert [p.name for p in run_dir.glob("*.png")] == ["study_samples.png"]
  # Rerun: every run is read back, none trained again; the same report.
  before = pathlib.Path(path).read_bytes()
  stamps = {p: p.stat().st_mtime for p in (tmp_path / "work" / "runs").glob("*/metrics.jsonl")}
  study.run(s, tmp_path / "work")
  assert {p: p.stat().st_mtime for p in stamps} == stamps
  assert pathlib.Path(path).read_bytes() == before
