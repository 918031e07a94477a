"""Glow (Kingma & Dhariwal 2018), a multi-scale normalizing flow, on dequantized grey-level MNIST.

    python launch.py --config=configs/glow_mnist.py --workdir=runs/glow_mnist
    python launch.py --config=configs/glow_mnist.py --workdir=runs/glow_mnist --mode=eval
    python launch.py --config=configs/glow_mnist.py:tiny --workdir=/tmp/glow_tiny   # minutes

Images x_int in {0..255}^784 are dequantized by uniform noise, y = (x_int + u) / 256, and mapped to
R^784 by RealNVP's logit transform (alpha = 0.05); the flow has 2 levels (squeeze to 14x14x4, then
7x7x8, half the channels factored out between them with a learned conditional Gaussian prior) of
``model.steps`` = 12 steps (actnorm set from the first batch, invertible 1x1 convolution, affine
coupling with a 3x3-1x1-1x1 network of ``model.hidden`` = 64 channels; Glow's last layer is 3x3,
``--config.model.out_kernel=3``), batch 64 for 9 epochs, Adam at 1.6e-2 after a 200-step linear
warm-up, with a cosine decay to 0 over the run. The loss is the dequantized bound on
-log P(x_int) in nats per image; the test bound is reported per epoch (eval/nll, eval/bpd) and at
the end with ``eval.iwae_k`` dequantization draws (eval/nll_iwae, eval/bpd_iwae). Samples are
drawn at ``model.temperature``. The size is for one run of under 30 minutes, final evaluation
included, on a 2-core CPU; the learning rate is the best of a sweep of five-minute trials
(results/NOTES.md#glow_mnist).

Measured (seed 0, idle 2-core Xeon; results/NOTES.md#glow_mnist): 1.232 bits/dim on the test set
in 24.7 min for the whole first command (1.220 with 4 dequantization draws); samples at T = 1:
IS 5.25 on mnist-cnn-v1. The same 9 epochs at Adam's usual 1e-3 reach 1.504.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base()
  c.dataset.binarize = "none"        # grey levels: the flow dequantizes them itself
  c.model = ml_collections.ConfigDict(dict(
      family="flow",
      levels=2,              # each squeezes H, W by 2 (28 -> 14 -> 7)
      steps=12,              # flow steps per level
      hidden=64,             # channels of each coupling network
      out_kernel=1,          # its last layer: 1x1, or 3x3 as in Glow (1.8x slower on CPU)
      alpha=0.05,            # logit transform: logit(alpha + (1 - 2 alpha) y)
      temperature=1.0,       # samples: eps ~ N(0, T^2 I)
      data_init=True,        # actnorms set from the first training batch (Glow)
  ))
  c.batch_size = 64
  c.num_epochs = 9
  c.steps_per_dispatch = 100
  c.optimizer = common.optimizer(
      learning_rate=1.6e-2, warmup_steps=200, grad_clip_norm=100.0,
      # cosine decay to 0 over the whole run (follows --config.num_epochs and --config.batch_size)
      decay_steps=c.get_ref("num_epochs") * (60_000 // c.get_ref("batch_size")))
  c.eval.iwae_k = 1          # the usual dequantized bound; --mode=eval sweeps eval.iwae_ks
  c.eval.iwae_ks = (1, 4)
  c.eval.iwae_batch_size = 500
  c.eval.batch_size = 500
  c.apps.num_steps = 50      # completion: Adam steps of projected gradient ascent on log p
  c.apps.learning_rate = 0.05
  c = common.finish(c, arg)
  if arg == "tiny":
    c.model.steps = 2
    c.model.hidden = 16
    c.num_steps = 200
    c.optimizer.decay_steps = 200
    c.optimizer.warmup_steps = 20
    c.eval.iwae_k = 1
    c.eval.iwae_ks = (1, 2)
    c.apps.num_steps = 10
  return c
