"""BiGAN / ALI: an encoder E, a generator G and a discriminator D on (x, z) pairs.

Donahue et al. 2017 (BiGAN) and Dumoulin et al. 2017 (ALI): D learns to tell real pairs
(x, E(x)) from generated pairs (G(z), z), z ~ p(z); E and G learn to fool it. At the optimum E and G
invert each other, so E(x) is a representation of x learnt without labels (measured here by
linear probes and nearest-neighbour classification on E(x): :mod:`gen_jax.representation`).

One :class:`gen_jax.state.TrainState` holds the three networks, each with its own optimizer::

    params    = {"enc": E params, "gen": G params, "disc": D params}
    opt_state = {"enc": ..., "gen": ..., "disc": ...}
    extra     = {"ema": {"enc": EMA of E params, "gen": EMA of G params}}   (if ema_decay > 0)

:func:`encode`, :func:`sample`, :func:`reconstruct` and :func:`eval_step` use the exponential
moving averages of E's and G's weights when the state has them (as the GAN family samples from its
EMA generator); training uses the current weights.

One call of :func:`train_step` is one discriminator update, then one joint update of E and G
against the updated D (fresh noise for each); ``state.step`` counts these pairs. E's and G's
losses are separate terms of one sum (E's term does not depend on G's parameters nor G's on E's),
so one gradient of the sum gives each its own gradient:

================  =========================================================================
network           minimises (per pair; ``l`` = the GAN loss of :mod:`gen_jax.losses.gan`)
================  =========================================================================
D                 ``disc_loss(l, D(x, E(x)), D(G(z), z))``: real pairs as real, generated as fake
G                 ``gen_loss(l, D(G(z), z))``: its pairs taken for real
E                 ``gen_loss(l, -D(x, E(x)))``: its pairs taken for *generated* (labels flipped:
                  for the logit losses -log(1 - D(x, E(x))), BiGAN's non-saturating form)
================  =========================================================================

Encoder: 'deterministic' (BiGAN: z = E(x)) or 'gaussian' (ALI: E(x) gives a mean and a log-variance
and z is drawn by reparameterisation). :func:`encode` returns the (mean) code. Prior: 'normal'
N(0, I) (ALI) or 'uniform' U(-1, 1) (BiGAN). G's outputs are sigmoid means in [0, 1], like the data.

Train metrics (the loop logs them as ``train/<name>``): ``loss`` = ``disc_loss``, ``gen_loss``,
``enc_loss``, ``d_real`` = mean D(x, E(x)) and ``d_fake`` = mean D(G(z), z) from the
discriminator update (probabilities for the logit losses, raw outputs for hinge),
``disc_grad_norm`` / ``gen_grad_norm`` / ``enc_grad_norm`` (global norm of each network's gradient),
``fake_pixel_std`` (per-pixel standard deviation across the generated batch, averaged over pixels:
it falls towards 0 when G collapses) and ``code_std`` (the same across the codes E(x)).

Usage in a research script::

    from functools import partial
    import jax, optax
    from gen_jax.models.autoencoders import MLPEncoder, MLPDecoder
    from gen_jax.models.gan import JointDiscriminator
    from gen_jax.steps import bigan

    nets = dict(enc=MLPEncoder(hidden=(512,), out_dim=50),
                gen=MLPDecoder(hidden=(512,), image_shape=(28, 28, 1)),
                disc=JointDiscriminator(dropout=0.2))
    adam = optax.adam(2e-4, b1=0.5)
    state = bigan.init_state(jax.random.PRNGKey(0), **nets, z_dim=50, tx_enc=adam, tx_gen=adam,
                             tx_disc=adam, image_shape=(28, 28, 1))
    step = jax.jit(partial(bigan.train_step, **nets, z_dim=50), donate_argnums=0)
    state, metrics = step(state, {"image": x})          # x: (B, 28, 28, 1) in [0, 1]
    codes = bigan.encode(state, x, enc=nets["enc"])     # (B, 50)
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import precision
from gen_jax.applications import completion
from gen_jax.applications import masks as masks_lib
from gen_jax.losses import gan as gan_losses
from gen_jax.models import autoencoders, layers
from gen_jax.models import gan as gan_models
from gen_jax.state import TrainState
from gen_jax.steps import Family, adversarial
from gen_jax.steps.adversarial import inference_params, outputs

ENC, GEN, DISC = "enc", "gen", adversarial.DISC
LOSSES = adversarial.LOGIT_AND_HINGE
ENCODERS = ("deterministic", "gaussian")
PRIORS = ("normal", "uniform")


def check(*, loss: str, encoder: str, prior: str) -> None:
  """A clear error for an unknown or unsupported choice."""
  adversarial.check_loss(loss, "BiGAN", LOSSES)
  if encoder not in ENCODERS:
    raise ValueError(f"unknown model.encoder {encoder!r}: choose 'deterministic' (BiGAN) or "
                     "'gaussian' (ALI).")
  if prior not in PRIORS:
    raise ValueError(f"unknown model.prior {prior!r}: choose 'normal' or 'uniform'.")


# ---------------------------------------------------------------------------------------------
# Pieces.


def sample_prior(key: jax.Array, shape: Sequence[int], prior: str = "normal") -> jax.Array:
  """z ~ N(0, I) ('normal') or U(-1, 1) ('uniform')."""
  if prior == "uniform":
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  return jax.random.normal(key, shape)


def encode_codes(enc: nn.Module, enc_params, x: jax.Array, key: Optional[jax.Array] = None, *,
                 encoder: str = "deterministic") -> jax.Array:
  """z = E(x). A 'gaussian' encoder draws z ~ N(mean, exp(logvar)) when ``key`` is given and
  returns the mean when it is None."""
  out = enc.apply({"params": enc_params}, x)
  if encoder == "deterministic":
    return out
  mean, logvar = jnp.split(out, 2, axis=-1)
  if key is None:
    return mean
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def generate_images(gen: nn.Module, gen_params, z: jax.Array) -> jax.Array:
  """G(z): sigmoid of the generator's logits, images in [0, 1]."""
  return jax.nn.sigmoid(gen.apply({"params": gen_params}, z))


def pairs(enc_params, gen_params, x: jax.Array, z: jax.Array, key: Optional[jax.Array] = None, *,
          enc: nn.Module, gen: nn.Module, encoder: str = "deterministic"):
  """The discriminator's two kinds of input: real pairs (x, E(x)) and generated pairs (G(z), z)."""
  real = (x, encode_codes(enc, enc_params, x, key, encoder=encoder))
  return real, (generate_images(gen, gen_params, z), z)


def discriminate(disc: nn.Module, disc_params, x: jax.Array, z: jax.Array,
                 key: Optional[jax.Array] = None) -> jax.Array:
  """D(x, z), one raw output per pair; dropout (train mode) if ``key`` is given."""
  if key is None:
    return disc.apply({"params": disc_params}, x, z, train=False)
  return disc.apply({"params": disc_params}, x, z, train=True, rngs={"dropout": key})


# ---------------------------------------------------------------------------------------------
# State and steps.


def init_state(key: jax.Array, *, enc: nn.Module, gen: nn.Module, disc: nn.Module, z_dim: int,
               tx_enc: optax.GradientTransformation, tx_gen: optax.GradientTransformation,
               tx_disc: optax.GradientTransformation, image_shape: Sequence[int],
               encoder: str = "deterministic", ema: bool = True) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the three networks and every later step."""
  enc_key, gen_key, disc_key, run_key = jax.random.split(key, 4)
  x = jnp.zeros((1, *image_shape), jnp.float32)
  z = jnp.zeros((1, z_dim), jnp.float32)
  enc_params = enc.init(enc_key, x)["params"]
  out_dim = jax.eval_shape(lambda p: enc.apply({"params": p}, x), enc_params).shape[-1]
  want = z_dim * (2 if encoder == "gaussian" else 1)
  if out_dim != want:
    raise ValueError(f"the encoder gives {out_dim} outputs but a {encoder} encoder of a {z_dim}-d "
                     f"code needs {want}; build it with out_dim={want}.")
  gen_params = gen.init(gen_key, z)["params"]
  made = jax.eval_shape(lambda p: gen.apply({"params": p}, z), gen_params).shape[1:]
  if tuple(made) != tuple(image_shape):
    raise ValueError(f"the generator makes {tuple(made)} images but the data are "
                     f"{tuple(image_shape)}; change model.channels / the dataset to match.")
  disc_params = disc.init(disc_key, x, z, train=False)["params"]
  params = {ENC: enc_params, GEN: gen_params, DISC: disc_params}
  return TrainState.create(params=params, tx={ENC: tx_enc, GEN: tx_gen, DISC: tx_disc},
                           key=run_key, extra=adversarial.init_ema(params, (ENC, GEN), ema))


def disc_loss_fn(disc_params, real: tuple, fake: tuple, key: jax.Array, *, disc: nn.Module,
                 loss: str = "non_saturating"):
  """Mean discriminator loss on real pairs ``real`` = (x, E(x)), generated ``fake`` = (G(z), z)."""
  real_key, fake_key = jax.random.split(key)
  d_real = discriminate(disc, disc_params, *real, real_key)
  d_fake = discriminate(disc, disc_params, *fake, fake_key)
  return gan_losses.disc_loss(loss, d_real, d_fake).mean(), (d_real, d_fake)


def enc_gen_loss_fn(enc_params, gen_params, disc_params, x: jax.Array, z: jax.Array,
                    key: jax.Array, *, enc: nn.Module, gen: nn.Module, disc: nn.Module,
                    loss: str = "non_saturating", encoder: str = "deterministic"):
  """E's loss + G's loss (separate terms: see the module docstring), and the terms and fakes."""
  eps_key, real_key, fake_key = jax.random.split(key, 3)
  real, fake = pairs(enc_params, gen_params, x, z, eps_key, enc=enc, gen=gen, encoder=encoder)
  enc_loss = gan_losses.gen_loss(loss, -discriminate(disc, disc_params, *real, real_key)).mean()
  gen_loss = gan_losses.gen_loss(loss, discriminate(disc, disc_params, *fake, fake_key)).mean()
  return enc_loss + gen_loss, (enc_loss, gen_loss, real[1], fake[0])


def train_step(state: TrainState, batch: dict, *, enc: nn.Module, gen: nn.Module, disc: nn.Module,
               z_dim: int, ema_decay: float, loss: str = "non_saturating",
               encoder: str = "deterministic", prior: str = "normal"
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One discriminator update, one joint update of E and G against the updated D, then the EMA
  update (decay ``ema_decay`` after a warm-up: :func:`gen_jax.steps.adversarial.ema_decay_at`)."""
  check(loss=loss, encoder=encoder, prior=prior)
  x = batch["image"]
  n = x.shape[0]

  z_key, eps_key, drop_key = jax.random.split(state.step_key(0), 3)
  real, fake = pairs(state.params[ENC], state.params[GEN], x,
                     sample_prior(z_key, (n, z_dim), prior), eps_key, enc=enc, gen=gen,
                     encoder=encoder)
  real, fake = jax.lax.stop_gradient((real, fake))
  (d_value, (d_real, d_fake)), d_grads = jax.value_and_grad(disc_loss_fn, has_aux=True)(
      state.params[DISC], real, fake, drop_key, disc=disc, loss=loss)
  state = state.apply_gradients({DISC: d_grads}, next_step=False)

  z_key, key = jax.random.split(state.step_key(1))
  (_, (enc_value, gen_value, codes, images)), (e_grads, g_grads) = jax.value_and_grad(
      enc_gen_loss_fn, argnums=(0, 1), has_aux=True)(
          state.params[ENC], state.params[GEN], state.params[DISC], x,
          sample_prior(z_key, (n, z_dim), prior), key, enc=enc, gen=gen, disc=disc, loss=loss,
          encoder=encoder)
  decay = adversarial.ema_decay_at(state.step, ema_decay)
  state = state.apply_gradients({ENC: e_grads, GEN: g_grads})
  state = adversarial.update_ema(state, decay)
  metrics = {
      "loss": d_value, "disc_loss": d_value, "gen_loss": gen_value, "enc_loss": enc_value,
      "d_real": outputs(loss, d_real).mean(), "d_fake": outputs(loss, d_fake).mean(),
      "disc_grad_norm": optax.tree.norm(d_grads), "gen_grad_norm": optax.tree.norm(g_grads),
      "enc_grad_norm": optax.tree.norm(e_grads),
      "fake_pixel_std": adversarial.pixel_std(images), "code_std": jnp.std(codes, axis=0).mean(),
  }
  return state, metrics


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, enc: nn.Module, gen: nn.Module,
              disc: nn.Module, z_dim: int, loss: str = "non_saturating",
              encoder: str = "deterministic", prior: str = "normal") -> dict[str, jax.Array]:
  """Per-example metrics on test images x and as many z ~ p(z) (dropout off, mean codes, E and G
  of :func:`inference_params`).

  ``d_real`` = D(x, E(x)), ``d_fake`` = D(G(z), z) (probabilities for the logit losses),
  ``disc_loss`` on the pair of pairs, ``recon_mse`` = mean over pixels of (G(E(x)) - x)^2 and
  ``latent_mse`` = mean over dimensions of (E(G(z)) - z)^2: how far E and G are from inverting
  each other (neither is trained on them).
  """
  x = batch["image"]
  z = sample_prior(key, (x.shape[0], z_dim), prior)
  params = inference_params(state)
  real, fake = pairs(params[ENC], params[GEN], x, z, enc=enc, gen=gen, encoder=encoder)
  d_real = discriminate(disc, params[DISC], *real)
  d_fake = discriminate(disc, params[DISC], *fake)
  recon = generate_images(gen, params[GEN], real[1])
  z_back = encode_codes(enc, params[ENC], fake[0], encoder=encoder)
  flat = lambda a: a.reshape(a.shape[0], -1)
  return {"d_real": outputs(loss, d_real), "d_fake": outputs(loss, d_fake),
          "disc_loss": gan_losses.disc_loss(loss, d_real, d_fake),
          "recon_mse": jnp.mean(flat(recon - x) ** 2, axis=-1),
          "latent_mse": jnp.mean((z_back - z) ** 2, axis=-1)}


def sample(state: TrainState, key: jax.Array, num: int, *, gen: nn.Module, z_dim: int,
           prior: str = "normal") -> jax.Array:
  """``num`` images G(z) in [0, 1], z ~ p(z) (G's EMA weights if kept)."""
  return generate_images(gen, inference_params(state)[GEN], sample_prior(key, (num, z_dim), prior))


def encode(state: TrainState, images: jax.Array, *, enc: nn.Module,
           encoder: str = "deterministic") -> jax.Array:
  """E(x) (the mean code for a 'gaussian' encoder) of images in [0, 1]: the learnt features (E's
  EMA weights if kept)."""
  return encode_codes(enc, inference_params(state)[ENC], images, encoder=encoder)


def reconstruct(state: TrainState, batch: dict, *, enc: nn.Module, gen: nn.Module,
                encoder: str = "deterministic") -> jax.Array:
  """G(E(x)) in [0, 1] (EMA weights if kept)."""
  return generate_images(gen, inference_params(state)[GEN],
                         encode(state, batch["image"], enc=enc, encoder=encoder))


def decode(state: TrainState, z: jax.Array, *, gen: nn.Module) -> jax.Array:
  """G(z) in [0, 1] (G's EMA weights if kept)."""
  return generate_images(gen, inference_params(state)[GEN], z)


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, enc: nn.Module,
            gen: nn.Module, disc: nn.Module, loss: str, num_steps: int, learning_rate: float,
            prior_weight: float, z_weight: float, encoder: str = "deterministic") -> jax.Array:
  """Latent optimisation (:func:`gen_jax.applications.completion.latent_optimisation`) from the
  encoder's code of the image with its missing pixels at the known ones' mean; the prior loss is
  G's loss under the joint discriminator D(G(z), z)."""
  del key  # deterministic: the start is E's code
  images = batch["image"]
  z0 = encode(state, masks_lib.known_mean_fill(images, mask), enc=enc, encoder=encoder)
  disc_params = state.params[DISC]
  return completion.latent_optimisation(
      z0, images, mask, generate=lambda z: decode(state, z, gen=gen), num_steps=num_steps,
      learning_rate=learning_rate, prior_weight=prior_weight, z_weight=z_weight,
      adversarial=lambda x, z: gan_losses.gen_loss(loss, discriminate(disc, disc_params, x, z)))[0]


# ---------------------------------------------------------------------------------------------
# From a config.


def create_models(config: ml_collections.ConfigDict, image_shape: Sequence[int]):
  """(E, G, D) of ``config.model``: E and G are the autoencoders' encoder and decoder (``arch``,
  ``hidden``, ``channels``; :func:`gen_jax.models.autoencoders.make_encoder`); D is a
  :class:`gen_jax.models.gan.JointDiscriminator`."""
  m = config.model
  impl = layers.resolve_conv_impl(m.conv_impl)
  enc = autoencoders.make_encoder(m.arch, hidden=m.hidden, channels=tuple(m.channels),
                                  out_dim=m.latent_dim * (2 if m.encoder == "gaussian" else 1),
                                  conv_impl=impl)
  gen = autoencoders.make_decoder(m.arch, hidden=m.hidden, channels=tuple(m.channels),
                                  image_shape=image_shape, conv_impl=impl)
  disc = gan_models.JointDiscriminator(
      arch=m.disc_arch, x_hidden=tuple(m.disc_x_hidden), z_hidden=tuple(m.disc_z_hidden),
      joint_hidden=tuple(m.disc_joint_hidden), channels=tuple(m.disc_channels),
      dropout=m.disc_dropout, conv_impl=impl)
  return enc, gen, disc


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for a choice of ``config.model`` this family cannot train."""
  m = config.model
  check(loss=m.loss, encoder=m.encoder, prior=m.prior)


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  """The BiGAN family of ``config``: ``config.optimizer`` trains E and G (each its own state),
  ``config.disc_optimizer`` trains D."""
  m = config.model
  validate(config)
  tx = adversarial.optimizers(config, "BiGAN", (ENC, GEN), trains="the encoder and generator")
  enc, gen, disc = create_models(config, image_shape)
  shared = dict(loss=m.loss, encoder=m.encoder, prior=m.prior)
  latent_opt, method = adversarial.latent_completion(config, "the encoder's code")
  p = functools.partial
  return Family(
      init=p(init_state, enc=enc, gen=gen, disc=disc, z_dim=m.latent_dim, tx_enc=tx[ENC],
             tx_gen=tx[GEN], tx_disc=tx[DISC], image_shape=tuple(image_shape), encoder=m.encoder,
             ema=m.ema_decay > 0),
      train_step=p(train_step, **{k: precision.cast(v, precision.compute_dtype(m.dtype))
                                  for k, v in dict(enc=enc, gen=gen, disc=disc).items()},
                   z_dim=m.latent_dim, **shared,
                   ema_decay=m.ema_decay),
      eval_step=p(eval_step, enc=enc, gen=gen, disc=disc, z_dim=m.latent_dim, **shared),
      sample=p(sample, gen=gen, z_dim=m.latent_dim, prior=m.prior),
      reconstruct=p(reconstruct, enc=enc, gen=gen, encoder=m.encoder),
      encode=p(encode, enc=enc, encoder=m.encoder),
      decode=p(decode, gen=gen),
      prior=lambda state, key, num: sample_prior(key, (num, m.latent_dim), m.prior),
      inpaint=p(inpaint, enc=enc, gen=gen, disc=disc, loss=m.loss, encoder=m.encoder, **latent_opt),
      inpaint_method=method,
  )
