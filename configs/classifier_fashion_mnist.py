"""CNN classifier on Fashion-MNIST: the metrics' domain feature network ``fashion-mnist-cnn-v1``.

    python launch.py --config=configs/classifier_fashion_mnist.py \\
        --workdir=runs/classifier_fashion_mnist
    python tools/export_network.py --config=configs/classifier_fashion_mnist.py \\
        --workdir=runs/classifier_fashion_mnist --name=fashion-mnist-cnn-v1

The second command writes gen_jax/metrics/weights/fashion_mnist_cnn_v1.msgpack and prints its
sha256, its test accuracy and the NETWORKS entry for gen_jax/metrics/networks.py; a retrained
network gets a new name (fashion-mnist-cnn-v2), never the old one.

Measured: 93.90 % accuracy on the 10,000 test images (results/NOTES.md#classifier_fashion_mnist).
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.name = "fashion_mnist"
  c.dataset.binarize = "none"        # grey levels in [0, 1], as stored
  c.model = ml_collections.ConfigDict(dict(
      family="classifier",
      stages=((32, 32), (64, 64)),   # 3x3 convolutions per stage, each stage then 2x2 max-pooled
      extra_pools=1,                 # 7x7 -> 4x4 before the dense layer (a 0.8 MB weights file)
      feature_dim=128,               # the penultimate layer: the metrics' feature vector
      num_classes=10,
      dropout=0.3,
      max_shift=2,                   # random translations of up to 2 pixels
      flip=True,                     # clothes are: random left-right mirroring
  ))
  c.batch_size = 128
  c.num_epochs = 30
  c.optimizer.learning_rate = 1e-3
  # Cosine decay to 0 over the whole run; follows --config.num_epochs and --config.batch_size
  # (not --config.num_steps).
  c.optimizer.decay_steps = c.get_ref("num_epochs") * (60000 // c.get_ref("batch_size"))
  c.eval.iwae_k = 0                  # no likelihood bound for a classifier
  return common.finish(c, arg)
