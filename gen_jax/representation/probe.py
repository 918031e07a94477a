"""``launch.py --mode=probe``: what a trained model's features are worth to a classifier.

    python launch.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist --mode=probe

restores the newest checkpoint of ``--workdir`` and, for every feature source the family has --
``encoder`` (:attr:`Family.encode`: a posterior mean, a code, hidden-unit probabilities) and
``discriminator`` (:attr:`Family.discriminator_features`: a GAN discriminator's last hidden layer)
-- and for the baselines of ``probe.baselines`` (``pixels``: the raw 784 grey levels; ``pca``: PCA
of the training images with the source's dimension), on the labelled train and test splits of
``probe.dataset`` (grey levels in [0, 1], never binarized, the same images for every family):

* ``linear_probe_accuracy`` (:mod:`gen_jax.representation.linear`): the test accuracy of
  multinomial logistic regression with ``labels`` = each of ``probe.sizes`` class-balanced labelled
  training examples (``probe.draws`` draws, mean ± std; one run with the whole split), its L2
  weight chosen from ``probe.l2s`` on held-out labelled examples;
* ``knn_accuracy`` for each k of ``probe.knn_ks`` (:mod:`gen_jax.representation.knn`, all labels);
* ``trustworthiness`` and ``knn_preservation`` (:mod:`gen_jax.representation.reduce`) of the
  features for the first ``probe.trust_num`` test images, with ``probe.trust_k`` neighbours;
* for 2-D features, ``<workdir>/probe/scatter_<source>.png``: the test set coloured by label,
  beside PCA's 2-D map;

each a metric card with the feature source (``features``) and its dimension (``dim``), in
``<workdir>/probe_cards.jsonl`` (and returned). Baseline cards are named ``raw pixels (mnist)``,
``PCA-20 (mnist)``, as a property of the data rather than of the model.
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

from gen_jax import cards, data
from gen_jax import run as run_lib
from gen_jax.representation import knn, linear, reduce

BASELINES = ("pixels", "pca")


def labelled_split(name: str, split: str, *, num: int = 0, data_dir: Optional[str] = None
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(float32 images in [0, 1], int labels): the first ``num`` (0: all) of a labelled split."""
  ds = data.info(name)
  split = {"train": ds.train_split, "test": ds.test_split}[split]
  total = data.num_examples(ds.tfds_name, split, data_dir)
  images, labels = data.read_rows(ds.tfds_name, split, 0, total, data_dir=data_dir)
  images, labels = images[:num or total], labels[:num or total]
  return np.asarray(images, np.float32) / ds.max_value, np.asarray(labels)


def features(fn: Callable, state, images: np.ndarray, *, batch_size: int,
             flatten: bool = True) -> np.ndarray:
  """``fn(state, x)`` of float images, ``batch_size`` at a time (one compiled shape), flattened
  to (n, d) float32 NumPy (unless not ``flatten``). A short last batch is padded with its own
  images, not zeros, so that features read with batch statistics (a batch-norm discriminator)
  stay those of real images."""
  # ``fn`` itself is jitted (flattened on the host): JAX's cache is keyed on it, so a caller that
  # decodes several codes with one ``fn`` (compress: a decode per quantisation step) compiles once
  jitted = jax.jit(fn)
  out = []
  for lo in range(0, len(images), batch_size):
    chunk = images[lo:lo + batch_size]
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, chunk[np.arange(batch_size - n) % n]])
    f = np.asarray(jitted(state, jnp.asarray(chunk)), np.float32)[:n]
    out.append(f.reshape(n, -1) if flatten else f)
  return np.concatenate(out)


def sources(family) -> dict[str, Callable]:
  """The family's feature sources, by name."""
  named = {"encoder": family.encode, "discriminator": family.discriminator_features}
  return {k: v for k, v in named.items() if v is not None}


def check(config: ml_collections.ConfigDict, family=None) -> None:
  """Clear errors for probe settings that cannot run, before anything is computed."""
  p = config.probe
  if family is not None and not sources(family):
    raise ValueError(f"the {config.model.family} family has no features to probe (no encoder, "
                     "no discriminator); --mode=probe is for families with one.")
  unknown = set(p.baselines) - set(BASELINES)
  if unknown:
    raise ValueError(f"unknown probe.baselines {sorted(unknown)}; choose from {BASELINES}.")
  if not p.sizes or min(p.sizes) < 1 or p.draws < 1:
    raise ValueError(f"probe.sizes={tuple(p.sizes)} and probe.draws={p.draws} must be positive.")
  if min(p.knn_ks, default=1) < 1:
    raise ValueError(f"probe.knn_ks={tuple(p.knn_ks)} must be positive.")


def source_cards(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray,
                 test_y: np.ndarray, test_x: np.ndarray, *, p: ml_collections.ConfigDict,
                 features_name: str, common: dict) -> list[dict[str, Any]]:
  """Every probe of one feature source (see the module docstring); ``test_x`` the test images
  the trustworthiness is measured against."""
  dim = train_f.shape[1]
  who = dict(common, features=features_name, dim=dim)
  out = []
  t0 = time.time()
  sizes = sorted({min(int(n), len(train_y)) for n in p.sizes})
  results = linear.label_efficiency(
      train_f, train_y, test_f, test_y, sizes=sizes, draws=p.draws,
      key=jax.random.PRNGKey(p.seed), l2s=tuple(p.l2s), val_fraction=p.val_fraction,
      max_iter=p.max_iter)
  for n, runs in results.items():
    accs = np.array([r.accuracy for r in runs])
    l2s = sorted({r.l2 for r in runs})
    out.append(cards.make(
        "linear_probe_accuracy", accs.mean(), std=accs.std(ddof=1) if len(accs) > 1 else None,
        std_kind="std over draws" if len(accs) > 1 else None, unit="fraction", labels=n,
        notes=f"logistic regression on {features_name} features ({dim}-d), {n} labels "
              f"({len(runs)} class-balanced draw(s): {', '.join(f'{a:.4f}' for a in accs)}); "
              f"L2 chosen on {p.val_fraction:.0%} of the labels: {', '.join(map(str, l2s))}",
        **who))
    logging.info("linear probe on %s (%d-d), %d labels: %.4f ± %.4f", features_name, dim, n,
                 accs.mean(), accs.std())
  lp_secs = time.time() - t0
  knn_accs = knn.knn_accuracies(train_f, train_y, test_f, test_y, tuple(p.knn_ks)) if p.knn_ks else {}
  for k, acc in knn_accs.items():
    out.append(cards.make("knn_accuracy", acc, k=k, unit="fraction", labels=len(train_y),
                          notes=f"{k}-NN on {features_name} features ({dim}-d, euclidean), "
                                f"{len(train_y)} train vs {len(test_y)} test images", **who))
    logging.info("%d-NN on %s (%d-d): %.4f", k, features_name, dim, acc)
  n = min(p.trust_num, len(test_f))
  if n > 2 * p.trust_k:
    flat = test_x[:n].reshape(n, -1)
    for metric, fn in (("trustworthiness", reduce.trustworthiness),
                       ("knn_preservation", reduce.knn_preservation)):
      value = fn(flat, test_f[:n], p.trust_k)
      out.append(cards.make(metric, value, k=p.trust_k, unit="", notes=(
          f"{features_name} features ({dim}-d) of the first {n} test images against their "
          f"pixels, {p.trust_k} neighbours"), **who))
  out[0]["secs"] = round(lp_secs, 1)
  return out


def scatter(path: pathlib.Path, maps: dict[str, np.ndarray], labels: np.ndarray) -> None:
  """2-D maps of the test set side by side, coloured by label (PNG)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, len(maps), figsize=(5 * len(maps), 5), squeeze=False)
  for ax, (title, z) in zip(axes[0], maps.items()):
    pts = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6, rasterized=True)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.colorbar(pts, ax=axes[0].tolist(), ticks=range(10), shrink=0.8, label="label")
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def baseline_features(name: str, train_x: np.ndarray, test_x: np.ndarray, dim: int
                      ) -> tuple[np.ndarray, np.ndarray]:
  flat = lambda a: a.reshape(len(a), -1)
  if name == "pixels":
    return flat(train_x), flat(test_x)
  pca = reduce.pca_fit(flat(train_x), dim)
  return reduce.pca_encode(pca, train_x), reduce.pca_encode(pca, test_x)


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     command: Optional[str] = None) -> list[dict[str, Any]]:
  """The probes of the newest checkpoint of ``workdir`` and of the baselines (see the module
  docstring); also written to ``<workdir>/probe_cards.jsonl``."""
  check(config)
  workdir = pathlib.Path(workdir)
  run, state = run_lib.restore(config, workdir, check=lambda run: check(config, run.family))
  p = config.probe
  name = data.labelled_dataset(config, "probe")
  data_dir = config.dataset.data_dir or None
  train_x, train_y = labelled_split(name, "train", num=p.num_train, data_dir=data_dir)
  test_x, test_y = labelled_split(name, "test", num=p.num_test, data_dir=data_dir)
  if tuple(train_x.shape[1:]) != tuple(run.image_shape):
    raise ValueError(f"probe.dataset {name!r} has {train_x.shape[1:]} images; the model takes "
                     f"{run.image_shape}.")
  ds = data.info(name)
  common = dict(dataset=name, step=int(state.step), n_real=len(test_y), real_split=ds.test_split,
                seeds={"probe": p.seed, "train": config.seed},
                config_hash=cards.config_hash(config), command=command, **cards.environment())
  model = dict(model=workdir.name, family=config.model.family)
  written: list[dict[str, Any]] = []
  dims = []
  for source, fn in sources(run.family).items():
    t0 = time.time()
    train_f = features(fn, state, train_x, batch_size=p.batch_size)
    test_f = features(fn, state, test_x, batch_size=p.batch_size)
    logging.info("%s features: %s in %.0f s", source, train_f.shape, time.time() - t0)
    written += source_cards(train_f, train_y, test_f, test_y, test_x, p=p, features_name=source,
                            common=common | model)
    dims.append(train_f.shape[1])
    if train_f.shape[1] == 2:
      pca2 = baseline_features("pca", train_x, test_x, 2)[1]
      scatter(workdir / "probe" / f"scatter_{source}.png",
              {f"{workdir.name}: {source}": test_f, "PCA-2": pca2}, test_y)
  for base in p.baselines:
    for dim in (sorted(set(dims)) if base == "pca" else [int(np.prod(run.image_shape))]):
      tr, te = baseline_features(base, train_x, test_x, dim)
      who = (f"raw pixels ({name})" if base == "pixels" else f"PCA-{dim} ({name})")
      written += source_cards(tr, train_y, te, test_y, test_x, p=p, features_name=base,
                              common=common | dict(model=who, family="data", step=None))
  cards.write(workdir / "probe_cards.jsonl", written)
  return written
