"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017) on grey-level MNIST, DCGAN networks.

    python launch.py --config=configs/wgan_mnist.py --workdir=runs/wgan_mnist
    python launch.py --config=configs/wgan_mnist.py:tiny --workdir=/tmp/wgan_tiny   # 200 steps

The paper's settings: critic weights clipped to [-0.01, 0.01], 5 critic steps per generator step,
RMSProp with learning rate 5e-5 (PyTorch's variant: decay 0.99, eps outside the square root) for
both networks, batch norm in both (the critic's batch norm is clipped too), 64 images per critic
step, so batch_size = 5 x 64. train/wasserstein and eval/wasserstein are the critic's estimate of
the distance (up to the Lipschitz constant the clipping sets): it should fall as samples improve.
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.wasserstein(gan_common.base())
  c.batch_size = 5 * 64
  c.num_steps = 10_000
  c.eval.every_steps = 1000
  c.checkpoint.every_steps = 1000
  c.eval.classifier = "mnist-cnn-v1"
  return gan_common.finish(c, arg)
