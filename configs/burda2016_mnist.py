"""The likelihood protocol of Burda et al. 2016 (IWAE, Table 1) on dynamically binarized MNIST,
one row of the table per config argument, plus an IAF row on the same protocol.

    python launch.py --config=configs/burda2016_mnist.py:vae1 --workdir=runs/burda_vae1
    python launch.py --config=configs/burda2016_mnist.py:iwae2_k50 --workdir=runs/burda_iwae2_k50
    python launch.py --config=configs/burda2016_mnist.py:iaf1,tiny --workdir=/tmp/iaf1   # smoke

Rows (the paper's test NLL in nats, k = 5000):

    vae1       one stochastic layer, ELBO                 86.76
    iwae1_k5   one stochastic layer, IWAE k = 5           85.54
    iwae1_k50  one stochastic layer, IWAE k = 50          84.78
    vae2       two stochastic layers, ELBO                85.33
    iwae2_k5   two stochastic layers, IWAE k = 5          83.89
    iwae2_k50  two stochastic layers, IWAE k = 50         82.90
    iaf1       one layer, 2 IAF steps, ELBO               (not in the paper; Kingma et al. 2016
                                                           report 79.10 with a conv ResNet VAE)

One layer: 784-200-200-50 (tanh), the decoder its mirror; two layers: h1 of 100 units behind
200-200, h2 of 50 behind 100-100 (tanh). Adam (beta2 0.999, eps 1e-4), batch 20, learning rate
1e-3 * 10^(-i/7) for 3^i epochs, i = 0..7 (3,280 epochs, 9.84 M steps); the IWAE bound with
k = 5000 on the test split at the end. This is an accelerator's job (weeks of a 2-core CPU); the
README's likelihood section says which rows were run, where, and the gap to the paper.
"""

from configs import common

ROWS = {
    "vae1": dict(layers=1, objective="elbo", k=1),
    "iwae1_k5": dict(layers=1, objective="iwae", k=5),
    "iwae1_k50": dict(layers=1, objective="iwae", k=50),
    "vae2": dict(layers=2, objective="elbo", k=1),
    "iwae2_k5": dict(layers=2, objective="iwae", k=5),
    "iwae2_k50": dict(layers=2, objective="iwae", k=50),
    "iaf1": dict(layers=1, objective="elbo", k=1, flow=True),
}
BATCH, TRAIN_SIZE, STAGES = 20, 60000, 8


def get_config(arg=None):
  row, _, rest = (arg or "").partition(",")
  if row not in ROWS:
    raise ValueError(f"configs/burda2016_mnist.py needs a row: ':{' or :'.join(ROWS)}' "
                     f"(then ',tiny' for a smoke run), not {arg!r}.")
  r = ROWS[row]
  c = common.base()
  m = c.model
  m.activation = "tanh"
  m.objective, m.num_samples = r["objective"], r["k"]
  if r["layers"] == 1:
    m.hidden, m.latent_dim = (200, 200), 50
  else:
    m.hidden, m.latent_dim, m.hidden2, m.latent_dim2 = (200, 200), 100, (100, 100), 50
  if r.get("flow"):
    m.flow, m.flow_steps, m.flow_hidden, m.context_dim = "iaf", 2, (320, 320), 50
  c.batch_size = BATCH
  steps_per_epoch = TRAIN_SIZE // BATCH
  c.num_epochs = sum(3 ** i for i in range(STAGES))
  c.optimizer.eps = 1e-4
  c.optimizer.lr_boundaries = tuple(steps_per_epoch * sum(3 ** j for j in range(i + 1))
                                    for i in range(STAGES - 1))
  c.optimizer.lr_scales = (10 ** (-1 / 7),) * (STAGES - 1)
  c.eval.iwae_k = 5000
  c.eval.iwae_k_chunk = 250   # 250 x 1000 test images at a time: an accelerator's memory
  c.eval.every_steps = 100 * steps_per_epoch
  c.checkpoint.every_steps = 20 * steps_per_epoch
  return common.finish(c, rest)
