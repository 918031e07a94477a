"""The study on MNIST: every family trained on the same images budget, measured the same way.

    python launch.py --mode=study --config=configs/study_mnist.py:quick --workdir=runs/study_quick
    python launch.py --mode=study --config=configs/study_mnist.py --workdir=runs/study   # accelerator
    python -m gen_jax.study.report_cli --out=results/study_mnist_quick   # the report, from cards

The default is the full protocol (10 epochs a run, 3 seeds, learning rates x1/3, x1, x3 and
batches x1/2, x1, x2 at the first seed, 10 evaluations of 10,000 samples): 12 families x 7 runs,
for an accelerator. ``:quick`` is the 2-core CPU budget (results/study_mnist_quick): a 12,800-image
budget, 2 seeds, learning rates x1 and x3 only, 4 evaluations of 1,000 samples, the applications
on 500 test images, the Inception FID of 2 finalists on 400 samples. ``:tiny`` is for tests.
Rerunning the same command skips the runs and stages that finished (the study is resumable).
"""

import ml_collections

FAMILIES = (
    # (study name, config file[:arg], overrides as (dotted field, value) pairs)
    ("vae", "vae_mnist", ()),
    ("beta_vae", "vae_mnist", (("model.beta", 4.0),)),
    ("conv_vae", "conv_vae_mnist", ()),
    ("ae", "ae_mnist", ()),
    ("gan", "gan_mnist", ()),
    ("dcgan", "dcgan_mnist", (("model.cat_dim", 0),)),   # the plain DCGAN (no InfoGAN code)
    ("wgan_gp", "wgan_gp_mnist", ()),
    ("vaegan", "vaegan_mnist", ()),
    ("bigan", "bigan_mnist", ()),
    ("rbm", "rbm_mnist", ()),
    ("dbn", "dbn_mnist", ()),
    ("flow", "glow_mnist", ()),
)


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.title = "The study on MNIST"
  c.dataset = "mnist"          # the real images every family's samples are compared with
  c.families = ml_collections.ConfigDict(
      {name: ml_collections.ConfigDict(dict(config=config, overrides=overrides))
       for name, config, overrides in FAMILIES})
  c.seeds = (0, 1, 2)
  c.lr_scales = (1 / 3, 1.0, 3.0)
  c.batch_scales = (0.5, 1.0, 2.0)
  c.budget_images = 600_000    # images each run trains on (10 epochs of MNIST)
  c.num_evals = 10             # evaluations (and kept checkpoints) per run: the quality curves
  c.num_samples = 10_000       # samples per evaluation
  c.num_real = 10_000          # test images they are compared with
  c.sample_seed = 0
  c.iwae_k = 1000              # the cap on each family's importance samples for its NLL
  c.run_overrides = ()         # (dotted field, value) applied to every run where the field exists
  c.applications = True        # the applications axis at every seed's base run (runner.py)
  c.inception_finalists = 3    # Inception FID of the families with the lowest domain FID (first
  c.inception_num = 10_000     # seed), of this many samples against as many test images
  # its settings, applied to each run's config (configs/common.py apps, probe, compress): the
  # bottom-half completion, the 100-label linear probe and the rate at 95 % accuracy only
  c.apps_overrides = (("apps.masks", ("bottom",)), ("apps.ppl_pairs", 500),
                      ("probe.sizes", (100,)), ("probe.knn_ks", ()), ("probe.trust_num", 0),
                      ("probe.baselines", ()), ("compress.pca", False),
                      ("compress.jpeg_qualities", ()), ("compress.webp_qualities", ()),
                      ("compress.png", False))
  c.report_dir = "results/study_mnist"
  if arg in (None, ""):
    return c
  if arg in ("quick", "tiny"):
    c.title = "The study on MNIST (quick: a 2-core CPU budget)"
    c.seeds = (0, 1)
    c.lr_scales = (1.0, 3.0)   # the x1/3 runs would add a third to the hour
    c.batch_scales = (1.0,)
    c.budget_images = 12_800
    c.num_evals = 4
    c.num_samples = 1000
    c.num_real = 1000
    c.inception_finalists = 2
    c.inception_num = 400      # ~2.7 images/s through Inception-v3 on 2 cores
    c.iwae_k = 10              # the conv VAE's k=100 bound alone takes 4 min on 2 cores
    c.report_dir = "results/study_mnist_quick"
    # the RBM's AIS, the DBN's bound, the RBM's and DBN's Gibbs chains for samples (200 sweeps,
    # not 1000: 2,000 DBN samples took 2 min per evaluation), at the CPU budget's cost; no sample
    # grids in the loop (the study draws its own)
    c.run_overrides = (("ais.num_runs", 16), ("ais.num_betas", 1000),
                       ("model.sample_steps", 200), ("eval.num_images", 0))
    c.apps_overrides += (("apps.num_images", 500), ("apps.num_steps", 50), ("apps.restarts", 1),
                         ("apps.ppl_pairs", 100), ("probe.num_train", 10000), ("probe.draws", 3),
                         ("probe.num_test", 2000), ("compress.num_train", 5000),
                         ("compress.num_test", 1000))
  if arg == "tiny":
    c.title = "The study on MNIST (tiny: tests only)"
    c.families = ml_collections.ConfigDict(
        {name: c.families[name] for name in ("vae", "gan")})
    c.seeds = (0, 1)
    c.lr_scales = (1.0, 3.0)
    c.budget_images = 1280
    c.num_evals = 2
    c.num_samples = 500
    c.num_real = 500
    c.iwae_k = 4
    c.inception_finalists = 0  # needs the converted Inception weights (tools/inception_weights.py)
    c.apps_overrides += (("apps.num_images", 100), ("apps.num_steps", 5), ("apps.ppl_pairs", 20),
                         ("probe.num_train", 1000), ("probe.num_test", 200),
                         ("compress.num_train", 1000), ("compress.num_test", 200))
    c.report_dir = ""          # tests set it
    return c
  if arg != "quick":
    raise ValueError(f"unknown config argument {arg!r}: use the file alone, ':quick' or ':tiny'.")
  return c
