"""VAE-GAN on grey-level MNIST with the MLP VAE of configs/vae_mnist.py: the CPU-sized variant.

    python launch.py --config=configs/vaegan_mlp_mnist.py --workdir=runs/vaegan_mlp_mnist

Enc 784-400-(20 + 20) and Dec 20-400-784 are vae_mnist's; Dis is an MLP 784-512-256-1 (leaky ReLU)
whose 256-unit layer is the feature space of the reconstruction term. ~4.2k steps (9 epochs) take
~10 min on 2 loaded CPU cores.

Measured (mnist-cnn-v1 features, 10k samples vs 10k test images, EMA weights): FID 324 after 4k
steps against 271 for vae_mnist (4690 steps): this MLP VAE-GAN does NOT beat the MLP VAE; its
samples are speckled and its code carries little information (KL ~5 nats: the feature-space
reconstruction term is weak next to the KL term), so only 72 % of its reconstructions are
classified correctly. Neither Dis's first layer as the feature space (FID 333 at 3k steps) nor a
pixel term (``model.pixel_weight=1``: 96 % of reconstructions right, FID 384 at 3k) fixed it. The
conv VAE-GAN (configs/vaegan_mnist.py) is the one that reaches the figures.
"""

from configs import common, vaegan_mnist


def get_config(arg=None):
  c = vaegan_mnist.get_config()
  c.model.arch = "mlp"
  c.model.disc_arch = "mlp"
  c.model.disc_hidden = (512, 256)
  return common.finish(c, arg)
