"""BiGAN / ALI on grey-level MNIST: MLP encoder, generator and (x, z) discriminator, 20-d code.

    python launch.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist
    python launch.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist --mode=probe
    python launch.py --config=configs/bigan_mnist.py:tiny --workdir=/tmp/bigan_tiny   # 1 epoch
    python launch.py --config=configs/bigan_mnist.py --config.model.encoder=deterministic \
        --config.model.prior=uniform --config.model.latent_dim=50 --workdir=runs/bigan_paper

Donahue et al. 2017's MNIST set-up made smaller for a CPU: E 784-512-(20 means, 20
log-variances) and G 20-512-784 (the autoencoders' MLP encoder and decoder, ReLU, sigmoid output);
D with a 512-unit x path, a 512-unit z path and a 512-unit joint layer (leaky ReLU, dropout 0.2 as
in ALI); z ~ N(0, I); the non-saturating loss with E's labels flipped; Adam 5e-4, b1 = 0.5, batch
128, 13 epochs (~6k steps); E and G are read from their EMA (decay 0.999). The second command
reports the linear probes (100 labels to all), 1-NN and 5-NN test accuracy on E(x) and on the
baselines (raw pixels, PCA).

Measured: 1-NN test accuracy on E(x) 95.19 % on one seed (results/bigan_mnist_knn.jsonl;
results/NOTES.md#bigan_mnist).
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.binarize = "none"
  c.model = ml_collections.ConfigDict(dict(
      family="bigan",
      arch="mlp", hidden=(512,), channels=(32, 64), latent_dim=20,   # E and G
      encoder="gaussian",        # 'gaussian' (ALI) or 'deterministic' (BiGAN)
      prior="normal",            # 'normal' N(0, I) or 'uniform' U(-1, 1)
      loss="non_saturating",     # or 'minimax', 'hinge'
      disc_arch="mlp", disc_x_hidden=(512,), disc_z_hidden=(512,), disc_joint_hidden=(512,),
      disc_channels=(32, 64), disc_dropout=0.2,
      ema_decay=0.999,           # E and G are read from their EMA (0: the current weights)
  ))
  c.optimizer = common.optimizer(learning_rate=5e-4, b1=0.5)
  c.disc_optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
  c.num_epochs = 13
  c.eval.iwae_k = 0          # no likelihood bound
  return common.finish(c, arg)
