"""What a trained model is used for, beyond its samples: one module per application.

* :mod:`~gen_jax.applications.masks`: which pixels are known (bottom / left half, centre square,
  random 50 % or 80 % missing);
* :mod:`~gen_jax.applications.completion`: filling in the unknown pixels, by each family's own
  method (clamped Gibbs, pseudo-Gibbs and Metropolis-within-Gibbs, iterated projection, latent
  optimisation), and the completion metrics;
* :mod:`~gen_jax.applications.interpolation`: linear and spherical paths between codes, and the
  perceptual path length on the domain network;
* :mod:`~gen_jax.applications.conditional`: samples of requested classes, their accuracy under
  the domain classifier, and the classification accuracy score (CAS);
* :mod:`~gen_jax.applications.suite`: ``launch.py --mode=apps``, every application of a trained
  workdir as PNG grids and metric cards.

The family contract (:class:`gen_jax.steps.Family`) exposes what each family serves -- ``encode``,
``decode``, ``prior``, ``interpolate``, ``inpaint``, and ``sample(..., labels=)`` for a
conditional family -- as pure, jit-able functions; the functions
here are the methods those bind, usable on their own in a research script.
"""
