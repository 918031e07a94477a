"""WGAN-GP on Fashion-MNIST: configs/wgan_gp_mnist.py on the other dataset.

    python launch.py --config=configs/wgan_gp_fashion_mnist.py --workdir=runs/wgan_gp_fashion_mnist
    python launch.py --config=configs/wgan_gp_fashion_mnist.py:tiny --workdir=/tmp/wgan_gp_fm_tiny
"""

from configs import gan_common, wgan_gp_mnist


def get_config(arg=None):
  c = wgan_gp_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  c.eval.classifier = "fashion-mnist-cnn-v1"
  return gan_common.finish(c, arg)
