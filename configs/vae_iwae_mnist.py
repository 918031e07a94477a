"""IWAE (Burda et al. 2016): the 784-400-20 MLP VAE of vae_mnist.py trained on the k = 5 bound.

    python launch.py --config=configs/vae_iwae_mnist.py --workdir=runs/vae_iwae_mnist
    python launch.py --config=configs/vae_iwae_mnist.py --config.model.num_samples=50 \
        --workdir=runs/vae_iwae50_mnist

The same data, optimizer, budget and evaluation as the main job (10 epochs, IWAE k = 1000 on the
test split at the end); only the training objective differs: minus the importance-weighted bound
of ``model.num_samples`` posterior samples instead of the one-sample ELBO.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.objective = "iwae"
  c.model.num_samples = 5
  return common.finish(c, arg)
