"""Deterministic autoencoder with a Bernoulli reconstruction loss."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import ml_collections
import optax

from gen_jax import optim, precision
from gen_jax.applications import completion
from gen_jax.losses import densities
from gen_jax.models import autoencoders, layers
from gen_jax.models.autoencoders import Autoencoder
from gen_jax.state import TrainState
from gen_jax.steps import Family

NET = "ae"
ARCHS = ("mlp", "conv")


def init_state(key: jax.Array, *, model: Autoencoder, tx: optax.GradientTransformation,
               image_shape: Sequence[int]) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the parameters and every later step."""
  return TrainState.for_module(key, name=NET, module=model, tx=tx, image_shape=image_shape)


def recon_nll(params, x: jax.Array, *, model: Autoencoder) -> jax.Array:
  """Per-example -log Bernoulli(x | decode(encode(x))), in nats."""
  return -densities.bernoulli_log_prob(model.apply({"params": params}, x), x)


def train_step(state: TrainState, batch: dict, *,
               model: Autoencoder) -> tuple[TrainState, dict[str, jax.Array]]:
  loss, grads = jax.value_and_grad(lambda v: recon_nll(v, batch["image"], model=model).mean())(
      state.params[NET])
  return state.apply_gradients({NET: grads}), {"loss": loss, "recon": loss}


def eval_step(state: TrainState, batch: dict, key: jax.Array, *,
              model: Autoencoder) -> dict[str, jax.Array]:
  del key  # deterministic
  return {"recon": recon_nll(state.params[NET], batch["image"], model=model)}


def encode(state: TrainState, images: jax.Array, *, model: Autoencoder) -> jax.Array:
  """The code of images in [0, 1], (batch, latent_dim)."""
  return model.apply({"params": state.params[NET]}, images, method=Autoencoder.encode)


def decode(state: TrainState, z: jax.Array, *, model: Autoencoder) -> jax.Array:
  """Bernoulli means of the decoder's p(x | code), images in [0, 1]."""
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, z, method=Autoencoder.decode))


def reconstruct(state: TrainState, batch: dict, *, model: Autoencoder) -> jax.Array:
  """Bernoulli means of p(x | decode(encode(x)))."""
  return jax.nn.sigmoid(model.apply({"params": state.params[NET]}, batch["image"]))


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *,
            model: Autoencoder, num_steps: int) -> jax.Array:
  """Iterated projection (:func:`gen_jax.applications.completion.iterated_projection`):
  reconstruct, keep the known pixels, ``num_steps`` times; deterministic (``key`` unused)."""
  del key
  return completion.iterated_projection(
      batch["image"], mask, num_steps=num_steps,
      reconstruct=lambda x: reconstruct(state, {"image": x}, model=model))


def create_model(config: ml_collections.ConfigDict, image_shape: Sequence[int], *,
                 module: type = Autoencoder):
  """``module`` (:class:`Autoencoder`, or the VAE) of ``config.model``'s arch and sizes."""
  m = config.model
  return module(arch=m.arch, hidden=tuple(m.hidden), latent_dim=m.latent_dim,
                image_shape=tuple(image_shape), channels=tuple(m.channels), activation=m.activation,
                conv_impl=layers.resolve_conv_impl(m.conv_impl))


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for an architecture or code size the autoencoders do not have."""
  m = config.model
  if m.arch not in ARCHS:
    raise ValueError(f"unknown model.arch {m.arch!r}: choose one of {', '.join(ARCHS)}.")
  autoencoders.activation(m.activation)   # a clear error for an unknown name
  if m.latent_dim < 1:
    raise ValueError(f"model.latent_dim={m.latent_dim} must be a positive code size.")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config)
  model = create_model(config, image_shape)
  tx = optim.make(config.optimizer)
  p = functools.partial
  return Family(init=p(init_state, model=model, tx=tx, image_shape=tuple(image_shape)),
                train_step=p(train_step, model=precision.cast(
                    model, precision.compute_dtype(config.model.dtype))),
                eval_step=p(eval_step, model=model),
                reconstruct=p(reconstruct, model=model), encode=p(encode, model=model),
                decode=p(decode, model=model),
                inpaint=p(inpaint, model=model, num_steps=config.apps.num_steps),
                inpaint_method=f"iterated projection ({config.apps.num_steps} steps)")
