"""DCGAN on Fashion-MNIST (28x28): configs/dcgan_mnist.py on the other dataset.

    python launch.py --config=configs/dcgan_fashion_mnist.py --workdir=runs/dcgan_fashion_mnist
    python launch.py --config=configs/dcgan_fashion_mnist.py:tiny --workdir=/tmp/dcgan_fm_tiny
"""

from configs import dcgan_mnist, gan_common


def get_config(arg=None):
  c = dcgan_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  c.eval.classifier = "fashion-mnist-cnn-v1"
  return gan_common.finish(c, arg)
