"""WGAN with gradient penalty (Gulrajani et al. 2017) on grey-level MNIST, DCGAN networks.

    python launch.py --config=configs/wgan_gp_mnist.py --workdir=runs/wgan_gp_mnist
    python launch.py --config=configs/wgan_gp_mnist.py:tiny --workdir=/tmp/wgan_gp_tiny   # 200 steps

The paper's settings: penalty weight 10 on (||grad f(x_hat)|| - 1)^2 at per-example interpolates
of real and generated images, 5 critic steps per generator step, Adam 1e-4 with beta1 0 and beta2
0.9 for both networks, layer norm instead of batch norm in the critic; 64 images per critic step
(batch_size = 5 x 64); 1000 generator steps (5000 critic steps), few for WGAN-GP: Gulrajani et
al. train for 200k. train/gp_grad_norm should stay near 1.

Measured (10k samples against the 10k test images on mnist-cnn-v1): FID 117.0 +- 3.6 over 3 seeds
(results/seeds_wgan_gp_mnist.jsonl; results/NOTES.md#wgan_gp_mnist).
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.wgan_gp(gan_common.base())
  c.model.gen_dense = (1024,)      # the networks of configs/dcgan_mnist.py, critic with layer norm
  c.model.disc_dense = (1024,)
  c.batch_size = 5 * 64
  c.num_steps = 1000               # 5000 critic steps
  c.eval.every_steps = 250
  c.checkpoint.every_steps = 250
  c.eval.classifier = "mnist-cnn-v1"
  return gan_common.finish(c, arg)
