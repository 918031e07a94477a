"""The study on Fashion-MNIST: configs/study_mnist.py's protocol and families on the second dataset.

    python launch.py --mode=study --config=configs/study_fashion_mnist.py:quick --workdir=runs/study_fashion_quick
    python launch.py --mode=study --config=configs/study_fashion_mnist.py --workdir=runs/study_fashion

Each family runs its Fashion-MNIST config where one exists, otherwise its MNIST config with the
dataset switched (grey levels, dynamically binarized for the RBM and DBN as rbm_fashion_mnist does);
samples are judged against the Fashion-MNIST test split in fashion-mnist-cnn-v1's features.
"""

import ml_collections

from configs import study_mnist

_FASHION = (("dataset.name", "fashion_mnist"),)
_GAN = _FASHION + (("eval.classifier", "fashion-mnist-cnn-v1"),)
FAMILIES = (
    ("vae", "vae_fashion_mnist", ()),
    ("beta_vae", "vae_fashion_mnist", (("model.beta", 4.0),)),
    ("conv_vae", "conv_vae_mnist", _FASHION),
    ("ae", "ae_mnist", _FASHION),
    ("gan", "gan_mnist", _GAN),
    ("dcgan", "dcgan_fashion_mnist", (("model.cat_dim", 0),)),
    ("wgan_gp", "wgan_gp_fashion_mnist", ()),
    ("vaegan", "vaegan_fashion_mnist", ()),
    ("bigan", "bigan_fashion_mnist", ()),
    ("rbm", "rbm_fashion_mnist", ()),
    ("dbn", "dbn_mnist", _FASHION + (("dataset.binarize", "dynamic"),)),
    ("flow", "glow_fashion_mnist", ()),
)


def get_config(arg=None):
  c = study_mnist.get_config(arg)
  c.title = c.title.replace("MNIST", "Fashion-MNIST")
  c.dataset = "fashion_mnist"
  families = ml_collections.ConfigDict(
      {name: ml_collections.ConfigDict(dict(config=config, overrides=overrides))
       for name, config, overrides in FAMILIES})
  if arg == "tiny":
    families = ml_collections.ConfigDict({n: families[n] for n in c.families})
  c.families = families
  if c.report_dir:
    c.report_dir = c.report_dir.replace("study_mnist", "study_fashion_mnist")
  return c
