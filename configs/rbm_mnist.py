"""RBM with 500 binary hidden units trained by persistent CD on statically binarized MNIST.

    python launch.py --config=configs/rbm_mnist.py --workdir=runs/rbm_mnist
    python launch.py --config=configs/rbm_mnist.py:tiny --workdir=/tmp/rbm_tiny   # 1 epoch, cheap AIS
    python launch.py --config=configs/rbm_mnist.py --config.model.method=cd --config.model.k=25 \
        --workdir=runs/rbm_cd25

Larochelle's binarized MNIST (50k train, 10k test), 784-500 Bernoulli-Bernoulli RBM, PCD-1 with
100 persistent chains, SGD with momentum and L2 weight decay on W, learning rate decayed linearly
to 0 over the run. At the end the test NLL = mean test free energy + log Z, with log Z estimated by
annealed importance sampling (100 runs, the piecewise-linear schedule of Salakhutdinov & Murray
2008 with 30,000 temperatures) and reported with its log(Z_hat -/+ 3 sigma_hat) band
(eval/nll_ais, eval/nll_ais_lo/_hi).

Measured: test NLL 88.31 nats, band [87.80, 88.65] (results/NOTES.md#rbm_mnist).
"""

import ml_collections

from configs import common

NUM_TRAIN = 50_000


def get_config(arg=None):
  c = common.base()
  c.dataset.name = "binarized_mnist"
  c.dataset.binarize = "none"
  c.model = ml_collections.ConfigDict(dict(
      family="rbm",
      num_hidden=500,
      visible="bernoulli",   # or 'gaussian' (grey levels; fixed std model.sigma)
      sigma=1.0,
      method="pcd",          # 'pcd': persistent chains in the train state; 'cd': chains from the data
      k=1,                   # Gibbs sweeps per update
      num_chains=100,        # persistent chains (PCD)
      init_scale=0.01,       # W ~ N(0, init_scale^2)
      sample_steps=1000,     # Gibbs sweeps for the sample grids
  ))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=0.05, momentum=0.5, weight_decay=1e-4,
      final_learning_rate=0.0,
      # linear decay over the whole run (follows --config.num_epochs and --config.batch_size)
      decay_steps=c.get_ref("num_epochs") * (NUM_TRAIN // c.get_ref("batch_size")),
  ))
  c.batch_size = 100
  c.num_epochs = 100
  c.steps_per_dispatch = 500
  c.eval.iwae_k = 0          # the RBM's likelihood comes from AIS, not from an IWAE bound
  c.ais = ml_collections.ConfigDict(dict(
      # The paper's piecewise-linear schedule (0-0.5, 0.5-0.9, 0.9-1 with 1:8:20 of the points) at
      # ~2x its 14,500 temperatures.
      num_runs=100, num_betas=30_000, schedule="piecewise", seed=0))
  c = common.finish(c, arg)
  if arg == "tiny":
    c.ais.num_runs = 16
    c.ais.num_betas = 1000
    c.model.sample_steps = 100
  return c
