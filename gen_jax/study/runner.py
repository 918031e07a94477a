"""Runs the study's grid of trainings and measures each the same way, as metric cards.

The grid (:func:`specs`): every family at every seed of ``study.seeds``; the learning-rate sweep
(``study.lr_scales``, every learning rate of the config multiplied) and the batch sweep
(``study.batch_scales``) at the first seed. Every run trains on the same number of images
(``study.budget_images``) and keeps ``study.num_evals`` evenly spaced checkpoints, each judged by
the same sample-quality protocol (:class:`Judge`); the loop itself evaluates on the test split only
at the end, and only where the family's likelihood reads it (``eval.at_end=False``).

Each run writes ``<study_dir>/runs/<name>/study_cards.jsonl`` when it is complete; a run whose file
exists is skipped, so an interrupted study continues where it stopped. The cards of a run:

* ``fid``, ``precision``, ``recall``, ``inception_score``, ``modes_covered`` of ``study.num_samples``
  samples of the final state against the study dataset's test images, in the domain network's
  features (the same real set and network for every family);
* ``fid_curve``: FID at each kept checkpoint (``step``; ``secs``, the loop's wall-clock to that step);
* ``train_images_per_sec`` (the loop's own rate over the run), ``wall_secs`` (training and the loop's
  evaluations, start-up and compilation included), ``nll`` (the family's own likelihood, where it
  has one: IWAE bound, AIS, DBN bound, exact for flows), ``diverged`` and ``collapsed`` (0 or 1);
* at the first seed with scales 1: ``params``, ``train_flops_per_image`` and ``train_peak_memory``
  of the compiled train step (:mod:`gen_jax.compute`).

The applications axis (:func:`applications`, ``study.applications``), at every seed's base run, in
``<study_dir>/runs/<name>/study_apps_cards.jsonl`` (resumable the same way; a run trained before
gets it from its newest checkpoint), each with ``study.apps_overrides`` applied to the run's config:

* ``completion_accuracy``: the domain classifier's accuracy on test images completed by the
  family's own method (:mod:`gen_jax.applications.suite`) under the mask ``apps.masks[0]``;
* ``probe_accuracy_100``: the linear probe's test accuracy with ``probe.sizes[0]`` labels (100) on
  the family's best feature source, encoder or discriminator (:mod:`gen_jax.representation.probe`);
* ``recon_accuracy``: the domain classifier's accuracy on decoded codes at the finest
  quantisation step (what the code keeps of the class), and ``bits_at_accuracy``: bits per test
  image where the quantised code, decoded, reaches ``compress.target_accuracy`` (95 %) accuracy,
  where it does (:mod:`gen_jax.representation.compress`);

each only where the family has what it needs (a completion method, features, an encoder and
decoder); the others are skipped with a log line.

Finally :func:`inception`: the Inception FID (``fid_inception``) of the finalists, the
``study.inception_finalists`` families with the lowest domain-network FID, at their first seed
(``<study_dir>/runs/<name>/study_inception_cards.jsonl``).

Each stage's file also holds its wall-clock (:data:`STAGE_SECS`: ``secs_training``,
``secs_applications``, ``secs_inception``), so the report says what the study cost, however many
invocations it took.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any, Optional

import jax
import ml_collections
import numpy as np

from gen_jax import cards, checkpoint, compute, evaluate, writers
from gen_jax import run as run_lib
from gen_jax.study.report import APPLICATIONS, STAGES

# Sample-quality signals of a collapsed generator: fewer classes than this among the samples, or a
# pixel standard deviation across samples below this (all samples alike).
MIN_MODES, MIN_PIXEL_STD = 5, 0.02
LIKELIHOOD_KEYS = ("eval/nll_iwae", "eval/nll_ais", "eval/nll_bound", "eval/nll")
RUN_FILE, APPS_FILE, INCEPTION_FILE = ("study_cards.jsonl", "study_apps_cards.jsonl",
                                      "study_inception_cards.jsonl")
STAGE_FILES = (RUN_FILE, APPS_FILE, INCEPTION_FILE)   # a run is finished when it has the first
# each stage's own wall-clock card, start-up and compilation included: what the study cost
STAGE_SECS = dict(zip(STAGE_FILES, (metric for metric, _ in STAGES), strict=True))


def file_of(metric: str) -> str:
  """The file of a run's folder that holds cards of ``metric`` (each stage resumes on its own)."""
  if metric in APPLICATIONS or metric == STAGE_SECS[APPS_FILE]:
    return APPS_FILE
  if metric in ("fid_inception", STAGE_SECS[INCEPTION_FILE]):
    return INCEPTION_FILE
  return RUN_FILE


def _stage_secs(stage_file: str, t0: float, **common) -> dict[str, Any]:
  return cards.make(STAGE_SECS[stage_file], round(time.time() - t0, 1), unit="s", **common)


@dataclasses.dataclass(frozen=True)
class RunSpec:
  family: str
  seed: int
  lr_scale: float = 1.0
  batch_scale: float = 1.0

  @property
  def name(self) -> str:
    return f"{self.family}-seed{self.seed}-lr{self.lr_scale:g}-batch{self.batch_scale:g}"

  @property
  def is_base(self) -> bool:
    return self.lr_scale == 1.0 and self.batch_scale == 1.0


def specs(study: ml_collections.ConfigDict) -> list[RunSpec]:
  """The study's runs, seeds first (the quality and stability axes need them), then the sweeps."""
  out = [RunSpec(f, s) for s in study.seeds for f in study.families]
  first = study.seeds[0]
  out += [RunSpec(f, first, lr_scale=x) for f in study.families for x in study.lr_scales if x != 1]
  out += [RunSpec(f, first, batch_scale=x) for f in study.families for x in study.batch_scales
          if x != 1]
  return out


def run_config(study: ml_collections.ConfigDict, spec: RunSpec) -> ml_collections.ConfigDict:
  """The training config of one run: the family's config file with the study's overrides, seed,
  scaled learning rates and batch, the images budget and the evaluation cadence; the family's
  likelihood bound capped at ``study.iwae_k`` importance samples, and a GAN's own end-of-run
  Inception Score (final_metrics.json, not a study card) on at most ``study.num_samples``."""
  import configs  # pylint: disable=import-outside-toplevel  (the repository's config files)
  entry = study.families[spec.family]
  config = configs.load(entry.config)
  for path, value in entry.overrides:
    configs.set_field(config, path, value)
  config.seed = spec.seed
  for name in ("optimizer", "disc_optimizer"):
    if name in config:
      config[name].learning_rate = config[name].learning_rate * spec.lr_scale
  batch = int(round(config.batch_size * spec.batch_scale))
  config.batch_size = max(8, batch - batch % 8)
  config.num_steps = max(study.num_evals, study.budget_images // config.batch_size)
  every = max(1, config.num_steps // study.num_evals)
  config.num_steps = every * study.num_evals
  # Schedules set in epochs follow the budget: a learning-rate decay over the run (over each
  # layer's half for the DBN, whose second layer starts halfway), its warm-up the same share of it.
  if "layer1_steps" in config.model:
    config.model.layer1_steps = config.num_steps // 2
  if config.optimizer.decay_steps:
    decay = config.num_steps // (2 if "layer1_steps" in config.model else 1)
    if config.optimizer.get("warmup_steps"):   # the RBM's and DBN's optimizers have none
      config.optimizer.warmup_steps = (config.optimizer.warmup_steps * decay
                                       // config.optimizer.decay_steps)
    config.optimizer.decay_steps = decay
  # The quality curve comes from the kept checkpoints (run()) and the likelihood from the final
  # metrics (IWAE bound, AIS), so the loop's test-split evaluation runs only where those read it
  # (the RBM's and DBN's free energy): no GAN's discriminator statistics on 10,000 test images.
  config.eval.every_steps = config.num_steps
  config.eval.at_end = False
  config.checkpoint.every_steps = every
  config.checkpoint.max_to_keep = study.num_evals + 1
  config.steps_per_dispatch = min(config.steps_per_dispatch, every)
  config.tensorboard = False
  if "iwae_k" in config.eval:
    config.eval.iwae_k = min(config.eval.iwae_k, study.iwae_k)
  if "is_num_samples" in config.eval:   # a GAN's own end-of-run Inception Score (not the study's)
    config.eval.is_num_samples = min(config.eval.is_num_samples, study.num_samples)
  for key, value in study.run_overrides:
    configs.set_field(config, key, value, if_present=True)
  return config


class Judge:
  """The study's one sample-quality protocol: ``num_samples`` samples against the test split of
  ``dataset`` in its domain network's features."""

  def __init__(self, dataset: str, *, num_real: int, seed: int = 0):
    from gen_jax.metrics import networks  # pylint: disable=import-outside-toplevel
    self.dataset, self.seed = dataset, seed
    self.net = networks.load(networks.DEFAULT_FOR_DATASET[dataset])
    real, _ = evaluate.real_images(dataset, "test", num_real, seed=seed)
    self.num_real = len(real)
    self.real_features, _ = evaluate.network_outputs(self.net, real)

  def __call__(self, images: np.ndarray) -> dict[str, float]:
    fake_f, fake_p = evaluate.network_outputs(self.net, images)
    m = evaluate.sample_quality_metrics(self.real_features, fake_f, fake_p, seed=self.seed,
                                        kid_num_subsets=0)   # the study reports no KID
    out = {k: float(m[k][0]) for k in ("fid", "precision", "recall", "inception_score",
                                       "modes_covered")}
    out["pixel_std"] = float((images.astype(np.float32) / 255.0).std(axis=0).mean())
    return out


def _sampler(run):
  """The family's sample function (a conditional family's: the classes in turn); one per run, so
  that drawing from each of its checkpoints compiles it once."""
  fn, classes = run.family.sample, run.family.num_classes
  return (lambda s, k, n: fn(s, k, n, jax.numpy.arange(n) % classes)) if classes else fn


def _samples(sampler, state, num: int, seed: int) -> np.ndarray:
  """``num`` samples of ``sampler`` (:func:`_sampler`) as uint8."""
  return evaluate.generate(sampler, state, jax.random.PRNGKey(seed), num, 500)


def _common(study, spec: RunSpec, config, command: Optional[str]) -> dict[str, Any]:
  """The fields every card of a run carries."""
  return dict(model=spec.family, family=config.model.family, dataset=study.dataset,
              seeds={"train": spec.seed, "sample": study.sample_seed},
              config_hash=cards.config_hash(config), command=command,
              lr_scale=spec.lr_scale, batch_size=config.batch_size, batch_scale=spec.batch_scale,
              **cards.environment())


def _rows(workdir: pathlib.Path) -> list[dict]:
  path = workdir / "metrics.jsonl"
  return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def run(study: ml_collections.ConfigDict, spec: RunSpec, study_dir: pathlib.Path, judge: Judge,
        *, command: Optional[str] = None) -> list[dict[str, Any]]:
  """Trains and measures one run (or reads its cards if it finished before)."""
  from gen_jax import train  # pylint: disable=import-outside-toplevel
  workdir = pathlib.Path(study_dir) / "runs" / spec.name
  done = workdir / RUN_FILE
  if done.exists():
    logging.info("study: %s done before, skipped", spec.name)
    return cards.read([done])
  config = run_config(study, spec)
  common = _common(study, spec, config, command)
  quality = dict(common, n_gen=study.num_samples, n_real=judge.num_real, real_split="test",
                 feature_network=judge.net.name, feature_network_sha256=judge.net.sha256)
  out = []
  t0 = time.time()
  diverged = 0
  try:
    final = train.train_and_evaluate(config, workdir)
  except train.TrainingDivergedError as e:
    logging.warning("study: %s diverged: %s", spec.name, e)
    diverged, final = 1, {}
  wall = time.time() - t0
  rows = _rows(workdir)
  rates = [r for r in rows if "train/steps_per_sec" in r]
  ckpt = run_lib.checkpointer(config, workdir, async_save=False)
  steps = ckpt.all_steps()
  ckpt.close()
  curve, last, runset, sampler = [], None, None, None
  for step in steps:
    runset, state = run_lib.restore(config, workdir, step=step, run=runset)
    if runset.family.sample is None:   # the AE: no samples, so no sample quality
      continue
    sampler = sampler or _sampler(runset)
    images = _samples(sampler, state, study.num_samples, study.sample_seed)
    q = judge(images)
    rate = next((r["train/steps_per_sec"] for r in rates if r["step"] == step), None)
    secs = step / rate if rate else None
    curve.append((step, secs, q))
    last, last_images = (step, q, state), images
  if curve:
    for step, secs, q in curve:
      out.append(cards.make("fid_curve", q["fid"], step=step, secs=secs, **quality))
    step, q, state = last
    if spec.is_base and spec.seed == study.seeds[0]:
      writers.save_png(workdir / "study_samples.png",
                       writers.image_grid(last_images[:64].astype(np.float32) / 255.0))
    if step == config.num_steps:   # a diverged run has no final quality
      out += [cards.make(m, q[m], step=step, **quality)
              for m in ("fid", "precision", "recall", "inception_score", "modes_covered")]
    collapsed = int(q["modes_covered"] < MIN_MODES or q["pixel_std"] < MIN_PIXEL_STD)
  else:
    collapsed = 0
  if rates:
    out.append(cards.make("train_images_per_sec", rates[-1]["train/images_per_sec"],
                          unit="images/s", step=rates[-1]["step"], **common))
  out.append(cards.make("wall_secs", wall, unit="s", **common))
  out.append(cards.make("diverged", diverged, **common))
  out.append(cards.make("collapsed", collapsed, **common,
                        notes=f"fewer than {MIN_MODES} classes or pixel std < {MIN_PIXEL_STD}"))
  nll = next((final[k] for k in LIKELIHOOD_KEYS if k in final), None)
  if nll is not None:
    out.append(cards.make("nll", nll, unit="nats", step=final.get("step"), **common,
                          notes=next(k for k in LIKELIHOOD_KEYS if k in final)))
  if spec.is_base and spec.seed == study.seeds[0] and runset is not None:   # the newest state
    cost = compute.step_cost(runset, state)
    out += [cards.make("params", cost["params"], **common),
            cards.make("train_flops_per_image", cost["flops_per_image"], unit="FLOP", **common),
            cards.make("train_peak_memory", cost["peak_bytes"], unit="bytes", **common)]
  out.append(_stage_secs(RUN_FILE, t0, **common,
                         notes="training, the loop's evaluation and judging the checkpoints"))
  cards.write(done, out)
  logging.info("study: %s finished in %.0f s", spec.name, wall)
  return out


def _pick_completion(written, config, run_name):
  mask = config.apps.masks[0]
  return [("completion_accuracy", c) for c in written
          if c["metric"] == "completion_accuracy" and c["model"] == run_name and c.get("mask") == mask]


def _pick_probe(written, config, run_name):
  labels = min(config.probe.sizes)
  mine = [c for c in written if c["metric"] == "linear_probe_accuracy" and c["model"] == run_name
          and c.get("labels") == labels]
  return [("probe_accuracy_100", max(mine, key=lambda c: c["value"]))] if mine else []


def _pick_compress(written, config, run_name):
  mine = [c for c in written if c["model"] == run_name and c.get("codec") == f"{run_name} code"]
  finest = min((c for c in mine if c["metric"] == "codec_accuracy"),
               key=lambda c: c["quant_step"], default=None)
  return ([("recon_accuracy", finest)] if finest else []) + [
      ("bits_at_accuracy", c) for c in mine if c["metric"] == "bits_at_accuracy"]


# (module under gen_jax, the study cards it gives): launch.py's --mode=apps, probe and compress.
_APPLICATIONS = (("applications.suite", _pick_completion), ("representation.probe", _pick_probe),
                 ("representation.compress", _pick_compress))
_CARRIED = ("mask", "method", "labels", "features", "dim", "codec", "quant_step", "bits", "std",
            "std_kind", "unit", "notes", "secs", "n_real", "real_split", "feature_network",
            "feature_network_sha256")


def applications(study: ml_collections.ConfigDict, spec: RunSpec, study_dir: pathlib.Path, *,
                 command: Optional[str] = None) -> list[dict[str, Any]]:
  """The applications axis of one finished run (see the module docstring), from its newest
  checkpoint; read back if measured before."""
  import importlib  # pylint: disable=import-outside-toplevel
  import configs  # pylint: disable=import-outside-toplevel
  workdir = pathlib.Path(study_dir) / "runs" / spec.name
  done = workdir / APPS_FILE
  if done.exists():
    return cards.read([done])
  config = run_config(study, spec)
  common = _common(study, spec, config, command)   # the training config's hash
  for path, value in study.apps_overrides:
    configs.set_field(config, path, value, if_present=True)
  out = []
  t_stage = time.time()
  for module_name, pick in _APPLICATIONS:
    module = importlib.import_module(f"gen_jax.{module_name}")
    t0 = time.time()
    try:
      written = module.evaluate_workdir(config, workdir, command=command)
    except checkpoint.CheckpointError as e:
      logging.warning("study: %s has no checkpoint to measure its applications on (%s); delete "
                      "%s to train it again", spec.name, e, workdir / RUN_FILE)
      return []
    except ValueError as e:   # the family lacks what this application needs, or bad settings
      logging.warning("study: %s: no %s: %s", spec.name, module_name, e)
      continue
    for metric, c in pick(written, config, workdir.name):
      out.append(cards.make(metric, c["value"], step=c.get("step"),
                            **{k: c[k] for k in _CARRIED if c.get(k) is not None},
                            **{k: v for k, v in common.items() if k not in _CARRIED}))
    logging.info("study: %s: %s in %.0f s", spec.name, module_name, time.time() - t0)
  out.append(_stage_secs(APPS_FILE, t_stage, **common))
  cards.write(done, out)
  return out


def finalists(study: ml_collections.ConfigDict, all_cards: list[dict]) -> list[str]:
  """The ``study.inception_finalists`` families with the lowest mean final FID (domain network)
  over their base runs."""
  fids: dict[str, list[float]] = {}
  for c in all_cards:
    if (c["metric"] == "fid" and c.get("lr_scale", 1.0) == 1.0
        and c.get("batch_scale", 1.0) == 1.0):
      fids.setdefault(c["model"], []).append(c["value"])
  ranked = sorted(fids, key=lambda f: (float(np.mean(fids[f])), f))
  return ranked[:study.inception_finalists]


def inception(study: ml_collections.ConfigDict, family: str, study_dir: pathlib.Path, *,
              command: Optional[str] = None) -> list[dict[str, Any]]:
  """``fid_inception`` of a finalist's first-seed base run: ``study.inception_num`` samples of its
  final state against as many test images, in the FID Inception-v3's pool3 features
  (:func:`gen_jax.evaluate.cached_inception_features`; the test images' are computed once). Read
  back if measured before; nothing (and a log line naming the fix) without the network's weights."""
  from gen_jax.metrics import fid as fid_lib  # pylint: disable=import-outside-toplevel
  from gen_jax.metrics import inception as inception_lib  # pylint: disable=import-outside-toplevel
  spec = RunSpec(family, study.seeds[0])
  workdir = pathlib.Path(study_dir) / "runs" / spec.name
  done = workdir / INCEPTION_FILE
  if done.exists():
    return cards.read([done])
  try:
    params = inception_lib.load_params()
  except FileNotFoundError as e:
    logging.warning("study: no Inception FID for the finalists: %s", e)
    return []
  config = run_config(study, spec)
  common = _common(study, spec, config, command)
  t0 = time.time()
  try:
    runset, state = run_lib.restore(config, workdir)
  except checkpoint.CheckpointError as e:
    logging.warning("study: %s has no checkpoint for its Inception FID (%s)", spec.name, e)
    return []
  real, _ = evaluate.real_images(study.dataset, "test", study.inception_num, seed=study.sample_seed)
  fake = _samples(_sampler(runset), state, study.inception_num, study.sample_seed)
  feats = [evaluate.cached_inception_features(x, params=params) for x in (real, fake)]
  value = float(fid_lib.fid(*feats))
  secs = time.time() - t0
  out = [cards.make("fid_inception", value, step=int(state.step), n_gen=len(fake),
                    n_real=len(real), real_split="test",
                    feature_network=inception_lib.NETWORK_NAME,
                    feature_network_sha256=inception_lib.PARAMS_SHA256, secs=round(secs, 1),
                    notes=f"a finalist (the {study.inception_finalists} lowest domain-network FIDs)"
                          f"; {secs:.0f} s on {jax.devices()[0].platform}",
                    **common)]
  out.append(_stage_secs(INCEPTION_FILE, t0, **common))
  cards.write(done, out)
  logging.info("study: %s: Inception FID %.2f in %.0f s", spec.name, value, secs)
  return out


def run_all(study: ml_collections.ConfigDict, study_dir: str | pathlib.Path, *,
            command: Optional[str] = None) -> list[dict[str, Any]]:
  """Every run of :func:`specs` (finished ones read back); all their cards."""
  study_dir = pathlib.Path(study_dir)
  judge = Judge(study.dataset, num_real=study.num_real)
  out = []
  todo = specs(study)
  for i, spec in enumerate(todo):
    logging.info("study: run %d/%d: %s", i + 1, len(todo), spec.name)
    out += run(study, spec, study_dir, judge, command=command)
    if study.applications and spec.is_base:
      out += applications(study, spec, study_dir, command=command)
  for family in finalists(study, out):
    out += inception(study, family, study_dir, command=command)
  return out

