"""VAE on dynamically binarized MNIST: the 784-400-20 MLP VAE of pytorch/examples.

    python launch.py --config=configs/vae_mnist.py --workdir=runs/vae_mnist
    python launch.py --config=configs/vae_mnist.py:tiny --workdir=/tmp/vae_tiny   # 1 epoch, k=10
    python launch.py --config=configs/vae_mnist.py --config.model.beta=4 --workdir=runs/beta_vae

Bernoulli decoder, Adam 1e-3, batch 128, 10 epochs; test -ELBO every epoch and the IWAE bound
(k=1000) at the end, on the test split binarized once with a fixed seed.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  return common.finish(c, arg)
