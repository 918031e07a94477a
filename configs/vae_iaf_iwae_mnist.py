"""VAE with inverse autoregressive flow trained on the IWAE bound: vae_iaf_mnist.py's model (2 IAF
steps in q(z|x)) with vae_iwae_mnist.py's objective (k = 5 importance samples).

    python launch.py --config=configs/vae_iaf_iwae_mnist.py --workdir=runs/vae_iaf_iwae_mnist

The same data, optimizer, budget and evaluation as the main job (10 epochs, IWAE k = 1000 at the
end): the main job's best test NLL at its budget (README, Likelihoods on MNIST).
"""

from configs import common, vae_iaf_mnist


def get_config(arg=None):
  c = vae_iaf_mnist.get_config()
  c.model.objective = "iwae"
  c.model.num_samples = 5
  return common.finish(c, arg)
