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

from gen_jax import optim, precision
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


def sampled_terms(params, x: jax.Array, eps: jax.Array, *, model: VAE,
                  labels: Optional[jax.Array] = None) -> dict[str, jax.Array]:
  """For the standard-normal draws ``eps`` of shape (..., batch, code_dim), z ~ q(z|x) and per
  draw: ``recon`` = -log p(x|z), ``log_q`` = log q(z|x), ``log_prior`` = log p(z)."""
  variables = {"params": params}
  z, log_q = model.apply(variables, x, eps, labels, method=VAE.posterior)
  logits = model.apply(variables, z, labels, method=VAE.decode)
  return {"recon": -densities.bernoulli_log_prob(logits, x), "log_q": log_q,
          "log_prior": model.apply(variables, z, method=VAE.log_prior)}


def elbo_terms(params, x: jax.Array, key: jax.Array, *, model: VAE,
               labels: Optional[jax.Array] = None) -> dict[str, jax.Array]:
  """One-sample estimates, per example: ``recon`` = -log p(x|z), ``kl`` = KL(q(z|x) || p(z))
  (for the conditional VAE, given the ``labels``): in closed form for the Gaussian q, as
  log q(z|x) - log p(z) at the sample with a flow or two stochastic layers."""
  if model.closed_form_kl:
    logits, mean, logvar = model.apply({"params": params}, x, key, labels)
    return {"recon": -densities.bernoulli_log_prob(logits, x),
            "kl": densities.gaussian_kl(mean, logvar)}
  eps = jax.random.normal(key, (x.shape[0], model.code_dim), x.dtype)
  t = sampled_terms(params, x, eps, model=model, labels=labels)
  return {"recon": t["recon"], "kl": t["log_q"] - t["log_prior"]}


def loss_fn(params, x: jax.Array, key: jax.Array, *, model: VAE, beta: float = 1.0,
            labels: Optional[jax.Array] = None):
  """Mean over the batch of recon + beta * KL (beta = 1: the negative ELBO)."""
  terms = elbo_terms(params, x, key, model=model, labels=labels)
  return jnp.mean(terms["recon"] + beta * terms["kl"]), terms


def iwae_loss_fn(params, x: jax.Array, key: jax.Array, *, model: VAE, num_samples: int,
                 labels: Optional[jax.Array] = None):
  """Mean over the batch of minus the ``num_samples``-sample IWAE bound (Burda et al. 2016);
  the terms are (num_samples, batch)."""
  eps = jax.random.normal(key, (num_samples, x.shape[0], model.code_dim), x.dtype)
  t = sampled_terms(params, x, eps, model=model, labels=labels)
  log_w = t["log_prior"] - t["recon"] - t["log_q"]
  return -densities.importance_weighted_bound(log_w, axis=0).mean(), {
      "recon": t["recon"], "kl": t["log_q"] - t["log_prior"]}


OBJECTIVES = ("elbo", "iwae")


def kl_weight(step: jax.Array, *, beta: float, warmup_steps: int) -> jax.Array:
  """The KL term's weight at ``step``: beta, ramped linearly from 0 over ``warmup_steps`` (the
  warm-up of Bowman et al. 2016 and Sonderby et al. 2016; 0: none)."""
  if not warmup_steps:
    return jnp.asarray(beta, jnp.float32)
  return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def train_step(state: TrainState, batch: dict, *, model: VAE, beta: float = 1.0,
               objective: str = "elbo", num_samples: int = 1,
               kl_warmup_steps: int = 0) -> tuple[TrainState, dict[str, jax.Array]]:
  """One Adam (or ``state``'s optimizer) step on recon + beta * KL (``objective='elbo'``; the KL
  weight ramped up over ``kl_warmup_steps``), or on minus the IWAE bound of ``num_samples``
  samples (``'iwae'``; ``beta`` and the warm-up unused). ``neg_elbo`` is the mean over samples of
  the one-sample bound in both."""
  labels = _labels(batch, model)
  if objective == "iwae":
    fn = functools.partial(iwae_loss_fn, model=model, num_samples=num_samples, labels=labels)
  else:
    fn = functools.partial(loss_fn, model=model, labels=labels,
                           beta=kl_weight(state.step, beta=beta, warmup_steps=kl_warmup_steps))
  (loss, terms), grads = jax.value_and_grad(fn, has_aux=True)(
      state.params[NET], batch["image"], state.step_key())
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
  """Bernoulli means of p(x|z) for ``num`` draws z ~ p(z) (N(0, I) or, with two stochastic layers,
  ancestral); the conditional VAE's of p(x | z, y) for the given ``labels`` (uniformly drawn
  classes if None)."""
  z_key, y_key = jax.random.split(key)
  z = prior(state, z_key if model.num_classes else key, num, model=model)
  if model.num_classes and labels is None:
    labels = jax.random.randint(y_key, (num,), 0, model.num_classes)
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, z, labels, method=VAE.decode))


def encode(state: TrainState, images: jax.Array, *, model: VAE) -> jax.Array:
  """The posterior mean of q(z|x) for images in [0, 1], (batch, code_dim); with a flow, the
  flow of its base distribution's mean (:meth:`VAE.code`)."""
  return model.apply({"params": state.params[NET]}, images, method=VAE.code)


def decode(state: TrainState, z: jax.Array, *, model: VAE) -> jax.Array:
  """Bernoulli means of p(x|z), images in [0, 1]."""
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, z, method=VAE.decode))


def prior(state: TrainState, key: jax.Array, num: int, *, model: VAE) -> jax.Array:
  """z ~ p(z), (num, code_dim): N(0, I), or h2 ~ N(0, I) then h1 ~ p(h1 | h2)."""
  eps = jax.random.normal(key, (num, model.code_dim))
  return model.apply({"params": state.params[NET]}, eps, method=VAE.sample_prior)


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
            log_prior=lambda z: model.apply(variables, z, method=VAE.log_prior),
            num_steps=num_steps)


def reconstruct(state: TrainState, batch: dict, *, model: VAE) -> jax.Array:
  """Bernoulli means of p(x | z = posterior mean) (given the batch's labels, conditional VAE)."""
  variables, y = {"params": state.params[NET]}, _labels(batch, model)
  code = model.apply(variables, batch["image"], y, method=VAE.code)
  return jax.nn.sigmoid(model.apply(variables, code, y, method=VAE.decode))


def log_importance_weights(params, x: jax.Array, key: jax.Array, *, model: VAE,
                           k: int) -> jax.Array:
  """(batch, k) log-weights log p(x, z_i) - log q(z_i | x), z_i ~ q(z|x)."""
  eps = jax.random.normal(key, (k, x.shape[0], model.code_dim), x.dtype)
  t = sampled_terms(params, x, eps, model=model)
  return (t["log_prior"] - t["recon"] - t["log_q"]).T


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
  m = config.model
  model = ae.create_model(config, image_shape, module=VAE)
  return model.clone(num_classes=m.num_classes, flow=m.flow, flow_steps=m.flow_steps,
                     flow_hidden=tuple(m.flow_hidden), context_dim=m.context_dim,
                     latent_dim2=m.latent_dim2, hidden2=tuple(m.hidden2))


def validate(config: ml_collections.ConfigDict) -> None:
  """The autoencoders' checks (:func:`gen_jax.steps.ae.validate`) and beta >= 0."""
  ae.validate(config)
  if config.model.beta < 0:
    raise ValueError(f"model.beta={config.model.beta} weighs the KL term: use beta >= 0 (1: the "
                     "VAE, > 1: a beta-VAE).")
  if config.model.num_classes < 0 or (config.model.num_classes and config.model.arch != "mlp"):
    raise ValueError(f"model.num_classes={config.model.num_classes}: the conditional VAE "
                     "(num_classes > 0, 10 for MNIST) has an MLP encoder; set model.arch='mlp'.")
  m = config.model
  if m.objective not in OBJECTIVES or m.num_samples < 1:
    raise ValueError(f"model.objective={m.objective!r}, model.num_samples={m.num_samples}: "
                     f"choose {' or '.join(map(repr, OBJECTIVES))} and num_samples >= 1.")
  if m.objective == "iwae" and (m.beta != 1.0 or m.kl_warmup_steps):
    raise ValueError(f"model.beta={m.beta}, kl_warmup_steps={m.kl_warmup_steps} with "
                     "model.objective='iwae': the IWAE bound has no KL weight; set model.beta=1 "
                     "and kl_warmup_steps=0, or model.objective='elbo'.")
  if m.kl_warmup_steps < 0:
    raise ValueError(f"model.kl_warmup_steps={m.kl_warmup_steps}: use 0 (no warm-up) or a "
                     "positive number of steps.")
  if m.flow not in ("", "iaf") or (m.flow and (m.flow_steps < 1 or not m.flow_hidden)):
    raise ValueError(f"model.flow={m.flow!r}, flow_steps={m.flow_steps}, flow_hidden="
                     f"{tuple(m.flow_hidden)}: the posterior flow is '' (none) or 'iaf', with "
                     "flow_steps >= 1 and at least one hidden layer.")
  if m.latent_dim2 < 0 or (m.latent_dim2 and (m.flow or m.num_classes or m.arch != "mlp")):
    raise ValueError(f"model.latent_dim2={m.latent_dim2}: a second stochastic layer is for the "
                     "unconditional MLP VAE without a posterior flow; set model.latent_dim2=0, or "
                     "model.flow='', model.num_classes=0 and model.arch='mlp'.")
  if config.apps.method not in ("", *INPAINT_METHODS):
    raise ValueError(f"apps.method={config.apps.method!r}: the VAE completes images by "
                     f"{' or '.join(repr(m) for m in INPAINT_METHODS)} ('' = 'mwg').")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config)
  model = create_model(config, image_shape)
  method = config.apps.method or "mwg"
  train_model = precision.cast(model, precision.compute_dtype(config.model.dtype))
  p = functools.partial
  if model.num_classes:   # the conditional VAE: samples and reconstructions given the class
    return Family(
        init=p(init_state, model=model, tx=optim.make(config.optimizer),
               image_shape=tuple(image_shape)),
        train_step=p(train_step, model=train_model, beta=config.model.beta,
                   objective=config.model.objective, num_samples=config.model.num_samples,
                   kl_warmup_steps=config.model.kl_warmup_steps),
        eval_step=p(eval_step, model=model), sample=p(sample, model=model),
        reconstruct=p(reconstruct, model=model), num_classes=model.num_classes)
  return Family(
      init=p(init_state, model=model, tx=optim.make(config.optimizer),
             image_shape=tuple(image_shape)),
      train_step=p(train_step, model=train_model, beta=config.model.beta,
                   objective=config.model.objective, num_samples=config.model.num_samples,
                   kl_warmup_steps=config.model.kl_warmup_steps),
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
