"""Deterministic autoencoder (784-400-20, Bernoulli reconstruction loss) on binarized MNIST.

    python launch.py --config=configs/ae_mnist.py --workdir=runs/ae_mnist
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.family = "ae"
  c.eval.iwae_k = 0
  return common.finish(c, arg)
