"""VAE-GAN on grey-level Fashion-MNIST (same model and training as vaegan_mnist).

    python launch.py --config=configs/vaegan_fashion_mnist.py --workdir=runs/vaegan_fashion_mnist

Not tuned for Fashion-MNIST: the MNIST choices carried over (see configs/vaegan_mnist.py).
"""

from configs import common, vaegan_mnist


def get_config(arg=None):
  c = vaegan_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  return common.finish(c, arg)
