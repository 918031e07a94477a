"""``launch.py --mode=apps``: every application of a trained workdir, as PNG grids and cards.

    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist --mode=apps

restores the newest checkpoint of ``--workdir`` and, on the first ``apps.num_images`` labelled
test images of ``apps.dataset`` (grey levels in [0, 1], the same images for every family):

* **completion**, for each mask of ``apps.masks``, by the family's own method
  (``Family.inpaint_method``): cards ``completion_mse`` and ``completion_psnr`` (over the missing
  pixels only; PSNR the mean of per-image values in dB, ± its standard error) and
  ``completion_accuracy`` (the domain classifier's accuracy on the completed images against the
  true labels); the same three for the known-pixel-mean fill (model ``known-pixel mean (N
  images)``: the floor) and for the nearest training image on the known pixels (``nearest
  training image (N images)``, with ``apps.nearest_neighbour``: the non-parametric reference),
  and the classifier's accuracy on the real images (``real images (N images)``: the ceiling);
  with ``apps.num_chains`` > 1 a completion is the mean of that many chains (an estimate of the
  posterior mean: :func:`gen_jax.applications.completion.mean_of_chains`);
  ``<workdir>/apps/completion_<mask>.png``: rows of (masked input, completion, original);
* **conditional generation**, for conditional families (``Family.num_classes``): the domain
  classifier's accuracy on ``apps.cas_num`` samples of the requested classes
  (``conditional_accuracy``, per class in its notes; ``apps/conditional_samples.png``, one class
  per column) and the classification accuracy score (``cas``) with its real-data reference and the
  few-labels comparison (:mod:`gen_jax.applications.conditional`);
* **interpolation**, for families with a decoder: ``<workdir>/apps/interpolation_encoder.png``
  (straight lines between the codes of test images, for families with an encoder) and
  ``interpolation_prior.png`` (``apps.interpolation`` between prior draws), and the perceptual
  path length on the domain network's features (``ppl_encoder``, ``ppl_prior``;
  :mod:`gen_jax.applications.interpolation`);

all written to ``<workdir>/apps_cards.jsonl`` (and returned), with each application's seconds in
its cards' notes.
"""

from __future__ import annotations

import logging
import pathlib
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_jax import cards, data, writers
from gen_jax import run as run_lib
from gen_jax.applications import completion, conditional, interpolation
from gen_jax.applications import masks as masks_lib
from gen_jax.metrics import networks


# The model names of the reference cards: the floor, the ceiling, the non-parametric reference.
FLOOR, CEILING, NEAREST = "known-pixel mean", "real images", "nearest training image"


def dataset_of(config: ml_collections.ConfigDict) -> str:
  """The labelled dataset the applications use (:func:`gen_jax.data.labelled_dataset`)."""
  return data.labelled_dataset(config, "apps")


def evaluation_images(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """(float32 images in [0, 1], int labels): the first ``apps.num_images`` of the test split."""
  name = dataset_of(config)
  images, labels = networks.labelled_test_split(name, data_dir=config.dataset.data_dir or None)
  n = config.apps.num_images or len(images)
  x = np.asarray(images[:n], np.float32) / data.info(name).max_value
  return x, np.asarray(labels[:n])


def training_images(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """(float32 images in [0, 1], int labels): the whole training split of ``apps.dataset``."""
  ds = data.info(dataset_of(config))
  data_dir = config.dataset.data_dir or None
  x, y = data.read_rows(ds.tfds_name, ds.train_split, 0,
                        data.num_examples(ds.tfds_name, ds.train_split, data_dir),
                        data_dir=data_dir)
  return np.asarray(x, np.float32) / ds.max_value, np.asarray(y)


def check(config: ml_collections.ConfigDict, family) -> None:
  """Clear errors for apps settings this family or the code cannot use."""
  if family.inpaint is None and family.decode is None and not family.num_classes:
    raise ValueError(f"the {config.model.family} family serves none of the applications "
                     "(completion, interpolation, conditional samples); --mode=apps is for the "
                     "generative families.")
  for name in config.apps.masks:
    masks_lib.check(name)
  masks_lib.check(config.apps.grid_mask)
  interpolation.check(config.apps.interpolation)
  if config.apps.method and config.model.family != "vae":
    raise ValueError(f"apps.method={config.apps.method!r}: only the VAE has a choice of completion "
                     f"method; the {config.model.family} family uses {family.inpaint_method!r}. "
                     "Leave apps.method ''.")
  if config.apps.num_chains < 1:
    raise ValueError(f"apps.num_chains={config.apps.num_chains}: the number of completions "
                     "averaged must be >= 1 (1: one completion, a draw where the method samples).")
  if config.apps.batch_size < 1 or not 0 < config.apps.ppl_epsilon < 1:
    raise ValueError("apps.batch_size must be positive and apps.ppl_epsilon in (0, 1).")


def _batches(n: int, size: int):
  return [(i, lo, min(lo + size, n)) for i, lo in enumerate(range(0, n, size))]


def complete(inpaint: Callable, state, images: np.ndarray, labels: np.ndarray, mask_name: str,
             net: networks.FeatureNetwork, *, batch_size: int, seed: int
             ) -> dict[str, np.ndarray]:
  """Per-image ``mse``, ``psnr`` and ``correct`` of ``inpaint(state, images, mask, key)`` (a
  jitted function -> completed images), and the first 16 (masked, completed, original) images
  for the grid. Batch i uses key fold_in(PRNGKey(seed), i) for its mask and its chain."""
  out = {"mse": [], "psnr": [], "correct": []}
  first = None
  for i, lo, hi in _batches(len(images), batch_size):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), i)
    mask_key, run_key = jax.random.split(key)
    x = jnp.asarray(images[lo:hi])
    mask = masks_lib.make(mask_name, x.shape[1:], num=hi - lo, key=mask_key)
    filled = inpaint(state, x, mask, run_key)
    errors, probs = _scores(filled, x, mask, net)
    out["mse"].append(errors["mse"])
    out["psnr"].append(errors["psnr"])
    out["correct"].append(np.asarray(probs).argmax(-1) == labels[lo:hi])
    if first is None:
      first = np.asarray(masks_lib.shown(x, mask)[:16]), np.asarray(filled[:16]), images[lo:lo + 16]
  result = {k: np.concatenate([np.asarray(v) for v in vs]) for k, vs in out.items()}
  result["grid"] = np.stack(first, axis=1).reshape(-1, *images.shape[1:])
  return result


@jax.jit
def _errors(filled, x, mask):
  return completion.missing_pixel_errors(filled, x, mask)


def _scores(filled, x, mask, net):
  return _errors(filled, x, mask), net.apply(filled)[1]


def path_lengths(decode: Callable, state, z_a: np.ndarray, z_b: np.ndarray,
                 net: networks.FeatureNetwork, *, method: str, epsilon: float, batch_size: int,
                 seed: int) -> np.ndarray:
  """:func:`gen_jax.applications.interpolation.path_lengths` of every pair, batch by batch."""
  fn = jax.jit(lambda state, a, b, key: interpolation.path_lengths(
      decode, lambda x: net.apply(x)[0], state, a, b, key, epsilon=epsilon, method=method))
  return np.concatenate([np.asarray(fn(state, z_a[lo:hi], z_b[lo:hi],
                                       jax.random.fold_in(jax.random.PRNGKey(seed), i)))
                         for i, lo, hi in _batches(len(z_a), batch_size)])


def completion_cards(family, state, config: ml_collections.ConfigDict,
                     net: networks.FeatureNetwork, *, images: np.ndarray, labels: np.ndarray,
                     model: str, out_dir: pathlib.Path, common: dict) -> list[dict[str, Any]]:
  """The completion cards of every mask of ``apps.masks``, the references' (floor, nearest
  training image, ceiling), and the grids (see the module docstring)."""
  a = config.apps
  written: list[dict[str, Any]] = []

  def add(metric, values, *, who, unit="", stderr=True, **extra):
    values = np.asarray(values, np.float64)
    std = values.std(ddof=1) / np.sqrt(len(values)) if stderr and len(values) > 1 else None
    written.append(cards.make(metric, values.mean(), std=std, unit=unit, model=who,
                              std_kind="stderr" if std is not None else None, **common, **extra))

  def add_all(result, who, method, mask_name, secs):
    extra = dict(mask=mask_name, method=method, seeds={"apps": a.seed, "train": config.seed})
    if secs is not None:
      extra |= dict(secs=round(secs, 1), notes=f"{method}; {secs:.0f} s for {len(images)} images")
    add("completion_mse", result["mse"], who=who, **extra)
    add("completion_psnr", result["psnr"], who=who, unit="dB", **extra)
    add("completion_accuracy", result["correct"], who=who, unit="fraction", stderr=False, **extra)

  # Ceiling: the classifier on the real images; the floor and it are named with the image count,
  # as a run may complete fewer than the whole split (apps.num_images).
  floor_name, ceiling_name, nn_name = (f"{what} ({len(images)} images)"
                                       for what in (FLOOR, CEILING, NEAREST))
  _, probs = networks.outputs(net, images)
  add("completion_accuracy", probs.argmax(-1) == labels, who=ceiling_name, unit="fraction",
      stderr=False, method="the real image", seeds={})
  floor = jax.jit(lambda state, x, mask, key: masks_lib.known_mean_fill(x, mask))
  averaged = completion.mean_of_chains(family.inpaint, a.num_chains)
  inpaint = jax.jit(lambda state, x, mask, key: averaged(state, {"image": x}, mask, key))
  method = family.inpaint_method + (f"; the mean of {a.num_chains} chains" if a.num_chains > 1
                                    else "")
  if a.nearest_neighbour:
    train = jnp.asarray(training_images(config)[0])   # an argument, not a baked-in constant
    nearest = jax.jit(lambda train, x, mask, key: completion.nearest_neighbour(x, mask, train))
  for mask_name in a.masks:
    result = complete(floor, state, images, labels, mask_name, net, batch_size=a.batch_size,
                      seed=a.seed)
    add_all(result, floor_name, "the mean of the known pixels", mask_name, None)
    if a.nearest_neighbour:
      result = complete(nearest, train, images, labels, mask_name, net,
                        batch_size=a.batch_size, seed=a.seed)
      add_all(result, nn_name, "the nearest training image on the known pixels", mask_name, None)
    t0 = time.time()
    result = complete(inpaint, state, images, labels, mask_name, net, batch_size=a.batch_size,
                      seed=a.seed)
    secs = time.time() - t0
    add_all(result, model, method, mask_name, secs)
    writers.save_png(out_dir / f"completion_{mask_name}.png", writers.image_grid(result["grid"], 12))
    logging.info("completion, mask %s (%s): PSNR %.2f dB, accuracy %.2f %% in %.0f s", mask_name,
                 method, result["psnr"].mean(), 100 * result["correct"].mean(),
                 secs)
  return written


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     command: Optional[str] = None) -> list[dict[str, Any]]:
  """The applications of the newest checkpoint of ``workdir`` (see the module docstring)."""
  workdir = pathlib.Path(workdir)
  run, state = run_lib.restore(config, workdir)
  family, a = run.family, config.apps
  check(config, family)
  name = dataset_of(config)
  net = networks.load(config.eval.feature_network or networks.DEFAULT_FOR_DATASET[name])
  images, labels = evaluation_images(config)
  if tuple(images.shape[1:]) != tuple(run.image_shape):
    raise ValueError(f"apps.dataset {name!r} has {images.shape[1:]} images; the model makes "
                     f"{run.image_shape}.")
  out_dir = workdir / "apps"
  out_dir.mkdir(parents=True, exist_ok=True)
  test_split = data.info(name).test_split
  common = dict(family=config.model.family, dataset=name, step=int(state.step),
                n_real=len(images), real_split=test_split, feature_network=net.name,
                feature_network_sha256=net.sha256, config_hash=cards.config_hash(config),
                command=command, **cards.environment())
  model = workdir.name
  written: list[dict[str, Any]] = []
  if family.inpaint is not None:
    written += completion_cards(family, state, config, net, images=images, labels=labels,
                                model=model, out_dir=out_dir, common=common)

  if family.decode is not None:
    rng = np.random.default_rng(a.seed)
    pairs = min(a.ppl_pairs, len(images) // 2)
    starts = []
    if family.encode is not None:
      idx = rng.permutation(len(images))[:2 * pairs]
      encode = jax.jit(family.encode)
      z = np.concatenate([np.asarray(encode(state, jnp.asarray(images[idx[lo:hi]])))
                          for _, lo, hi in _batches(len(idx), a.batch_size)])
      starts.append(("encoder", z, "lerp"))
    if family.prior is not None:
      z = np.asarray(jax.jit(family.prior, static_argnums=2)(
          state, jax.random.PRNGKey(a.seed + 1), 2 * pairs))
      starts.append(("prior", z, a.interpolation))
    for source, z, method in starts:
      t0 = time.time()
      grid = np.asarray(jax.jit(family.interpolate, static_argnames=("num", "method"))(
          state, z[:a.num_pairs], z[pairs:pairs + a.num_pairs], num=a.path_points, method=method))
      writers.save_png(out_dir / f"interpolation_{source}.png",
                       writers.image_grid(grid.reshape(-1, *grid.shape[2:]), a.path_points))
      lengths = path_lengths(family.decode, state, z[:pairs], z[pairs:], net, method=method,
                             epsilon=a.ppl_epsilon, batch_size=a.batch_size, seed=a.seed)
      mean, se = interpolation.summarize(lengths)
      secs = time.time() - t0
      written.append(cards.make(
          f"ppl_{source}", mean, std=se, unit="", model=model, std_kind="stderr", method=method,
          secs=round(secs, 1),
          seeds={"apps": a.seed, "train": config.seed},
          notes=f"perceptual path length (Karras et al. 2019) on {net.name} features, {pairs} "
                f"pairs of {'test-image codes' if source == 'encoder' else 'prior draws'}, "
                f"{method}, epsilon {a.ppl_epsilon:g}, 1st-99th percentiles; {secs:.0f} s",
          **common))
      logging.info("interpolation (%s, %s): PPL %.1f ± %.1f in %.0f s", source, method, mean, se,
                   secs)
  if family.num_classes:
    written += conditional_cards(family, state, config, net, model=model, out_dir=out_dir,
                                 test=(images, labels), common=common)
  cards.write(workdir / "apps_cards.jsonl", written)
  return written


def conditional_cards(family, state, config: ml_collections.ConfigDict,
                      net: networks.FeatureNetwork, *, model: str, out_dir: pathlib.Path,
                      test: tuple[np.ndarray, np.ndarray], common: dict) -> list[dict[str, Any]]:
  """The cards of a conditional family: the domain classifier's accuracy on ``apps.cas_num``
  samples of the requested classes (per class in the notes), and the classification accuracy
  scores of :func:`gen_jax.applications.conditional.classification_accuracy_scores`."""
  a = config.apps
  t0 = time.time()
  images, labels = conditional.labelled_samples(
      family.sample, state, num=a.cas_num, num_classes=family.num_classes,
      batch_size=a.batch_size, seed=a.seed)
  grid = images[:10 * family.num_classes].reshape(10, family.num_classes, *images.shape[1:])
  writers.save_png(out_dir / "conditional_samples.png",
                   writers.image_grid(grid.reshape(-1, *images.shape[1:]), family.num_classes))
  _, probs = networks.outputs(net, images)
  per_class = conditional.class_accuracy(probs.argmax(-1), labels, family.num_classes)
  secs = time.time() - t0
  seeds = {"apps": a.seed, "train": config.seed}
  out = [cards.make(
      "conditional_accuracy", float(np.mean(probs.argmax(-1) == labels)), unit="fraction",
      model=model, seeds=seeds, secs=round(secs, 1), method="sample(labels=)",
      notes=f"{net.name} accuracy on {len(images)} samples, classes in turn; per class: "
            + ", ".join(f"{c}: {v:.4f}" for c, v in enumerate(per_class)),
      **dict(common, n_gen=len(images)))]
  t0 = time.time()
  name = dataset_of(config)
  ds = data.info(name)
  train_x, train_y = training_images(config)
  classifier = conditional.classifier_model(a.cas_hidden, family.num_classes,
                                            a.get("cas_convs", ()))   # common.conditional_apps
  scores = conditional.classification_accuracy_scores(
      (images, labels), (train_x, np.asarray(train_y)), test, model=classifier,
      num_steps=a.cas_steps, batch_size=a.cas_batch_size, learning_rate=a.cas_learning_rate,
      few_labels=a.few_labels, seed=a.seed)
  secs = time.time() - t0
  what = {"cas": f"trained on {len(images)} generated images only",
          "real": f"trained on {len(images)} real training images (the reference)",
          "few_real": f"trained on {a.few_labels} real training images",
          "few_real_plus_generated": f"trained on {a.few_labels} real and {len(images)} "
                                     "generated images, half of each minibatch real"}
  for key, value in scores.items():
    who = model if "generated" in key or key == "cas" else f"real {ds.train_split} ({name})"
    out.append(cards.make(
        f"cas_{key}" if key != "cas" else "cas", value, unit="fraction", model=who, seeds=seeds,
        secs=round(secs, 1),
        method=f"{conditional.classifier_name(classifier, int(np.prod(images.shape[1:])))}, "
               f"{a.cas_steps} Adam steps of {a.cas_batch_size}",
        notes=f"test accuracy on the real {ds.test_split} split of a classifier {what[key]}",
        **dict(common, n_gen=len(images) if who == model else None)))
    logging.info("classifier %s: %.2f %% on the real test split", what[key], 100 * value)
  return out
