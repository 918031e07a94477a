"""Conditional VAE on dynamically binarized Fashion-MNIST: configs/cvae_mnist.py on the other dataset.

    python launch.py --config=configs/cvae_fashion_mnist.py --workdir=runs/cvae_fashion_mnist
"""

from configs import common, cvae_mnist


def get_config(arg=None):
  c = cvae_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  return common.finish(c, arg)
