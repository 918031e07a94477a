"""Conditional DCGAN on grey-level MNIST: ACGAN (Odena et al. 2017) on the DCGAN of dcgan_mnist.

    python launch.py --config=configs/acgan_mnist.py --workdir=runs/acgan_mnist
    python launch.py --config=configs/acgan_mnist.py --workdir=runs/acgan_mnist --mode=apps
    python launch.py --config=configs/acgan_mnist.py:tiny --workdir=/tmp/acgan_tiny   # 200 steps

configs/dcgan_mnist.py's networks, losses and schedule, with its 10-way code made the class: D's Q
head also learns the real images' labels (class_weight 1), so G's code c draws class c
(``sample(..., labels=)``). The apps mode measures the domain classifier's accuracy on samples of
each requested class and the classification accuracy score (a classifier trained on generated
images only, tested on the real test split).
"""

from configs import common, dcgan_mnist, gan_common


def get_config(arg=None):
  c = dcgan_mnist.get_config()
  c.model.class_weight = 1.0
  return gan_common.finish(common.conditional_apps(c), arg)
