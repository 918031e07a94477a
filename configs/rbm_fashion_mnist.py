"""RBM with 500 binary hidden units trained by persistent CD on dynamically binarized Fashion-MNIST.

    python launch.py --config=configs/rbm_fashion_mnist.py --workdir=runs/rbm_fashion_mnist
    python launch.py --config=configs/rbm_fashion_mnist.py:tiny --workdir=/tmp/rbm_fashion_tiny

Same model, training and AIS evaluation as configs/rbm_mnist.py; every batch is a fresh Bernoulli
draw from the grey levels, and the test split is binarized once with a fixed seed.
"""

from configs import rbm_mnist

NUM_TRAIN = 60_000


def get_config(arg=None):
  c = rbm_mnist.get_config(arg)
  c.dataset.name = "fashion_mnist"
  c.dataset.binarize = "dynamic"
  c.optimizer.decay_steps = c.get_ref("num_epochs") * (NUM_TRAIN // c.get_ref("batch_size"))
  return c
