"""The two-stochastic-layer VAE of Burda et al. 2016 (section 5): 784-200-200-100-100-100-50.

    python launch.py --config=configs/vae_2layer_mnist.py --workdir=runs/vae_2layer_mnist
    python launch.py --config=configs/vae_2layer_mnist.py --config.model.objective=iwae \
        --config.model.num_samples=5 --workdir=runs/iwae_2layer_mnist      # the IWAE row

q(h1|x) q(h2|h1), p(h2) p(h1|h2) p(x|h1): h1 has 100 units behind two deterministic layers of
200, h2 50 units behind two of 100; every conditional is a diagonal Gaussian (Bernoulli for x).
ReLU units (the paper's are tanh). The main job's data, optimizer, budget and evaluation (10
epochs, IWAE k = 1000 at the end); configs/paper/ has the paper's own schedule.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.model.hidden = (200, 200)
  c.model.latent_dim = 100
  c.model.hidden2 = (100, 100)
  c.model.latent_dim2 = 50
  return common.finish(c, arg)
