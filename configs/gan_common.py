"""Fields every GAN config shares; each GAN config file starts from :func:`base` and sets its own.

The generator is trained by ``config.optimizer`` and the discriminator by ``config.disc_optimizer``
(the same fields, see gen_jax/optim.py). ``batch_size`` is the number of real images per step:
with ``model.n_critic`` > 1 each critic step takes ``batch_size / n_critic`` of them.
"""

import ml_collections

from configs import common


def base() -> ml_collections.ConfigDict:
  c = common.base()
  c.dataset.binarize = "none"        # grey levels in [0, 1]
  c.model = ml_collections.ConfigDict(dict(
      family="gan",
      arch="dcgan",                  # 'mlp' or 'dcgan'
      loss="non_saturating",         # minimax, non_saturating, wasserstein, wgan_gp, hinge
      z_dim=100,
      gen_hidden=(128, 256),         # mlp
      disc_hidden=(256, 128),        # mlp
      gen_channels=(128, 64),        # dcgan: dense to (H/4, W/4, 128), deconv to 64, deconv to C
      disc_channels=(64, 128),       # dcgan: conv 64, conv 128, dense to 1
      gen_dense=(),                  # dcgan: fully connected layers before the projection
      disc_dense=(),                 # dcgan: fully connected layers after the convolutions
      gen_output="tanh",             # 'tanh' (data mapped to [-1, 1]) or 'sigmoid' ([0, 1])
      gen_norm="batch",              # batch, layer or none (dcgan)
      disc_norm="batch",             # batch, layer, spectral or none (dcgan)
      bn_momentum=0.9,               # running averages (kept, not used for sampling)
      n_critic=1,                    # discriminator steps per generator step
      gp_weight=10.0,                # lambda of the gradient penalty (loss 'wgan_gp')
      clip=0.0,                      # weight clipping of the critic (loss 'wasserstein')
      ema_decay=0.999,               # EMA of the generator's weights, used for samples (0: none)
      standing_stats_num=512,        # noise vectors for the EMA generator's batch-norm statistics
      label_smoothing=0.0,           # > 0: D's target for real images is 1 - this (logit losses)
      gen_top_k=1.0,                 # < 1: G learns from the top fraction of its fakes by D's
      gen_top_k_decay=0.99,          #   score, max(gen_top_k, decay ** (step / decay_steps))
      gen_top_k_decay_steps=1000,    #   (Sinha et al. 2020: 0.99 per epoch, down to 0.5-0.75)
      r1_weight=0.0,                 # > 0: gamma of the R1 penalty on real images (Mescheder
      r1_every=1,                    #   et al. 2018), on every r1_every-th step only (lazy)
      cat_dim=0,                     # > 0: InfoGAN, a uniform categorical code of this many
      info_weight=1.0,               #   values in the noise, and D's Q head; lambda of its term
      class_weight=0.0,              # > 0: ACGAN, Q also learns the real labels (cat_dim = 10)
  ))
  # --mode=apps: latent optimisation from 4 prior draws per image, the best kept (from 1 draw,
  # the MLP GAN's bottom-half completions were classified right 67 % of the time; from 4, 79 %).
  c.apps.restarts = 4
  # Radford et al. (DCGAN): Adam, learning rate 2e-4, beta1 0.5, for both networks.
  # decay_steps > 0: cosine decay of the learning rate to 0 over that many updates of the network.
  c.optimizer = common.optimizer(learning_rate=2e-4, b1=0.5)
  c.disc_optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
  c.batch_size = 64
  c.steps_per_dispatch = 50
  c.eval.iwae_k = 0                  # a GAN has no likelihood bound
  c.eval.num_images = 100
  # A classifier of gen_jax.metrics.networks ('mnist-cnn-v1', 'fashion-mnist-cnn-v1'; '' = none):
  # its log Inception Score and classes present on each evaluation's samples, and the Inception
  # Score and mode coverage of is_num_samples samples at the end (final_metrics.json).
  c.eval.classifier = ""
  c.eval.is_num_samples = 10_000
  c.eval.is_seed = 0
  return c


def wasserstein(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Arjovsky et al. (WGAN): critic weights clipped to [-0.01, 0.01], 5 critic steps per generator
  step, RMSProp 5e-5 (PyTorch's RMSprop, as in the reference code) for both networks."""
  c.model.loss = "wasserstein"
  c.model.clip = 0.01
  c.model.n_critic = 5
  for opt in (c.optimizer, c.disc_optimizer):
    opt.name = "rmsprop"
    opt.learning_rate = 5e-5
    opt.decay = 0.99
    opt.eps = 1e-8
    opt.eps_in_sqrt = False
  return c


def wgan_gp(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Gulrajani et al. (WGAN-GP): penalty weight 10, 5 critic steps, Adam 1e-4 with beta1 0,
  beta2 0.9; layer norm instead of batch norm in the critic (the penalty is per example)."""
  c.model.loss = "wgan_gp"
  c.model.gp_weight = 10.0
  c.model.n_critic = 5
  c.model.disc_norm = "layer"
  for opt in (c.optimizer, c.disc_optimizer):
    opt.learning_rate = 1e-4
    opt.b1 = 0.0
    opt.b2 = 0.9
  return c


def finish(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """``:tiny``: 200 steps, evaluated and checkpointed at 100 and 200, a small sample grid."""
  common.scale_out(c.model)
  if arg in (None, ""):
    return c
  if arg == "tiny":
    c.num_steps = 200
    c.eval.every_steps = 100
    c.checkpoint.every_steps = 100
    c.eval.num_images = 16
    return c
  raise ValueError(f"unknown config argument {arg!r}: use the file alone or ':tiny'.")
