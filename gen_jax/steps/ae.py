"""Deterministic autoencoder with a Bernoulli reconstruction loss."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import losses, optim
from gen_jax.models.autoencoders import Autoencoder
from gen_jax.state import TrainState
from gen_jax.steps import Family

NET = "ae"


def init_state(key: jax.Array, *, model: Autoencoder, tx: optax.GradientTransformation,
               image_shape: Sequence[int]) -> TrainState:
  init_key, run_key = jax.random.split(key)
  variables = model.init(init_key, jnp.zeros((1, *image_shape), jnp.float32))
  return TrainState.create(params={NET: variables}, tx={NET: tx}, key=run_key)


def recon_nll(variables, x: jax.Array, *, model: Autoencoder) -> jax.Array:
  """Per-example -log Bernoulli(x | decode(encode(x))), in nats."""
  return -losses.bernoulli_log_prob(model.apply(variables, x), x)


def train_step(state: TrainState, batch: dict, *,
               model: Autoencoder) -> tuple[TrainState, dict[str, jax.Array]]:
  loss, grads = jax.value_and_grad(lambda v: recon_nll(v, batch["image"], model=model).mean())(
      state.params[NET])
  return state.apply_gradients({NET: grads}), {"loss": loss, "recon": loss}


def eval_step(state: TrainState, batch: dict, key: jax.Array, *,
              model: Autoencoder) -> dict[str, jax.Array]:
  del key  # deterministic
  return {"recon": recon_nll(state.params[NET], batch["image"], model=model)}


def encode(state: TrainState, batch: dict, *, model: Autoencoder) -> jax.Array:
  return model.apply(state.params[NET], batch["image"], method=Autoencoder.encode)


def reconstruct(state: TrainState, batch: dict, *, model: Autoencoder) -> jax.Array:
  return jax.nn.sigmoid(model.apply(state.params[NET], batch["image"]))


def create_model(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Autoencoder:
  m = config.model
  return Autoencoder(arch=m.arch, hidden=tuple(m.hidden), latent_dim=m.latent_dim,
                     image_shape=tuple(image_shape), channels=tuple(m.get("channels", (32, 64))))


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  model = create_model(config, image_shape)
  tx = optim.make(config.optimizer)
  p = functools.partial
  return Family(init=p(init_state, model=model, tx=tx, image_shape=tuple(image_shape)),
                train_step=p(train_step, model=model), eval_step=p(eval_step, model=model),
                reconstruct=p(reconstruct, model=model))
