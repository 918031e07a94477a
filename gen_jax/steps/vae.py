"""Variational autoencoder (and beta-VAE): Gaussian q(z|x), N(0, I) prior, Bernoulli p(x|z).

Usage in a research script::

    from functools import partial
    import jax, optax
    from gen_jax.models.autoencoders import VAE
    from gen_jax.steps import vae

    model = VAE(arch="mlp", hidden=(400,), latent_dim=20, image_shape=(28, 28, 1))
    state = vae.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                           tx=optax.adam(1e-3), image_shape=(28, 28, 1))
    step = jax.jit(partial(vae.train_step, model=model, beta=1.0), donate_argnums=0)
    state, metrics = step(state, {"image": x})   # x: (B, 28, 28, 1) in [0, 1]
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import optim
from gen_jax.applications import completion
from gen_jax.losses import densities
from gen_jax.models.autoencoders import VAE
from gen_jax.state import TrainState
from gen_jax.steps import Family, ae

NET = "vae"


def init_state(key: jax.Array, *, model: VAE, tx: optax.GradientTransformation,
               image_shape: Sequence[int]) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the parameters and every later step."""
  labels = (jnp.zeros((1,), jnp.int32),) if model.num_classes else ()
  return TrainState.for_module(key, name=NET, module=model, tx=tx, image_shape=image_shape,
                               key_arg=True, extra_inputs=labels)


def _labels(batch: dict, model: VAE):
  """The batch's labels for a conditional VAE (None for the VAE), with a clear error if absent."""
  if not model.num_classes:
    return None
  if "label" not in batch:
    raise ValueError("a conditional VAE (model.num_classes > 0) trains and evaluates on labelled "
                     "batches; this dataset has no labels.")
  return batch["label"]


def elbo_terms(params, x: jax.Array, key: jax.Array, *, model: VAE,
               labels: Optional[jax.Array] = None) -> dict[str, jax.Array]:
  """One-sample estimates, per example: ``recon`` = -log p(x|z), ``kl`` = KL(q(z|x) || p(z))
  (for the conditional VAE, given the ``labels``)."""
  logits, mean, logvar = model.apply({"params": params}, x, key, labels)
  return {"recon": -densities.bernoulli_log_prob(logits, x), "kl": densities.gaussian_kl(mean, logvar)}


def loss_fn(params, x: jax.Array, key: jax.Array, *, model: VAE, beta: float = 1.0,
            labels: Optional[jax.Array] = None):
  """Mean over the batch of recon + beta * KL (beta = 1: the negative ELBO)."""
  terms = elbo_terms(params, x, key, model=model, labels=labels)
  return jnp.mean(terms["recon"] + beta * terms["kl"]), terms


def train_step(state: TrainState, batch: dict, *, model: VAE,
               beta: float = 1.0) -> tuple[TrainState, dict[str, jax.Array]]:
  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params[NET], batch["image"], state.step_key(), model=model, beta=beta,
      labels=_labels(batch, model))
  metrics = {"loss": loss, "recon": terms["recon"].mean(), "kl": terms["kl"].mean(),
             "neg_elbo": (terms["recon"] + terms["kl"]).mean()}
  return state.apply_gradients({NET: grads}), metrics


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, model: VAE) -> dict[str, jax.Array]:
  """Per-example ``neg_elbo``, ``recon`` and ``kl`` in nats (one posterior sample each; for the
  conditional VAE, the bound on log p(x | y))."""
  terms = elbo_terms(state.params[NET], batch["image"], key, model=model,
                     labels=_labels(batch, model))
  return {"neg_elbo": terms["recon"] + terms["kl"], **terms}


def sample(state: TrainState, key: jax.Array, num: int, labels: Optional[jax.Array] = None, *,
           model: VAE) -> jax.Array:
  """Bernoulli means of p(x|z) for ``num`` draws z ~ N(0, I); the conditional VAE's of
  p(x | z, y) for the given ``labels`` (uniformly drawn classes if None)."""
  z_key, y_key = jax.random.split(key)
  z = jax.random.normal(z_key if model.num_classes else key, (num, model.latent_dim))
  if model.num_classes and labels is None:
    labels = jax.random.randint(y_key, (num,), 0, model.num_classes)
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, z, labels, method=VAE.decode))


def encode(state: TrainState, images: jax.Array, *, model: VAE) -> jax.Array:
  """The posterior mean of q(z|x) for images in [0, 1], (batch, latent_dim)."""
  return model.apply({"params": state.params[NET]}, images, method=VAE.encode)[0]


def decode(state: TrainState, z: jax.Array, *, model: VAE) -> jax.Array:
  """Bernoulli means of p(x|z), images in [0, 1]."""
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, z, method=VAE.decode))


def prior(key: jax.Array, num: int, *, model: VAE) -> jax.Array:
  """z ~ N(0, I), (num, latent_dim)."""
  return jax.random.normal(key, (num, model.latent_dim))


INPAINT_METHODS = {"mwg": "Metropolis-within-Gibbs (Mattei & Frellsen 2018)",
                   "pseudo_gibbs": "pseudo-Gibbs (Rezende et al. 2014)"}


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, model: VAE,
            method: str, num_steps: int) -> jax.Array:
  """The missing pixels by a posterior-guided chain of ``num_steps`` sweeps:
  :func:`gen_jax.applications.completion.metropolis_within_gibbs` (``method='mwg'``, exact in the
  limit) or :func:`~gen_jax.applications.completion.pseudo_gibbs`."""
  variables = {"params": state.params[NET]}
  fn = completion.metropolis_within_gibbs if method == "mwg" else completion.pseudo_gibbs
  return fn(key, batch["image"], mask,
            encode=lambda x: model.apply(variables, x, method=VAE.encode),
            decode_logits=lambda z: model.apply(variables, z, method=VAE.decode),
            num_steps=num_steps)


def reconstruct(state: TrainState, batch: dict, *, model: VAE) -> jax.Array:
  """Bernoulli means of p(x | z = posterior mean) (given the batch's labels, conditional VAE)."""
  variables, y = {"params": state.params[NET]}, _labels(batch, model)
  mean = model.apply(variables, batch["image"], y, method=VAE.encode)[0]
  return jax.nn.sigmoid(model.apply(variables, mean, y, method=VAE.decode))


def log_importance_weights(params, x: jax.Array, key: jax.Array, *, model: VAE,
                           k: int) -> jax.Array:
  """(batch, k) log-weights log p(x, z_i) - log q(z_i | x), z_i ~ q(z|x)."""
  variables = {"params": params}
  mean, logvar = model.apply(variables, x, method=VAE.encode)
  eps = jax.random.normal(key, (k, *mean.shape), mean.dtype)
  z = mean + jnp.exp(0.5 * logvar) * eps                                   # (k, B, D)
  logits = model.apply(variables, z, method=VAE.decode)                    # (k, B, H, W, C)
  log_w = (densities.bernoulli_log_prob(logits, x) + densities.standard_normal_log_prob(z)
           - densities.gaussian_log_prob(z, mean, logvar))
  return log_w.T


def log_likelihood(state: TrainState, batch: dict, key: jax.Array, *, model: VAE, k: int,
                   k_chunk: int) -> jax.Array:
  """Per-example IWAE bound log p(x) >= log (1/k) sum_i w_i, in nats.

  The k samples are drawn gcd(k, ``k_chunk``) at a time (``lax.map``), so memory grows with
  ``k_chunk``, not with ``k``.
  """
  k_chunk = math.gcd(k, k_chunk)   # k=1 with k_chunk=10 draws one at a time
  keys = jax.random.split(key, k // k_chunk)
  log_w = jax.lax.map(lambda kk: log_importance_weights(
      state.params[NET], batch["image"], kk, model=model, k=k_chunk), keys)   # (k/kc, B, kc)
  log_w = jnp.moveaxis(log_w, 0, 1).reshape(log_w.shape[1], k)
  return densities.importance_weighted_bound(log_w)


def create_model(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> VAE:
  model = ae.create_model(config, image_shape, module=VAE)
  return model.clone(num_classes=config.model.num_classes)


def validate(config: ml_collections.ConfigDict) -> None:
  """The autoencoders' checks (:func:`gen_jax.steps.ae.validate`) and beta >= 0."""
  ae.validate(config)
  if config.model.beta < 0:
    raise ValueError(f"model.beta={config.model.beta} weighs the KL term: use beta >= 0 (1: the "
                     "VAE, > 1: a beta-VAE).")
  if config.model.num_classes < 0 or (config.model.num_classes and config.model.arch != "mlp"):
    raise ValueError(f"model.num_classes={config.model.num_classes}: the conditional VAE "
                     "(num_classes > 0, 10 for MNIST) has an MLP encoder; set model.arch='mlp'.")
  if config.apps.method not in ("", *INPAINT_METHODS):
    raise ValueError(f"apps.method={config.apps.method!r}: the VAE completes images by "
                     f"{' or '.join(repr(m) for m in INPAINT_METHODS)} ('' = 'mwg').")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config)
  model = create_model(config, image_shape)
  method = config.apps.method or "mwg"
  p = functools.partial
  if model.num_classes:   # the conditional VAE: samples and reconstructions given the class
    return Family(
        init=p(init_state, model=model, tx=optim.make(config.optimizer),
               image_shape=tuple(image_shape)),
        train_step=p(train_step, model=model, beta=config.model.beta),
        eval_step=p(eval_step, model=model), sample=p(sample, model=model),
        reconstruct=p(reconstruct, model=model), num_classes=model.num_classes)
  return Family(
      init=p(init_state, model=model, tx=optim.make(config.optimizer),
             image_shape=tuple(image_shape)),
      train_step=p(train_step, model=model, beta=config.model.beta),
      eval_step=p(eval_step, model=model),
      sample=p(sample, model=model),
      reconstruct=p(reconstruct, model=model),
      encode=p(encode, model=model),
      decode=p(decode, model=model),
      prior=p(prior, model=model),
      inpaint=p(inpaint, model=model, method=method, num_steps=config.apps.num_steps),
      inpaint_method=f"{INPAINT_METHODS[method]}, {config.apps.num_steps} sweeps",
      log_likelihood=p(log_likelihood, model=model, k_chunk=config.eval.iwae_k_chunk),
  )
