"""Likelihood estimators that drive a trained model over a whole split.

``iwae``  the family's importance-weighted bound (``Family.log_likelihood``) over the test split,
          with its standard error, for one k or a sweep of k.
``ais``   annealed importance sampling of an RBM's partition function.
"""
