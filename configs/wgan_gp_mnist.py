"""WGAN with gradient penalty (Gulrajani et al. 2017) on grey-level MNIST, DCGAN networks.

    python launch.py --config=configs/wgan_gp_mnist.py --workdir=runs/wgan_gp_mnist
    python launch.py --config=configs/wgan_gp_mnist.py:tiny --workdir=/tmp/wgan_gp_tiny   # 200 steps

The paper's settings: penalty weight 10 on (||grad f(x_hat)|| - 1)^2 at per-example interpolates
of real and generated images, 5 critic steps per generator step, Adam 1e-4 with beta1 0 and beta2
0.9 for both networks, layer norm instead of batch norm in the critic; 64 images per critic step
(batch_size = 5 x 64). train/gp_grad_norm should stay near 1.

Measured over seeds 0, 1, 2 (10k samples against the 10k test images on mnist-cnn-v1;
results/seeds_wgan_gp_mnist.jsonl): FID 117.0 +- 3.6 (DCGAN 8.6, the MLP GAN 151.5), classifier
Inception Score 7.06 +- 0.07, all 10 classes with label KL to uniform 0.011 +- 0.006; KID puts it
level with the MLP GAN (28.7 vs 28.1). 1000 generator steps are few for WGAN-GP: Gulrajani et al.
train for 200k.
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.wgan_gp(gan_common.base())
  c.model.gen_dense = (1024,)      # the networks of configs/dcgan_mnist.py, critic with layer norm
  c.model.disc_dense = (1024,)
  c.batch_size = 5 * 64
  c.num_steps = 1000               # 5000 critic steps; ~21 min on the 2-core CPU (0.8 steps/s)
  c.eval.every_steps = 250
  c.checkpoint.every_steps = 250
  c.eval.classifier = "mnist-cnn-v1"
  return gan_common.finish(c, arg)
