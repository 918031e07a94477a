"""The claims the study checks, and verdicts computed from measurements with their uncertainty.

A claim says that one group of families (``a``) beats another (``b``) on a metric. Each family's
measurement is a mean over seeds with its standard error (:class:`Estimate`). Every pair (a family
of ``a``, a family of ``b``) is decided by the difference of the means against ``z`` standard
errors of the difference (default 2): ``a`` better, ``b`` better, or a tie. The claim is

- **supported** when every pair goes to ``a``;
- **contradicted** when every pair goes to ``b``;
- **no difference** when every pair is a tie (the measurement cannot tell the groups apart);
- **depends** otherwise, and the verdict names the pairs that went each way (the "on what");
- **not measured** when a group has no family with the metric.

Nothing here reads files: :func:`verdict` takes the estimates, so that the logic is tested on
synthetic numbers (tests/test_study.py) and the report shows the numbers each verdict rests on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Optional, Sequence

SUPPORTED, CONTRADICTED, DEPENDS, NO_DIFFERENCE, NOT_MEASURED = (
    "supported", "contradicted", "depends", "no difference", "not measured")


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A family's metric over seeds: the mean, its standard error (0 for one seed) and the count."""
  mean: float
  se: float
  n: int

  @classmethod
  def of(cls, values: Sequence[float]) -> "Estimate":
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    se = (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)) if n > 1 else 0.0
    return cls(mean, se, n)

  def __str__(self):
    return f"{self.mean:.4g}" + (f" ± {self.se:.2g}" if self.n > 1 else "") + f" (n={self.n})"


@dataclasses.dataclass(frozen=True)
class Claim:
  """``a`` beats ``b`` on ``metric``, where ``better`` is 'lower' or 'higher'."""
  key: str
  quote: str            # the claim as the documents make it
  source: str           # where it is made
  axis: str             # quality, stability, speed, compute, applications
  metric: str           # the study metric that tests it (gen_jax/study/runner.py)
  better: str           # 'lower' or 'higher'
  a: tuple[str, ...]    # the families the claim favours
  b: tuple[str, ...]
  test: str             # how the metric tests the claim, in words


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: Claim
  verdict: str
  a_wins: tuple[tuple[str, str], ...]   # (family of a, family of b) pairs a won
  b_wins: tuple[tuple[str, str], ...]
  ties: tuple[tuple[str, str], ...]
  estimates: Mapping[str, Estimate]

  def reason(self) -> str:
    if self.verdict == NOT_MEASURED:
      missing = [f for f in self.claim.a + self.claim.b if f not in self.estimates]
      return f"no {self.claim.metric} for {', '.join(missing)}"
    parts = []
    for label, pairs in (("a better", self.a_wins), ("b better", self.b_wins), ("tie", self.ties)):
      if pairs:
        parts.append(f"{label}: " + ", ".join(f"{x} vs {y}" for x, y in pairs))
    return "; ".join(parts)


def compare(x: Estimate, y: Estimate, better: str, z: float = 2.0) -> int:
  """+1 if ``x`` beats ``y`` by more than ``z`` standard errors of the difference, -1 if ``y``
  beats ``x`` so, 0 otherwise (with one seed each, any difference decides)."""
  if better not in ("lower", "higher"):
    raise ValueError(f"better={better!r}: choose 'lower' or 'higher'.")
  diff = (y.mean - x.mean) if better == "lower" else (x.mean - y.mean)   # > 0: x is better
  margin = z * math.hypot(x.se, y.se)
  if diff > margin:
    return 1
  if diff < -margin:
    return -1
  return 0


def verdict(claim: Claim, estimates: Mapping[str, Estimate], z: float = 2.0) -> Verdict:
  """The claim's verdict from each family's estimate of ``claim.metric``."""
  a = [f for f in claim.a if f in estimates]
  b = [f for f in claim.b if f in estimates]
  used = {f: estimates[f] for f in a + b}
  if not a or not b:
    return Verdict(claim, NOT_MEASURED, (), (), (), used)
  wins = {1: [], -1: [], 0: []}
  for x in a:
    for y in b:
      wins[compare(estimates[x], estimates[y], claim.better, z)].append((x, y))
  if not wins[-1] and not wins[0]:
    result = SUPPORTED
  elif not wins[1] and not wins[0]:
    result = CONTRADICTED
  elif not wins[1] and not wins[-1]:
    result = NO_DIFFERENCE
  else:
    result = DEPENDS
  return Verdict(claim, result, tuple(wins[1]), tuple(wins[-1]), tuple(wins[0]), used)


_SOURCE = "project brief"   # the documents gen_jax grew from, as quoted in its study issue
GANS = ("gan", "dcgan", "wgan_gp")
VAES = ("vae", "conv_vae", "beta_vae")

CLAIMS = (
    Claim("gan_quality", "GANs produce more realistic samples", _SOURCE, "quality", "fid", "lower",
          GANS, VAES, "FID of the final samples against the test split in the domain network's "
          "features"),
    Claim("gan_precision", "GANs produce more realistic samples", _SOURCE, "quality", "precision",
          "higher", GANS, VAES, "precision (Kynkäänniemi et al.): the share of samples inside the "
          "real images' manifold"),
    Claim("vae_stable_seeds", "GANs train less stably; VAEs are more stable", _SOURCE, "stability",
          "fid_seed_cv", "lower", VAES, GANS, "coefficient of variation of the final FID over seeds"),
    Claim("vae_stable_lr", "GANs train less stably; VAEs are more stable", _SOURCE, "stability",
          "fid_lr_sensitivity", "lower", VAES, GANS, "worst over best final FID over the "
          "learning-rate sweep (x1/3, x1, x3)"),
    Claim("vae_stable_curve", "GANs train less stably; VAEs are more stable", _SOURCE, "stability",
          "fid_oscillation", "lower", VAES, GANS, "mean absolute change of log FID between "
          "consecutive evaluations after the first half of training"),
    Claim("gan_faster", "GANs train faster", _SOURCE, "speed", "secs_to_threshold", "lower", GANS,
          VAES, "wall-clock seconds until FID first falls below twice the family's final FID"),
    Claim("gan_more_compute", "GANs need more compute", _SOURCE, "compute", "train_flops_per_image",
          "higher", GANS, VAES, "training FLOPs per image of the compiled step (XLA cost analysis)"),
    Claim("vae_representation", "VAEs suit representation and compression, GANs generation",
          _SOURCE, "applications", "probe_accuracy_100", "higher", VAES, GANS,
          "linear-probe test accuracy with 100 labels on the encoder's (the VAEs) and the "
          "discriminator's (the GANs) features"),
    Claim("gan_generation_apps", "VAEs suit representation and compression, GANs generation",
          _SOURCE, "applications", "completion_accuracy", "higher", GANS, VAES,
          "the domain classifier's accuracy on test images whose bottom half each family filled in "
          "(its own completion method)"),
    Claim("vae_compression", "VAEs suit representation and compression, GANs generation",
          _SOURCE, "applications", "recon_accuracy", "higher", VAES, ("bigan",),
          "the domain classifier's accuracy on test images coded and decoded (finest "
          "quantisation); among the GANs only the BiGAN has an encoder"),
    Claim("vae_compression_rate", "VAEs suit representation and compression, GANs generation",
          _SOURCE, "applications", "bits_at_accuracy", "lower", VAES, ("bigan",),
          "bits per image where decoded codes reach 95 % classifier accuracy"),
    Claim("vaegan_quality", "VAE-GAN combines both", _SOURCE, "quality", "fid", "lower",
          ("vaegan",), ("vae", "conv_vae"), "FID of the VAE-GAN against the VAEs'"),
    Claim("vaegan_less_stable", "VAE-GAN combines both but is less stable", _SOURCE, "stability",
          "fid_seed_cv", "higher", ("vaegan",), ("vae", "conv_vae"),
          "coefficient of variation of the final FID over seeds, VAE-GAN against the VAEs"),
)


def by_key(key: str) -> Optional[Claim]:
  return next((c for c in CLAIMS if c.key == key), None)
