"""VAE-GAN (Larsen et al. 2016) on grey-level MNIST, with the conv VAE of configs/conv_vae_mnist.py.

    python launch.py --config=configs/vaegan_mnist.py --workdir=runs/vaegan_mnist
    python launch.py --config=configs/vaegan_mnist.py --workdir=runs/vaegan_mnist --mode=eval
    python launch.py --config=configs/vaegan_mnist.py:tiny --workdir=/tmp/vaegan_tiny   # 1 epoch

Enc (conv 32, 64 (4x4, stride 2), dense 400, 20 means and 20 log-variances) and Dec (its mirror) are
conv_vae_mnist's; Dis is conv 32, 64 (4x4, stride 2, leaky ReLU) and a linear logit, and its last
convolution (7x7x64) is the feature space of the reconstruction term, as in Larsen et al. Enc, Dec
and Dis each have their own Adam (2e-4, b1 = 0.5); batch 128; 9 epochs (~4.2k steps); Dec weight
gamma = 0.01 on the feature reconstruction; samples and reconstructions from the EMA of Enc and Dec.
configs/vaegan_mlp_mnist.py is the fast variant.

Measured (mnist-cnn-v1, 10k samples vs the 10k test images): FID 113.6 +- 6.7 over 3 seeds against
139.4 +- 6.5 for conv_vae_mnist (results/seeds_vaegan_mnist.jsonl; results/NOTES.md#vaegan_mnist).
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.binarize = "none"   # grey levels: Dis would tell binary data from Dec's means at once
  c.model = ml_collections.ConfigDict(dict(
      family="vaegan",
      arch="conv", hidden=(400,), channels=(32, 64), latent_dim=20,   # Enc and Dec
      disc_arch="conv", disc_hidden=(), disc_channels=(32, 64),
      feature_layer=-1,          # Dis_l: Dis's hidden layer of the reconstruction term
      loss="non_saturating",     # or 'minimax', 'hinge'
      gamma=0.01,                # Dec: gamma * feat_recon + GAN loss (content vs. style)
      kl_weight=1.0,             # Enc: kl_weight * KL + feat_recon
      pixel_weight=0.0,          # > 0 adds a pixel-space Bernoulli term to Enc and Dec
      ema_decay=0.999,           # samples / reconstructions from the EMA of Enc and Dec (0: off)
  ))
  c.optimizer = common.optimizer(learning_rate=2e-4, b1=0.5)
  c.disc_optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
  c.num_epochs = 9
  c.eval.iwae_k = 0          # no likelihood bound
  return common.finish(c, arg)
