"""DCGAN on grey-level MNIST (28x28), non-saturating loss, EMA generator for samples.

    python launch.py --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist
    python launch.py --config=configs/dcgan_mnist.py:tiny --workdir=/tmp/dcgan_tiny   # 200 steps

Radford et al.'s architecture shrunk to 28x28: G: z (100) -> dense 7x7x128 -> deconv 64 (14x14)
-> deconv 1 (28x28), batch norm + ReLU, tanh; D: conv 64 -> conv 128 (batch norm) -> dense 1,
leaky ReLU 0.2; 4x4 kernels, stride 2. Adam 2e-4, beta1 0.5 for both; batch 64.
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.base()
  c.model.gen_dense = (1024,)
  c.model.disc_dense = (1024,)
  for opt in (c.optimizer, c.disc_optimizer):
    opt.learning_rate = 4e-4
  c.eval.classifier = "mnist-cnn-v1"
  c.num_steps = 3200
  c.eval.every_steps = 800
  c.checkpoint.every_steps = 800
  return gan_common.finish(c, arg)
