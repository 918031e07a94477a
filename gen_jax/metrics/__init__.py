"""Sample-quality metrics on feature vectors and class probabilities.

``fid``         Frechet distance with exact float64 streaming moments (``update_stats``).
``kid``         unbiased MMD^2 with the cubic polynomial kernel over random subsets.
``prdc``        improved precision/recall and density/coverage from k-NN balls.
``classifier``  classifier Inception Score and predicted-label mode coverage.
``sample_quality.sample_quality`` computes the feature-based ones together.
"""

from gen_jax.metrics import classifier, fid, kid, prdc, rows, sample_quality  # noqa: F401
