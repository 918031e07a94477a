"""VAE on the statically binarized MNIST of Larochelle (50k train, 10k test, fixed binary pixels).

    python launch.py --config=configs/vae_binarized_mnist.py --workdir=runs/vae_binarized_mnist
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.name = "binarized_mnist"
  c.dataset.binarize = "none"
  return common.finish(c, arg)
