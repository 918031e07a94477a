"""BiGAN on grey-level MNIST: MLP encoder, generator and (x, z) discriminator, 50-d code.

    python launch.py --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist
    python -m gen_jax.evaluate_repr --config=configs/bigan_mnist.py --workdir=runs/bigan_mnist --pixels
    python launch.py --config=configs/bigan_mnist.py:tiny --workdir=/tmp/bigan_tiny   # 1 epoch
    python launch.py --config=configs/bigan_mnist.py --config.model.encoder=gaussian --workdir=runs/ali

Donahue et al. 2017's MNIST set-up made smaller for a CPU: E 784-512-50 and G 50-512-784 (the
autoencoders' MLP encoder and decoder, ReLU, sigmoid output), D with a 512-unit x path, a 512-unit
z path and a 512-unit joint layer (leaky ReLU, dropout 0.2 as in ALI); z ~ N(0, I); the
non-saturating loss with E's labels flipped; Adam 2e-4, b1 = 0.5, batch 128. The second command
reports the 1-NN test accuracy on E(x) (and on raw pixels, the baseline).
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.binarize = "none"
  c.model = ml_collections.ConfigDict(dict(
      family="bigan",
      arch="mlp", hidden=(512,), channels=(32, 64), latent_dim=50,   # E and G
      encoder="deterministic",   # 'deterministic' (BiGAN) or 'gaussian' (ALI)
      prior="normal",            # 'normal' N(0, I) or 'uniform' U(-1, 1)
      loss="non_saturating",     # or 'minimax', 'hinge'
      disc_arch="mlp", disc_x_hidden=(512,), disc_z_hidden=(512,), disc_joint_hidden=(512,),
      disc_channels=(32, 64), disc_dropout=0.2,
  ))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=2e-4, b1=0.5, b2=0.999, eps=1e-8, grad_clip_norm=0.0))
  c.disc_optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
  c.num_epochs = 10
  c.eval.iwae_k = 0          # no likelihood bound
  return common.finish(c, arg)
