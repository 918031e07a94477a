"""Two-layer deep belief network (784-500-784) on statically binarized MNIST, trained greedily.

    python launch.py --config=configs/dbn_mnist.py --workdir=runs/dbn_mnist
    python launch.py --config=configs/dbn_mnist.py:tiny --workdir=/tmp/dbn_tiny
    python launch.py --config=configs/dbn_mnist.py --config.model.num_hidden2=2000 \
        --config.model.init_top_from_bottom=False --workdir=runs/dbn_mnist_2000

The first half of the steps trains RBM 1 (784-500) by PCD on the pixels, the second half RBM 2
(500-784) by PCD on h1 ~ q(h1 | v) of the frozen RBM 1 (each with its own optimizer, momentum,
weight decay and linear learning-rate decay). RBM 2 starts as RBM 1 upside down (Hinton et al.
2006), so the DBN starts as exactly RBM 1 and the bound starts at RBM 1's likelihood. At the end:
the variational bound on the test NLL, E_q[-log p(v | h1) + F_2(h1)] - H(q) + log Z_2 with log Z_2
by AIS on the top RBM (eval/nll_bound, with its band), and RBM 1's own AIS test NLL
(eval/nll_ais_rbm1) for comparison.

Measured: bound on the test NLL 89.62 nats [88.95, 90.02] (results/NOTES.md#dbn_mnist).
"""

import ml_collections

from configs import common, rbm_mnist

NUM_TRAIN = 50_000


def get_config(arg=None):
  c = rbm_mnist.get_config(arg)
  tiny = arg == "tiny"
  steps_per_layer = c.get_ref("num_epochs") * (NUM_TRAIN // c.get_ref("batch_size")) // 2
  c.model = ml_collections.ConfigDict(dict(
      family="dbn",
      num_hidden=500,        # RBM 1: 784 -> 500
      num_hidden2=784,       # RBM 2: 500 -> 784 (the top, undirected layer)
      method="pcd",
      k=1,
      num_chains=100,
      init_scale=0.01,
      sample_steps=c.model.sample_steps,
      bound_samples=10,      # draws of h1 ~ q(h1 | v) per test image for the bound
      layer1_steps=steps_per_layer,
      # True: RBM 2 starts as RBM 1 upside down (needs num_hidden2=784), so the bound starts at
      # RBM 1's likelihood.
      init_top_from_bottom=True,
  ))
  common.scale_out(c.model)
  c.optimizer.decay_steps = steps_per_layer   # each layer decays over its own half of the run
  # The bound costs ~5 s per test pass (10 draws of h1 through a 500-2000 top RBM): every 10 epochs.
  c.eval.every_steps = 10 * (NUM_TRAIN // c.get_ref("batch_size"))
  if tiny:
    c.eval.every_steps = 0
  c.ais.first_layer = True   # also report RBM 1's own AIS test NLL
  return c
