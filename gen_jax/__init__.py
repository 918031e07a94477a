"""gen_jax: deep generative models of images in JAX."""

__version__ = "0.1.0"
