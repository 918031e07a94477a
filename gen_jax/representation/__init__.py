"""Representation, compression and dimensionality reduction: what every encoder is worth."""
