"""Conditional DCGAN (ACGAN) on Fashion-MNIST: configs/acgan_mnist.py on the other dataset.

    python launch.py --config=configs/acgan_fashion_mnist.py --workdir=runs/acgan_fashion_mnist
    python launch.py --config=configs/acgan_fashion_mnist.py --workdir=runs/acgan_fashion_mnist --mode=apps
"""

from configs import acgan_mnist, gan_common


def get_config(arg=None):
  c = acgan_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  c.eval.classifier = "fashion-mnist-cnn-v1"
  return gan_common.finish(c, arg)
