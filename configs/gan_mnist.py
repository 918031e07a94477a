"""The fully connected GAN of Goodfellow et al. (2014) on grey-level MNIST, non-saturating loss.

    python launch.py --config=configs/gan_mnist.py --workdir=runs/gan_mnist
    python launch.py --config=configs/gan_mnist.py:tiny --workdir=/tmp/gan_tiny   # 200 steps
    python launch.py --config=configs/gan_mnist.py --config.model.loss=minimax --workdir=runs/gan_mm

G: z (100) -> 128 -> 256 -> 784, leaky ReLU 0.2, sigmoid out (images in [0, 1]); D: 784 -> 256
-> 128 -> 1, leaky ReLU 0.2. Adam 2e-4, beta1 0.5 for both; batch 64; 30 epochs.
"""

from configs import gan_common


def get_config(arg=None):
  c = gan_common.base()
  c.model.arch = "mlp"
  c.model.gen_output = "sigmoid"
  c.num_epochs = 30
  c.steps_per_dispatch = 200
  c.eval.classifier = "mnist-cnn-v1"
  return gan_common.finish(c, arg)
