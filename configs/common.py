"""Fields every config shares; each config file starts from :func:`base` and sets its own."""

import ml_collections


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = ml_collections.ConfigDict(dict(
      name="mnist",
      binarize="dynamic",    # 'dynamic': a fresh Bernoulli draw per batch; 'none': as stored
      data_dir="",           # '' = $TFDS_DATA_DIR or the TFDS default
      cache=True,            # keep decoded arrays in ~/.cache/gen_jax ($GEN_JAX_CACHE_DIR)
  ))
  c.model = ml_collections.ConfigDict(dict(
      family="vae", arch="mlp", hidden=(400,), latent_dim=20, channels=(32, 64), beta=1.0,
      activation="relu",     # the autoencoders' MLP hidden units: 'relu' or 'tanh'
      kl_warmup_steps=0,     # the VAE's: > 0 ramps the KL weight from 0 to beta over that many steps
      num_classes=0,         # > 0: the conditional VAE, q(z | x, y) and p(x | z, y)
      objective="elbo",      # the VAE's: 'elbo' (recon + beta * KL) or 'iwae' (Burda et al. 2016)
      num_samples=1,         # samples of the IWAE bound in training
      flow="",               # the VAE's posterior flow: '' (a diagonal Gaussian) or 'iaf'
      flow_steps=0,          # IAF steps (Kingma et al. 2016)
      flow_hidden=(320, 320),  # each step's MADE layers
      context_dim=0,         # encoder outputs the MADEs read beside z (the paper's h)
      latent_dim2=0,         # > 0: the VAE's second stochastic layer h2 (Burda et al. 2016)
      hidden2=(),            # units of q(h2 | h1) (and, reversed, of p(h1 | h2))
  ))
  c.optimizer = optimizer()
  c.batch_size = 128
  c.num_epochs = 10
  c.num_steps = 0                  # >0: train this many steps instead of num_epochs epochs
  c.steps_per_dispatch = 200       # train steps per jitted call
  c.log_every_secs = 5.0
  c.tensorboard = True
  c.eval = ml_collections.ConfigDict(dict(
      batch_size=1000,
      every_steps=0,         # 0: at every epoch end (and at the last step, unless at_end=False)
      at_end=True,           # False: no test-split evaluation at the last step unless the
                             # family's final metrics read it (the RBM's, DBN's); the study's
                             # runs, which judge their checkpoints themselves
      binarize_seed=0,       # the test split is binarized once, with this seed
      num_images=64,         # images in the sample and reconstruction grids (0: no grids)
      iwae_k=1000,           # importance samples of the final likelihood bound (0: skip it)
      iwae_k_chunk=10,       # samples drawn at a time (memory grows with it)
      iwae_batch_size=1000,  # test images per dispatch of the bound
      iwae_seed=0,
      # --mode=eval (gen_jax/evaluate.py): samples, sample-quality metrics, likelihood k sweep.
      num_samples=10000,     # generated images, exported to <workdir>/samples/ and scored
      sample_seed=0,
      real_split="test",     # real images the samples are compared with
      num_real=10000,        # 0: the whole split; else a random subset of this size
      real_seed=0,
      metric_seed=0,         # KID's subsets
      feature_network="",    # '' = the dataset's domain network (gen_jax/metrics/networks.py)
      iwae_ks=(1, 10, 100, 1000),
  ))
  c.apps = apps()
  c.probe = probe()
  c.compress = compress()
  c.checkpoint = ml_collections.ConfigDict(dict(
      every_steps=0,         # 0: at every epoch end (and on SIGTERM, and at the end)
      max_to_keep=3,
      async_save=True,
  ))
  c.mesh = ml_collections.ConfigDict(dict(shape=(-1,), axes=("data",), data_axis="data"))
  return c


def apps(**overrides) -> ml_collections.ConfigDict:
  """``launch.py --mode=apps`` (gen_jax/applications/suite.py) and the loop's completion and
  interpolation grids; then ``overrides`` (a family's completion settings)."""
  return ml_collections.ConfigDict(dict(
      dataset="",            # labelled images to complete: '' = the run's dataset (mnist for
                             # binarized_mnist, which has no labels); grey levels, never binarized
      num_images=10000,      # test images per mask (0: the whole split)
      batch_size=500,
      seed=0,                # random masks, chains, starting codes, pairs
      masks=("bottom", "left", "centre", "random_50", "random_80"),
      grid_mask="bottom",    # the mask of the training loop's completion grid
      method="",             # '' = the family's own; the VAE: 'mwg' or 'pseudo_gibbs'
      num_steps=100,         # chain sweeps, projections or optimisation steps per completion
      learning_rate=0.05,    # latent optimisation: Adam's step on z
      prior_weight=0.0,      # latent optimisation: weight of D's generator loss (Yeh et al.)
      z_weight=0.0,          # latent optimisation: weight of ||z||^2 / 2 (the Gaussian prior)
      restarts=1,            # latent optimisation from prior draws: starts per image, best kept
      num_chains=1,          # completions averaged (> 1: an estimate of the posterior mean)
      nearest_neighbour=False,  # the nearest training image's pixels as a reference row (a
                             # property of the dataset: once per dataset; ~1 min a mask on 10k)
      interpolation="slerp",  # 'lerp' or 'slerp', for prior draws; encodings use 'lerp'
      num_pairs=8,           # rows of the interpolation grids
      path_points=10,        # images per row
      ppl_pairs=2000,        # pairs of the perceptual path length
      ppl_epsilon=1e-4,
      # conditional families (gen_jax/applications/conditional.py)
      cas_num=60000,         # generated images of the classification accuracy score
      cas_steps=3000,        # Adam steps of each classifier (batch cas_batch_size)
      cas_batch_size=128,
      cas_learning_rate=1e-3,
      cas_hidden=512,        # the classifier: 784-cas_hidden-10 MLP
      few_labels=1000,       # real labels of the semi-supervised comparison
  ) | overrides)


def conditional_apps(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the application settings only a conditional family reads (configs/acgan_*, cvae_*), so
  that the other configs -- and the hashes of the cards made with them -- stay as they were."""
  c.apps.cas_convs = ()      # the CAS classifier as a CNN: these channels, one 3x3 conv and a 2x2
                             # max pool each, before the hidden layer (e.g. (16, 32)); () = the MLP
  return c


def probe(**overrides) -> ml_collections.ConfigDict:
  """``launch.py --mode=probe`` (gen_jax/representation/probe.py), then ``overrides``."""
  return ml_collections.ConfigDict(dict(
      dataset="",            # labelled images: '' = the run's (mnist for binarized_mnist)
      num_train=0,           # the first this many training images (0: the whole split)
      num_test=0,            # the first this many test images (0: the whole split)
      sizes=(100, 1000, 10000, 60000),   # labelled training examples of the linear probe
      draws=5,               # class-balanced draws of each size below the whole split
      l2s=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),   # the L2 grid (mean cross-entropy units)
      val_fraction=0.2,      # share of the labels held out to choose the L2 weight
      max_iter=500,          # L-BFGS iterations (it stops earlier at a gradient norm of 1e-5)
      knn_ks=(1, 5),
      trust_num=5000,        # test images of the trustworthiness and k-NN preservation
      trust_k=10,
      baselines=("pixels", "pca"),   # raw pixels; PCA with each feature source's dimension
      batch_size=500,
      seed=0,
  ) | overrides)


def compress(**overrides) -> ml_collections.ConfigDict:
  """``launch.py --mode=compress`` (gen_jax/representation/compress.py), then ``overrides``."""
  return ml_collections.ConfigDict(dict(
      dataset="",            # labelled images: '' = the run's (mnist for binarized_mnist)
      num_train=0,           # training images the entropy models and PCA are fitted on (0: all)
      num_test=0,            # test images coded (0: the whole split)
      steps=(4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625),   # quantisation steps, in units of each
                             # code dimension's standard deviation over the training split
      smoothing=0.5,         # additive smoothing of the entropy model's histograms
      pca=True,              # PCA with the code's dimension, quantised the same way
      jpeg_qualities=(1, 10, 25, 50, 75, 95),
      webp_qualities=(1, 10, 25, 50, 75, 95),
      png=True,
      target_accuracy=0.95,  # the operating point: bits per image at this classifier accuracy
      batch_size=500,
  ) | overrides)


def optimizer(**overrides) -> ml_collections.ConfigDict:
  """Every field gen_jax/optim.py reads, with these defaults, then ``overrides``."""
  return ml_collections.ConfigDict(dict(
      name="adam",             # adam, adamw, sgd or rmsprop
      learning_rate=1e-3,
      decay_steps=0,           # > 0: cosine decay of the learning rate to 0 over that many updates
      warmup_steps=0,          # > 0: linear warm-up from 0 over that many updates first
      lr_boundaries=(),        # steps where the learning rate is multiplied by ...
      lr_scales=(),            # ... the scale of the same index (piecewise constant)
      grad_clip_norm=0.0,      # > 0: clip the global gradient norm to this
      b1=0.9, b2=0.999, eps=1e-8,           # adam, adamw (eps: also rmsprop)
      weight_decay=1e-4,                    # adamw
      momentum=0.0,                         # sgd (0: none)
      decay=0.9, eps_in_sqrt=True,          # rmsprop (PyTorch's RMSprop: 0.99, False)
  ) | overrides)


def shrink(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The ':tiny' variant: a few hundred steps and a cheap bound, for a laptop or a test."""
  c.num_epochs = 1
  c.eval.iwae_k = 10
  c.eval.iwae_k_chunk = 5
  c.eval.num_images = 16
  c.eval.num_samples = 1000
  c.eval.num_real = 1000
  c.eval.iwae_ks = (1, 10)
  return c


def scale_out(model: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the fields every family's model reads for accelerators, where a config has not set them."""
  fields = dict(
      conv_impl="auto",        # 4x4 stride-2 convs: 'auto' (matrix products on CPU, XLA's
                               # convolutions on GPU/TPU), 'matmul' or 'xla'
      dtype="float32",         # computation of train steps: 'float32' or 'bfloat16' (parameters,
                               # optimizer state, losses and evaluation stay float32)
  )
  for k, v in fields.items():
    if k not in model:
      model[k] = v
  return model


def finish(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  scale_out(c.model)
  if arg in (None, ""):
    return c
  if arg == "tiny":
    return shrink(c)
  raise ValueError(f"unknown config argument {arg!r}: use the file alone or ':tiny'.")
