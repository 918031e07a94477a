"""DCGAN on CIFAR-10 (32x32x3), Radford et al.'s networks and settings.

    python launch.py --config=configs/dcgan_cifar10.py --workdir=runs/dcgan_cifar10
    python launch.py --config=configs/dcgan_cifar10.py:tiny --workdir=/tmp/dcgan_cifar_tiny

Needs CIFAR-10 prepared by TFDS in $TFDS_DATA_DIR (not shipped here; with internet TFDS fetches
it). G: z (100) -> dense 4x4x256 -> deconv 128 (8x8) -> 64 (16x16) -> 3 (32x32), batch norm +
ReLU, tanh; D: conv 64 (16x16) -> 128 (8x8) -> 256 (4x4), batch norm after the first, leaky ReLU
0.2 -> dense 1. Adam 2e-4, beta1 0.5; batch 128, 30 epochs (~11.7k steps). Sample quality is
for the evaluation suite (Inception FID: python tools/inception_fid.py).
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.base()
  c.dataset.name = "cifar10"
  c.model.gen_channels = (256, 128, 64)
  c.model.disc_channels = (64, 128, 256)
  c.batch_size = 128
  c.num_epochs = 30
  return gan_common.finish(c, arg)
