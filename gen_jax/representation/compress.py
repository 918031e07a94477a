"""``launch.py --mode=compress``: a trained autoencoder as a codec, against PCA, JPEG, WebP and PNG.

    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist --mode=compress

restores the newest checkpoint of ``--workdir`` (a family with ``encode`` and ``decode``) and, on
the test split of ``compress.dataset`` (grey levels, the same images for every family):

* **the quantised code**, for each step of ``compress.steps``: each code dimension, centred and
  divided by its standard deviation over the training split, is rounded to a multiple of the step;
  a factorised entropy model is fitted on the training split's symbols and the test symbols are
  entropy-coded into one stream (:mod:`gen_jax.representation.codec`): the rate is that stream's
  actual size per image (decoded back exactly, checked), the distortion that of decoding the bin
  centres;
* **PCA** (``compress.pca``) with the code's dimension, quantised and coded the same way;
* **JPEG** and **WebP** at each of ``compress.jpeg_qualities`` / ``webp_qualities``, and lossless
  **PNG** (``compress.png``), each image its own file, headers included;
* for the VAE, the **bits-back rate** (the mean KL of q(z|x) from the prior, in bits) beside the
  reconstruction of the posterior mean: the rate a bits-back coder approaches, a bound rather than
  a file;

cards ``codec_bits`` (bits per image; the ideal code length under the model in its notes),
``codec_mse``, ``codec_psnr`` (mean per-image dB) and ``codec_accuracy`` (the domain classifier's
accuracy on the decoded images), each with ``codec``, ``bits`` and ``quant_step`` or ``method``
(the quality), and ``bits_at_accuracy``: where each codec's curve first reaches
``compress.target_accuracy`` (linear in log-bits between the two points around it). Written to
``<workdir>/compress_cards.jsonl``; ``<workdir>/compress/rate_distortion.png`` plots the curves
(:func:`plot`; from committed cards: ``python tools/cards.py README.md ... --compress=FILE
--plot_rd=OUT.png``).
"""

from __future__ import annotations

import logging
import math
import pathlib
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_jax import cards, data
from gen_jax import run as run_lib
from gen_jax.metrics import networks
from gen_jax.representation import codec, reduce
from gen_jax.representation.probe import features, labelled_split

DISTORTIONS = ("codec_mse", "codec_psnr", "codec_accuracy")


def distortion(decoded: np.ndarray, images: np.ndarray, labels: np.ndarray,
               net: networks.FeatureNetwork) -> dict[str, np.ndarray]:
  """Per-image squared error, PSNR (dB; inf where exact) and the classifier's correctness."""
  decoded = np.clip(np.asarray(decoded, np.float32).reshape(images.shape), 0.0, 1.0)
  mse = np.mean((decoded - images) ** 2, axis=tuple(range(1, images.ndim)))
  with np.errstate(divide="ignore"):
    psnr = 10.0 * np.log10(1.0 / mse)
  correct = networks.outputs(net, decoded)[1].argmax(-1) == labels
  return {"codec_mse": mse, "codec_psnr": psnr, "codec_accuracy": correct}


def code_codec(z_train: np.ndarray, z_test: np.ndarray, step: float, *, smoothing: float
               ) -> tuple[np.ndarray, float, float]:
  """(the decoder's codes, actual bits per test image, ideal bits per image) of uniform
  quantisation with ``step`` standard deviations per dimension and an entropy model fitted on
  the training codes; the stream is decoded back and checked."""
  mean, sd = z_train.mean(0), np.where(z_train.std(0) > 1e-8, z_train.std(0), 1.0)
  q_train = codec.quantize((z_train - mean) / sd, step)
  q_test = codec.quantize((z_test - mean) / sd, step)
  model = codec.fit_entropy_model(q_train, smoothing=smoothing)
  words = codec.encode(model, q_test)
  if not np.array_equal(codec.decode(model, words, len(q_test)), q_test):
    raise RuntimeError("the entropy coder did not decode its own stream exactly.")
  ideal = float(codec.information_bits(model, q_test).mean())
  return (mean + codec.dequantize(q_test, step) * sd).astype(np.float32), \
      codec.compressed_bits(words) / len(q_test), ideal


def bits_at(points: Sequence[tuple[float, float]], target: float) -> Optional[float]:
  """The rate where a curve of (bits, accuracy) first reaches ``target``: linear in log-bits
  between the last point below and the first at or above it; None if it never does."""
  points = sorted(points)
  for i, (bits, acc) in enumerate(points):
    if acc >= target:
      if i == 0 or acc == target:
        return float(bits)
      (b0, a0), (b1, a1) = points[i - 1], (bits, acc)
      t = (target - a0) / (a1 - a0)
      return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
  return None


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                     command: Optional[str] = None) -> list[dict[str, Any]]:
  """The rate-distortion cards of the newest checkpoint of ``workdir`` and of the baselines (see
  the module docstring); also writes them and the plot."""
  workdir = pathlib.Path(workdir)
  c = config.compress
  if not c.steps or min(c.steps) <= 0:
    raise ValueError(f"compress.steps={tuple(c.steps)} must be positive quantisation steps.")

  def check(run):
    if run.family.encode is None or run.family.decode is None:
      raise ValueError(f"the {config.model.family} family has no encoder and decoder pair, so "
                       "it is no codec; --mode=compress is for autoencoding families (AE, VAE, "
                       "...).")

  run, state = run_lib.restore(config, workdir, check=check)
  family = run.family
  name = data.labelled_dataset(config, "compress")
  data_dir = config.dataset.data_dir or None
  train_x, _ = labelled_split(name, "train", num=c.num_train, data_dir=data_dir)
  test_x, test_y = labelled_split(name, "test", num=c.num_test, data_dir=data_dir)
  net = networks.load(config.eval.feature_network or networks.DEFAULT_FOR_DATASET[name])
  common = dict(dataset=name, n_real=len(test_y), real_split=data.info(name).test_split,
                feature_network=net.name, feature_network_sha256=net.sha256,
                seeds={"train": config.seed}, config_hash=cards.config_hash(config),
                command=command, **cards.environment())
  learned = dict(model=workdir.name, family=config.model.family, step=int(state.step))
  written: list[dict[str, Any]] = []

  def point(who: dict, codec_name: str, decoded: np.ndarray, bits: float, note: str, **extra):
    t = distortion(decoded, test_x, test_y, net)
    base = dict(common | who, codec=codec_name, bits=round(bits, 2), **extra)
    written.append(cards.make("codec_bits", bits, unit="bits/image", notes=note, **base))
    for metric in DISTORTIONS:
      v = t[metric]
      if metric == "codec_psnr" and not np.all(np.isfinite(v)):
        continue                                    # lossless: no PSNR to report
      written.append(cards.make(metric, float(np.mean(v)), unit=(
          "dB" if metric == "codec_psnr" else "fraction" if metric == "codec_accuracy" else ""),
          notes=note, **base))
    logging.info("%s %s: %.1f bits/image, PSNR %.2f dB, accuracy %.4f", codec_name,
                 extra, bits, float(np.mean(t["codec_psnr"])), float(np.mean(t["codec_accuracy"])))

  t0 = time.time()
  z_train = features(family.encode, state, train_x, batch_size=c.batch_size)
  z_test = features(family.encode, state, test_x, batch_size=c.batch_size)
  dim = z_train.shape[1]
  sets = [(learned, f"{workdir.name} code", z_train, z_test, lambda z: features(
      family.decode, state, z, batch_size=c.batch_size, flatten=False))]
  if c.pca:
    pca = reduce.pca_fit(train_x.reshape(len(train_x), -1), dim)
    sets.append((dict(model=f"PCA-{dim} ({name})", family="data", step=None), f"PCA-{dim}",
                 reduce.pca_encode(pca, train_x), reduce.pca_encode(pca, test_x),
                 lambda z: reduce.pca_decode(pca, z)))
  for who, codec_name, tr, te, decode in sets:
    for step in c.steps:
      z_hat, bits, ideal = code_codec(tr, te, step, smoothing=c.smoothing)
      point(who, codec_name, decode(z_hat), bits, quant_step=float(step), note=(
          f"{dim}-d code, step {step:g} sd, factorised entropy model fitted on the "
          f"{len(tr)} training codes, ANS stream of the {len(te)} test images; ideal "
          f"{ideal:.1f} bits/image"))
  learned_secs = time.time() - t0

  kl = _kl_bits(family, state, test_x, c.batch_size)
  if kl is not None:
    recon = features(lambda s, x: family.reconstruct(s, {"image": x}), state, test_x,
                     batch_size=c.batch_size, flatten=False)
    point(learned, "bits-back (KL)", recon, kl, "mean KL(q(z|x) || p(z)) / ln 2 of the test images (the rate bits-back coding "
              "approaches); distortion of decoding the posterior mean")

  images_u8 = np.round(test_x * 255).astype(np.uint8)[..., 0]
  image_codecs = ([("JPEG", q) for q in c.jpeg_qualities] + [("WEBP", q) for q in c.webp_qualities]
                  + ([("PNG", None)] if c.png else []))
  for fmt, quality in image_codecs:
    bits, decoded = codec.image_codec_bits(images_u8, fmt, quality)
    point(dict(model=f"{fmt} ({name})", family="data", step=None), fmt,
          decoded[..., None].astype(np.float32) / 255.0, float(bits.mean()),
          "each image its own file (Pillow), headers included",
          **({"method": f"quality {quality}"} if quality is not None else {}))

  for codec_name in dict.fromkeys(w["codec"] for w in written):
    curve = [(w["bits"], w["value"]) for w in written
             if w["codec"] == codec_name and w["metric"] == "codec_accuracy"]
    at = bits_at(curve, c.target_accuracy) if len(curve) > 1 else None
    if at is not None:
      src = next(w for w in written if w["codec"] == codec_name)
      written.append(cards.make(
          "bits_at_accuracy", at, unit="bits/image", codec=codec_name,
          notes=f"the rate where the {codec_name} curve reaches {c.target_accuracy:.0%} "
                "classifier accuracy on decoded test images (log-linear between points)",
          **{f: src.get(f) for f in ("model", "family", "step")}, **common))
  written[0]["secs"] = round(learned_secs, 1)
  cards.write(workdir / "compress_cards.jsonl", written)
  plot(written, workdir / "compress" / "rate_distortion.png",
       title=f"{workdir.name} as a codec on the {name} test set")
  return written


def _kl_bits(family, state, test_x: np.ndarray, batch_size: int) -> Optional[float]:
  """The mean per-image KL term of the family's eval step in bits, if it has one (the VAE)."""
  key = jax.random.PRNGKey(0)
  step = jax.jit(family.eval_step)
  if "kl" not in jax.eval_shape(step, state, {"image": jnp.asarray(test_x[:batch_size])}, key):
    return None
  kls = [np.asarray(step(state, {"image": jnp.asarray(test_x[lo:lo + batch_size])},
                         key)["kl"]) for lo in range(0, len(test_x), batch_size)]
  return float(np.concatenate(kls).mean() / math.log(2.0))


def plot(all_cards: Sequence[dict], path: str | pathlib.Path, *, title: str = "") -> pathlib.Path:
  """Rate-distortion curves of ``codec_*`` cards (PSNR and classifier accuracy against bits per
  image, log scale), one line per (model, codec); PNG."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  curves: dict[tuple[str, str], dict[str, list]] = {}
  for w in all_cards:
    if w["metric"] in ("codec_psnr", "codec_accuracy"):
      key = (cards.codec_name(w), str(w.get("dataset")))
      curves.setdefault(key, {}).setdefault(w["metric"], []).append((w["bits"], w["value"]))
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  several = len({d for _, d in curves}) > 1
  for i, ((codec_name, dataset), per) in enumerate(sorted(curves.items())):
    label = f"{codec_name} ({dataset})" if several else codec_name
    for ax, metric in zip(axes, ("codec_psnr", "codec_accuracy")):
      pts = sorted(per.get(metric, []))
      if pts:                        # one colour per codec in both panels
        ax.plot([b for b, _ in pts], [v for _, v in pts], "o" if len(pts) == 1 else ".-",
                color=f"C{i % 10}", label=label, markersize=7 if len(pts) == 1 else 5)
  for ax, label in zip(axes, ("PSNR of the decoded test images (dB)",
                              "domain classifier accuracy on decoded images")):
    ax.set_xscale("log")
    ax.set_xlabel("bits per image (actual files / streams)")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)
  axes[1].legend(fontsize=7, loc="lower right")
  if title:
    fig.suptitle(title)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
