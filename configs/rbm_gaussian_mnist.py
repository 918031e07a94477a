"""Gaussian-Bernoulli RBM (784-500) trained by PCD on grey-level MNIST (pixels in [0, 1]).

    python launch.py --config=configs/rbm_gaussian_mnist.py --workdir=runs/rbm_gaussian_mnist
    python launch.py --config=configs/rbm_gaussian_mnist.py:tiny --workdir=/tmp/rbm_gauss_tiny

Visible units are Gaussian with a fixed standard deviation model.sigma (p(v | h) = N(vbias + W h,
sigma^2)); the W statistics scale as 1/sigma^2, hence the smaller learning rate, 0.001
(results/NOTES.md#rbm_gaussian_mnist). eval/nll_ais is then a density on R^784 (nats), not
comparable with the binary models' NLL; the sample grids show the means of p(v | h) clipped to
[0, 1].
"""

from configs import rbm_mnist

NUM_TRAIN = 60_000


def get_config(arg=None):
  c = rbm_mnist.get_config(arg)
  c.dataset.name = "mnist"
  c.dataset.binarize = "none"
  c.model.visible = "gaussian"
  c.model.sigma = 0.5
  c.optimizer.learning_rate = 0.001
  c.optimizer.decay_steps = c.get_ref("num_epochs") * (NUM_TRAIN // c.get_ref("batch_size"))
  return c
