"""BiGAN / ALI on grey-level Fashion-MNIST (same model and training as bigan_mnist).

    python launch.py --config=configs/bigan_fashion_mnist.py --workdir=runs/bigan_fashion_mnist
    python launch.py --config=configs/bigan_fashion_mnist.py \
        --workdir=runs/bigan_fashion_mnist --mode=probe

Not tuned for Fashion-MNIST: the MNIST choices carried over (see configs/bigan_mnist.py).
"""

from configs import bigan_mnist, common


def get_config(arg=None):
  c = bigan_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  return common.finish(c, arg)
