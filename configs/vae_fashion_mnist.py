"""VAE on dynamically binarized Fashion-MNIST (same model and training as vae_mnist).

    python launch.py --config=configs/vae_fashion_mnist.py --workdir=runs/vae_fashion_mnist
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.name = "fashion_mnist"
  return common.finish(c, arg)
