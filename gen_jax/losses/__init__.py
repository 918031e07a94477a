"""Losses as pure array functions, per example, with the reduction left to the caller.

``densities``  log-densities (Bernoulli, Gaussian), the Gaussian KL and the importance-weighted
               bound, in nats: the likelihood families' terms.
``gan``        the adversarial losses (minimax, non-saturating, Wasserstein, hinge), gradient
               penalty, R1, label smoothing and top-k generator updates.
"""

from gen_jax.losses import densities, gan  # noqa: F401
