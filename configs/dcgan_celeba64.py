"""DCGAN on CelebA faces at 64x64 (Radford et al.'s 64x64 networks and settings).

    python launch.py --config=configs/dcgan_celeba64.py --workdir=runs/dcgan_celeba64
    python launch.py --config=configs/dcgan_celeba64.py:tiny --workdir=/tmp/dcgan_celeba_tiny

Needs CelebA prepared by TFDS (``celeb_a``) in $TFDS_DATA_DIR (not shipped here). The 218x178
images are center-cropped to 140x140 and resized to 64x64 once, when decoded (gen_jax/data.py).
G: z (100) -> dense 4x4x512 -> deconv 256, 128, 64 -> 3 (64x64), batch norm + ReLU, tanh;
D: conv 64, 128, 256, 512 (4x4) with batch norm after the first, leaky ReLU 0.2 -> dense 1.
Adam 2e-4, beta1 0.5; batch 128; 10 epochs (~12.7k steps), evaluated every 2000 steps.
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.base()
  c.dataset.name = "celeb_a64"
  c.model.gen_channels = (512, 256, 128, 64)
  c.model.disc_channels = (64, 128, 256, 512)
  c.batch_size = 128
  c.num_epochs = 10
  c.eval.every_steps = 2000
  c.checkpoint.every_steps = 2000
  c.eval.num_images = 64
  return gan_common.finish(c, arg)
