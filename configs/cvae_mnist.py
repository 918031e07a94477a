"""Conditional VAE (Sohn et al. 2015) on dynamically binarized MNIST: vae_mnist given the digit.

    python launch.py --config=configs/cvae_mnist.py --workdir=runs/cvae_mnist
    python launch.py --config=configs/cvae_mnist.py --workdir=runs/cvae_mnist --mode=apps

q(z | x, y) and p(x | z, y) take the one-hot label beside the image and the code; otherwise the
784-400-20 MLP VAE of vae_mnist, Adam 1e-3, batch 128, 10 epochs. Its test -ELBO bounds
log p(x | y). The apps mode measures the domain classifier's accuracy on samples of each
requested class and the classification accuracy score.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.num_classes = 10
  c.eval.iwae_k = 0              # the IWAE bound of the unconditional p(x) does not apply
  c.eval.iwae_ks = ()
  return common.finish(common.conditional_apps(c), arg)
