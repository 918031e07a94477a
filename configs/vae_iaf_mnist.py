"""VAE with inverse autoregressive flow (Kingma et al. 2016): the 784-400-20 MLP VAE of
vae_mnist.py whose Gaussian q(z|x) is pushed through 2 IAF steps.

    python launch.py --config=configs/vae_iaf_mnist.py --workdir=runs/vae_iaf_mnist
    python launch.py --config=configs/vae_iaf_mnist.py --config.model.objective=iwae \
        --config.model.num_samples=5 --workdir=runs/vae_iaf_iwae_mnist   # both

Each step is a MADE (320, 320 units) of z and a 20-d context h that the encoder outputs beside the
mean and log-variance; the KL term is estimated at the sample, log q(z|x) - log p(z). The same
data, optimizer, budget and evaluation as the main job (10 epochs, IWAE k = 1000 at the end).
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.flow = "iaf"
  c.model.flow_steps = 2
  c.model.flow_hidden = (320, 320)
  c.model.context_dim = 20
  return common.finish(c, arg)
