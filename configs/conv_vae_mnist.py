"""Convolutional VAE on dynamically binarized MNIST.

    python launch.py --config=configs/conv_vae_mnist.py --workdir=runs/conv_vae_mnist

Encoder: conv 32 and 64 (4x4, stride 2), dense 400, then mean and log-variance of 20 latents;
the decoder mirrors it with transposed convolutions.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.arch = "conv"
  c.model.channels = (32, 64)
  return common.finish(c, arg)
