"""All feature-based sample-quality metrics of one real and one fake feature set, in one call.

Features are rows of a feature network's output (e.g. Inception pool3, or a classifier's
penultimate layer), float32, real (n, d) and fake (m, d). FID's moments are exact float64 sums
(``fid``); KID, precision/recall and density/coverage are float32 with ``Precision.HIGHEST``.
Everything is jitted; with ``mesh`` and ``data_axis`` the work is split over the data axis.
"""

from __future__ import annotations

from jax.sharding import Mesh

from gen_jax.metrics import fid as fid_lib
from gen_jax.metrics import kid as kid_lib
from gen_jax.metrics import prdc as prdc_lib


def sample_quality(real, fake, *, k: int = 3, kid_subset_size: int = 1000,
                   kid_num_subsets: int = 100, seed: int = 0, block_size: int = 1024,
                   mesh: Mesh | None = None, data_axis: str | None = None) -> dict[str, float]:
  """fid, kid_mean, kid_std, precision, recall, density, coverage of ``fake`` against ``real``.

  ``kid_subset_size`` is capped at the smaller set's size (so small evaluations still run);
  ``kid_num_subsets=0`` skips KID (its kernels are most of the cost on a CPU).
  """
  shard = dict(mesh=mesh, data_axis=data_axis)
  out = dict(fid=fid_lib.fid(real, fake, **shard))
  if kid_num_subsets:
    out["kid_mean"], out["kid_std"] = kid_lib.kid(
        real, fake, subset_size=min(kid_subset_size, real.shape[0], fake.shape[0]),
        num_subsets=kid_num_subsets, seed=seed, **shard)
  out.update(prdc_lib.prdc(real, fake, k=k, block_size=block_size, **shard))
  return out
