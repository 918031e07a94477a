"""VAE-GAN (Larsen et al. 2016) on grey-level MNIST, with the VAE of configs/vae_mnist.py inside.

    python launch.py --config=configs/vaegan_mnist.py --workdir=runs/vaegan_mnist
    python launch.py --config=configs/vaegan_mnist.py:tiny --workdir=/tmp/vaegan_tiny   # 1 epoch
    python launch.py --config=configs/vaegan_mnist.py --config.model.gamma=1 --workdir=runs/vaegan_g1

Enc 784-400-(20 means, 20 log-variances) and Dec 20-400-784 are the 784-400-20 MLP VAE's; Dis is an
MLP 784-512-256-1 (leaky ReLU) whose 256-unit layer is the feature space of the reconstruction term.
Enc, Dec and Dis each have their own Adam (2e-4, b1 = 0.5); batch 128.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.binarize = "none"   # grey levels: Dis would tell binary data from Dec's means at once
  c.model = ml_collections.ConfigDict(dict(
      family="vaegan",
      arch="mlp", hidden=(400,), channels=(32, 64), latent_dim=20,   # Enc and Dec
      disc_arch="mlp", disc_hidden=(512, 256), disc_channels=(32, 64),
      loss="non_saturating",     # or 'minimax', 'hinge'
      gamma=0.1,                 # Dec: gamma * feat_recon + GAN loss (content vs. style)
      kl_weight=1.0,             # Enc: kl_weight * KL + feat_recon
      pixel_weight=0.0,          # > 0 adds a pixel-space Bernoulli term to Enc and Dec
  ))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=2e-4, b1=0.5, b2=0.999, eps=1e-8, grad_clip_norm=0.0))
  c.disc_optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
  c.num_epochs = 10
  c.eval.iwae_k = 0          # no likelihood bound
  return common.finish(c, arg)
