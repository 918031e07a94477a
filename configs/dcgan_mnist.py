"""DCGAN on grey-level MNIST (28x28) with InfoGAN's 10-way code; non-saturating loss, EMA generator.

    python launch.py --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist
    python launch.py --config=configs/dcgan_mnist.py:tiny --workdir=/tmp/dcgan_tiny   # 200 steps
    python launch.py --config=configs/dcgan_mnist.py --config.model.cat_dim=0 ...     # plain DCGAN

Radford et al.'s architecture shrunk to 28x28, with one 1024-unit dense layer on each side (as in
the InfoGAN MNIST networks): G: z (100) -> dense 1024 -> dense 7x7x128 -> deconv 64 (14x14) ->
deconv 1 (28x28), batch norm + ReLU, tanh; D: conv 64 -> conv 128 -> dense 1024 -> dense 1, batch
norm, leaky ReLU 0.2; 4x4 kernels, stride 2. Adam 4e-4, beta1 0.5 for both; batch 64; 3200 steps;
samples from the EMA generator (decay 0.999). InfoGAN (Chen et al. 2016; model.cat_dim = 10): G
also takes the one-hot of a uniform 10-way code c, D has a Q head (dense 128 -> 10) on its
1024-unit layer, and both losses add Q's cross-entropy on the fakes (info_weight 1). No labels.

Measured (classifier Inception Score of 10k EMA samples on mnist-cnn-v1): IS 9.47 +- 0.11 over 3
seeds (results/seeds_dcgan_mnist.jsonl; results/NOTES.md#dcgan_mnist).
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.base()
  c.model.gen_dense = (1024,)
  c.model.disc_dense = (1024,)
  c.model.cat_dim = 10              # InfoGAN's categorical code (0: the plain DCGAN)
  for opt in (c.optimizer, c.disc_optimizer):
    opt.learning_rate = 4e-4
  c.eval.classifier = "mnist-cnn-v1"
  c.num_steps = 3200
  c.eval.every_steps = 800
  c.checkpoint.every_steps = 800
  # --mode=apps: latent optimisation takes 100 forward and backward passes through the conv
  # generator per image and start; on a CPU, complete the first 1,000 test images, one start each.
  c.apps.num_images = 1000
  c.apps.restarts = 1
  return gan_common.finish(c, arg)
