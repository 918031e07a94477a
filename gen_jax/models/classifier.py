"""A small CNN image classifier: the feature network of the sample-quality metrics.

Images are NHWC floats in [0, 1]. ``__call__`` returns class logits, and with
``return_features=True`` also the penultimate activations (after the last hidden ReLU) -- the
feature vector that FID, KID and precision/recall are computed on, as Inception's pool3 is for
natural images. The only randomness is dropout, off when ``train=False``, so inference is a pure
function of (params, images).
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
from gen_jax.models import layers


class CNN(nn.Module):
  """Stages of 3x3 ReLU convolutions, each followed by 2x2 max pooling, then one dense ReLU layer.

  With the defaults: conv32-conv32-pool-conv64-conv64-pool-pool-dense128-dense10 (197k
  parameters, 0.8 MB in float32). The last extra pool (7x7 -> 4x4) keeps the dense layer at 131k
  weights instead of 401k so the weights file ships in the package.

  Attributes:
    stages: output channels of the convolutions of each stage.
    extra_pools: further 2x2 max pools (padding SAME) after the last stage.
    hidden: width of the dense feature layer.
    num_classes: number of logits.
    dropout: dropout rate before the feature and the output layers, in training only.
    precision: of every convolution and matmul (``'highest'``: full float32 on GPUs too, whose
      default lets XLA use TF32; the feature networks use it so that features do not depend on
      the backend's default).
    conv_impl: 'xla' (``nn.Conv``), 'matmul' (:func:`gen_jax.models.layers.conv_3x3`: the form
      whose gradients XLA:CPU runs fast inside the training loop) or 'auto' (matmul on CPU); the
      same parameters either way. The feature networks keep 'xla', as their weights were made.
  """
  stages: Sequence[Sequence[int]] = ((32, 32), (64, 64))
  extra_pools: int = 1
  hidden: int = 128
  num_classes: int = 10
  dropout: float = 0.0
  precision: Optional[str] = None
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False, return_features: bool = False):
    impl = layers.resolve_conv_impl(self.conv_impl)
    h, i = x, 0
    for channels in self.stages:
      for c in channels:
        name = f"Conv_{i}"   # nn.Conv's own names, whichever computes it
        if impl == "xla":
          conv = nn.Conv(c, (3, 3), padding="SAME", precision=self.precision, name=name)
        else:
          conv = layers.Conv3x3(c, impl=impl, precision=self.precision, name=name)
        h, i = nn.relu(conv(h)), i + 1
      h = nn.max_pool(h, (2, 2), strides=(2, 2))
    for _ in range(self.extra_pools):
      h = nn.max_pool(h, (2, 2), strides=(2, 2), padding="SAME")
    h = h.reshape(h.shape[0], -1)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    features = nn.relu(nn.Dense(self.hidden, precision=self.precision)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, precision=self.precision)(h)
    return (logits, features) if return_features else logits
