"""VAE-GAN (Larsen et al. 2016): a VAE whose decoder is also a GAN generator, with the
reconstruction measured in the discriminator's feature space.

Three networks, each with its own optimizer, in one :class:`gen_jax.state.TrainState`::

    params    = {"enc": Enc params, "dec": Dec params, "disc": Dis params}
    opt_state = {"enc": ..., "dec": ..., "disc": ...}
    extra     = {"ema": {"enc": EMA of Enc params, "dec": EMA of Dec params}}   (if ema_decay > 0)

:func:`sample`, :func:`reconstruct`, :func:`encode` and :func:`eval_step` use the exponential
moving averages of Enc's and Dec's weights when the state has them (as the GAN family samples from
its EMA generator); training uses the current weights.

Enc gives q(z|x) = N(mean, diag(exp(logvar))) (the autoencoders' encoder); Dec maps z to pixel
means in [0, 1] (the autoencoders' decoder and a sigmoid); Dis
(:class:`gen_jax.models.gan.FeatureDiscriminator`) gives a logit and the activations Dis_l(x) of
one of its hidden layers (``feature_layer``, the last by default). With x~ = Dec(z), z ~ q(z|x)
(a reconstruction) and x_p = Dec(z_p), z_p ~ N(0, I) (a sample), per example:

* ``kl``         = KL(q(z|x) || N(0, I))                                          (L_prior)
* ``feat_recon`` = 1/2 ||Dis_l(x~) - Dis_l(x)||^2, i.e. -log N(Dis_l(x) | Dis_l(x~), I) up to a
  constant: the reconstruction error in Dis's feature space                       (L_llike^Dis_l)
* ``disc_loss``  = 1/2 [disc_loss(l, Dis(x), Dis(x~)) + disc_loss(l, Dis(x), Dis(x_p))]   (L_GAN)
  with ``l`` the GAN loss of :mod:`gen_jax.losses.gan`: real images against reconstructions and
  against samples. (Larsen et al. weight the real term as much as both fake terms together; the
  mean of two pairs is that balance for every loss of gen_jax.losses.gan, with half their weight
  on each fake term.)
* ``gan_dec``    = 1/2 [gen_loss(l, Dis(x~)) + gen_loss(l, Dis(x_p))]

and each network minimises its own part, so every error signal reaches only the networks it is
meant for (Larsen et al., Algorithm 1):

=======  =======================================================  =============================
network  minimises (mean over the batch)                           why
=======  =======================================================  =============================
Enc      kl_weight * kl + feat_recon (+ pixel_weight * pixel_nll)  the VAE bound, in feature space
Dec      gamma * feat_recon + gan_dec (+ pixel_weight * pixel_nll)  content (gamma) vs. style
Dis      disc_loss                                                 not the reconstruction term
=======  =======================================================  =============================

``pixel_nll`` = -log Bernoulli(x | x~) (a pixel-space term Larsen et al. do not have; 0 by default)
is always logged. One call of :func:`train_step` is one Dis update, then one update of Enc and Dec
against the updated Dis (fresh noise for each); ``state.step`` counts these pairs. Enc's and Dec's
gradients come from one forward pass (``jax.vjp`` pulled back twice).

Train metrics (``train/<name>`` in the loop): ``loss`` = Enc's loss (kl + feat_recon with the
defaults: the feature-space negative ELBO), ``enc_loss``, ``dec_loss``, ``disc_loss``, ``kl``,
``feat_recon``, ``pixel_nll``, ``gan_dec``, ``d_real`` = mean Dis(x), ``d_fake`` = mean Dis(x_p) and
``d_recon`` = mean Dis(x~) from the Dis update (probabilities for the logit losses, raw outputs
for hinge), ``enc_grad_norm`` / ``dec_grad_norm`` / ``disc_grad_norm`` (global norm of each
network's gradient), ``fake_pixel_std`` (per-pixel std across the samples x_p, averaged over
pixels: it falls towards 0 when Dec collapses).

Usage in a research script::

    from functools import partial
    import jax, optax
    from gen_jax.models.autoencoders import MLPEncoder, MLPDecoder
    from gen_jax.models.gan import FeatureDiscriminator
    from gen_jax.steps import vaegan

    nets = dict(enc=MLPEncoder(hidden=(400,), out_dim=40),
                dec=MLPDecoder(hidden=(400,), image_shape=(28, 28, 1)),
                disc=FeatureDiscriminator(hidden=(512, 256)))
    adam = optax.adam(2e-4, b1=0.5)
    state = vaegan.init_state(jax.random.PRNGKey(0), **nets, latent_dim=20, tx_enc=adam,
                              tx_dec=adam, tx_disc=adam, image_shape=(28, 28, 1))
    step = jax.jit(partial(vaegan.train_step, **nets, latent_dim=20, gamma=0.1),
                   donate_argnums=0)
    state, metrics = step(state, {"image": x})          # x: (B, 28, 28, 1) in [0, 1]
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import precision
from gen_jax.applications import completion
from gen_jax.applications import masks as masks_lib
from gen_jax.losses import gan as gan_losses
from gen_jax.losses import densities
from gen_jax.models import autoencoders, layers
from gen_jax.models import gan as gan_models
from gen_jax.state import TrainState
from gen_jax.steps import Family, adversarial
from gen_jax.steps.adversarial import inference_params, outputs

ENC, DEC, DISC = "enc", "dec", adversarial.DISC
LOSSES = adversarial.LOGIT_AND_HINGE


def check(loss: str) -> None:
  adversarial.check_loss(loss, "VAE-GAN", LOSSES)


# ---------------------------------------------------------------------------------------------
# Pieces.


def posterior(enc: nn.Module, enc_params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(mean, logvar) of q(z|x), each (batch, latent_dim)."""
  mean, logvar = jnp.split(enc.apply({"params": enc_params}, x), 2, axis=-1)
  return mean, logvar


def decode_logits(dec: nn.Module, dec_params, z: jax.Array) -> jax.Array:
  """Dec's logits; ``jax.nn.sigmoid`` of them are the images in [0, 1]."""
  return dec.apply({"params": dec_params}, z)


def discriminate(disc: nn.Module, disc_params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Dis(x) raw outputs (batch,), features Dis_l(x) (batch, F))."""
  return disc.apply({"params": disc_params}, x, train=False)


def feature_recon(features_recon: jax.Array, features_real: jax.Array) -> jax.Array:
  """1/2 ||Dis_l(x~) - Dis_l(x)||^2 per example: -log N(Dis_l(x) | Dis_l(x~), I) + const."""
  diff = (features_recon - features_real).reshape(features_real.shape[0], -1)
  return 0.5 * jnp.sum(diff * diff, axis=-1)


def forward(enc_params, dec_params, disc_params, x: jax.Array, key: jax.Array, *, enc: nn.Module,
            dec: nn.Module, disc: nn.Module, loss: str = "non_saturating") -> dict[str, jax.Array]:
  """Every per-example term of the module docstring for images ``x`` and one draw each of
  z ~ q(z|x) and z_p ~ N(0, I) (``key``); also Dis's raw outputs and the generated images."""
  eps_key, prior_key = jax.random.split(key)
  mean, logvar = posterior(enc, enc_params, x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(eps_key, mean.shape, mean.dtype)
  z_p = jax.random.normal(prior_key, mean.shape, mean.dtype)
  logits = decode_logits(dec, dec_params, jnp.concatenate([z, z_p]))   # one pass for both
  logits_rec, logits_p = jnp.split(logits, 2)
  images = jax.nn.sigmoid(logits)
  raw, feats = discriminate(disc, disc_params, jnp.concatenate([x, images]))
  d_real, d_rec, d_fake = jnp.split(raw, 3)
  f_real, f_rec, _ = jnp.split(feats, 3)
  return {
      "kl": densities.gaussian_kl(mean, logvar),
      "feat_recon": feature_recon(f_rec, jax.lax.stop_gradient(f_real)),
      "pixel_nll": -densities.bernoulli_log_prob(logits_rec, x),
      "disc_loss": 0.5 * (gan_losses.disc_loss(loss, d_real, d_rec)
                          + gan_losses.disc_loss(loss, d_real, d_fake)),
      "gan_dec": 0.5 * (gan_losses.gen_loss(loss, d_rec) + gan_losses.gen_loss(loss, d_fake)),
      "d_real_raw": d_real, "d_recon_raw": d_rec, "d_fake_raw": d_fake,
      "recon": jax.nn.sigmoid(logits_rec), "samples": jax.nn.sigmoid(logits_p),
  }


# ---------------------------------------------------------------------------------------------
# State and steps.


def init_state(key: jax.Array, *, enc: nn.Module, dec: nn.Module, disc: nn.Module,
               latent_dim: int, tx_enc: optax.GradientTransformation,
               tx_dec: optax.GradientTransformation, tx_disc: optax.GradientTransformation,
               image_shape: Sequence[int], ema: bool = True) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the three networks and every later step."""
  enc_key, dec_key, disc_key, run_key = jax.random.split(key, 4)
  x = jnp.zeros((1, *image_shape), jnp.float32)
  enc_params = enc.init(enc_key, x)["params"]
  out_dim = jax.eval_shape(lambda p: enc.apply({"params": p}, x), enc_params).shape[-1]
  if out_dim != 2 * latent_dim:
    raise ValueError(f"the encoder gives {out_dim} outputs; a Gaussian q(z|x) of a {latent_dim}-d "
                     f"code needs {2 * latent_dim} (mean and log-variance).")
  z = jnp.zeros((1, latent_dim), jnp.float32)
  dec_params = dec.init(dec_key, z)["params"]
  made = jax.eval_shape(lambda p: dec.apply({"params": p}, z), dec_params).shape[1:]
  if tuple(made) != tuple(image_shape):
    raise ValueError(f"the decoder makes {tuple(made)} images but the data are "
                     f"{tuple(image_shape)}; change model.channels / the dataset to match.")
  disc_params = disc.init(disc_key, x, train=False)["params"]
  params = {ENC: enc_params, DEC: dec_params, DISC: disc_params}
  return TrainState.create(params=params, tx={ENC: tx_enc, DEC: tx_dec, DISC: tx_disc},
                           key=run_key, extra=adversarial.init_ema(params, (ENC, DEC), ema))


def disc_loss_fn(disc_params, enc_params, dec_params, x: jax.Array, key: jax.Array, *,
                 enc: nn.Module, dec: nn.Module, disc: nn.Module, loss: str = "non_saturating"):
  """Mean L_GAN as Dis minimises it (no gradient reaches Enc or Dec), and all terms."""
  enc_params, dec_params = jax.lax.stop_gradient((enc_params, dec_params))
  terms = forward(enc_params, dec_params, disc_params, x, key, enc=enc, dec=dec, disc=disc,
                  loss=loss)
  return terms["disc_loss"].mean(), terms


def enc_dec_losses(enc_params, dec_params, disc_params, x: jax.Array, key: jax.Array, *,
                   enc: nn.Module, dec: nn.Module, disc: nn.Module, loss: str = "non_saturating",
                   gamma: float, kl_weight: float = 1.0, pixel_weight: float = 0.0):
  """((Enc's mean loss, Dec's mean loss), terms): see the table of the module docstring."""
  terms = forward(enc_params, dec_params, jax.lax.stop_gradient(disc_params), x, key, enc=enc,
                  dec=dec, disc=disc, loss=loss)
  pixel = pixel_weight * terms["pixel_nll"] if pixel_weight else 0.0
  enc_loss = (kl_weight * terms["kl"] + terms["feat_recon"] + pixel).mean()
  dec_loss = (gamma * terms["feat_recon"] + terms["gan_dec"] + pixel).mean()
  return (enc_loss, dec_loss), terms


def enc_dec_grads(enc_params, dec_params, disc_params, x: jax.Array, key: jax.Array, **kwargs):
  """(Enc's loss, Dec's loss), (d Enc's loss / d Enc, d Dec's loss / d Dec), terms: one forward
  pass, pulled back once for each loss."""
  (enc_loss, dec_loss), pullback, terms = jax.vjp(
      lambda e, d: enc_dec_losses(e, d, disc_params, x, key, **kwargs), enc_params, dec_params,
      has_aux=True)
  one, zero = jnp.ones_like(enc_loss), jnp.zeros_like(enc_loss)
  enc_grads = pullback((one, zero))[0]
  dec_grads = pullback((zero, one))[1]
  return (enc_loss, dec_loss), (enc_grads, dec_grads), terms


def train_step(state: TrainState, batch: dict, *, enc: nn.Module, dec: nn.Module,
               disc: nn.Module, latent_dim: int, gamma: float, ema_decay: float,
               loss: str = "non_saturating", kl_weight: float = 1.0, pixel_weight: float = 0.0
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One Dis update, then one update of Enc and Dec against the updated Dis, then the EMA update
  (decay ``ema_decay`` after a warm-up: :func:`gen_jax.steps.adversarial.ema_decay_at`)."""
  del latent_dim   # fixed by the parameters; kept so every step function takes the same statics
  check(loss)
  x = batch["image"]
  nets = dict(enc=enc, dec=dec, disc=disc, loss=loss)
  (d_value, d_terms), d_grads = jax.value_and_grad(disc_loss_fn, has_aux=True)(
      state.params[DISC], state.params[ENC], state.params[DEC], x, state.step_key(0), **nets)
  state = state.apply_gradients({DISC: d_grads}, next_step=False)

  (enc_value, dec_value), (e_grads, g_grads), terms = enc_dec_grads(
      state.params[ENC], state.params[DEC], state.params[DISC], x, state.step_key(1), **nets,
      gamma=gamma, kl_weight=kl_weight, pixel_weight=pixel_weight)
  decay = adversarial.ema_decay_at(state.step, ema_decay)
  state = state.apply_gradients({ENC: e_grads, DEC: g_grads})
  state = adversarial.update_ema(state, decay)
  metrics = {
      "loss": enc_value, "enc_loss": enc_value, "dec_loss": dec_value, "disc_loss": d_value,
      **{k: terms[k].mean() for k in ("kl", "feat_recon", "pixel_nll", "gan_dec")},
      "d_real": outputs(loss, d_terms["d_real_raw"]).mean(),
      "d_fake": outputs(loss, d_terms["d_fake_raw"]).mean(),
      "d_recon": outputs(loss, d_terms["d_recon_raw"]).mean(),
      "enc_grad_norm": optax.tree.norm(e_grads), "dec_grad_norm": optax.tree.norm(g_grads),
      "disc_grad_norm": optax.tree.norm(d_grads),
      "fake_pixel_std": adversarial.pixel_std(terms["samples"]),
  }
  return state, metrics


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, enc: nn.Module, dec: nn.Module,
              disc: nn.Module, latent_dim: int, loss: str = "non_saturating"
              ) -> dict[str, jax.Array]:
  """Per-example ``kl``, ``feat_recon``, ``pixel_nll`` (nats), ``pixel_mse`` (of the posterior-mean
  reconstruction), ``d_real``, ``d_recon``, ``d_fake`` and ``disc_loss`` on test images (one
  posterior sample and one prior sample each; Enc and Dec of :func:`inference_params`)."""
  del latent_dim
  x = batch["image"]
  params = inference_params(state)
  terms = forward(params[ENC], params[DEC], params[DISC], x, key, enc=enc, dec=dec, disc=disc,
                  loss=loss)
  recon = reconstruct(state, batch, enc=enc, dec=dec)
  flat = lambda a: a.reshape(a.shape[0], -1)
  return {**{k: terms[k] for k in ("kl", "feat_recon", "pixel_nll", "disc_loss")},
          "pixel_mse": jnp.mean(flat(recon - x) ** 2, axis=-1),
          "d_real": outputs(loss, terms["d_real_raw"]),
          "d_recon": outputs(loss, terms["d_recon_raw"]),
          "d_fake": outputs(loss, terms["d_fake_raw"])}


def sample(state: TrainState, key: jax.Array, num: int, *, dec: nn.Module,
           latent_dim: int) -> jax.Array:
  """``num`` images Dec(z) in [0, 1], z ~ N(0, I) (Dec's EMA weights if kept)."""
  z = jax.random.normal(key, (num, latent_dim))
  return jax.nn.sigmoid(decode_logits(dec, inference_params(state)[DEC], z))


def encode(state: TrainState, images: jax.Array, *, enc: nn.Module) -> jax.Array:
  """The posterior mean of q(z|x) for images in [0, 1]: the learnt features (Enc's EMA weights if
  kept)."""
  return posterior(enc, inference_params(state)[ENC], images)[0]


def reconstruct(state: TrainState, batch: dict, *, enc: nn.Module, dec: nn.Module) -> jax.Array:
  """Dec(posterior mean) in [0, 1] (EMA weights if kept)."""
  return jax.nn.sigmoid(decode_logits(dec, inference_params(state)[DEC],
                                      encode(state, batch["image"], enc=enc)))


def decode(state: TrainState, z: jax.Array, *, dec: nn.Module) -> jax.Array:
  """Dec(z) in [0, 1] (Dec's EMA weights if kept)."""
  return jax.nn.sigmoid(decode_logits(dec, inference_params(state)[DEC], z))


def prior(state: TrainState, key: jax.Array, num: int, *, latent_dim: int) -> jax.Array:
  """z ~ N(0, I), (num, latent_dim) (the prior has no parameters: ``state`` unused)."""
  del state
  return jax.random.normal(key, (num, latent_dim))


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, enc: nn.Module,
            dec: nn.Module, disc: nn.Module, loss: str, num_steps: int, learning_rate: float,
            prior_weight: float, z_weight: float) -> jax.Array:
  """Latent optimisation (:func:`gen_jax.applications.completion.latent_optimisation`) from the
  posterior mean of the image with its missing pixels at the known ones' mean; the prior loss is
  Dec's GAN loss under Dis."""
  del key  # deterministic: the start is Enc's mean
  images = batch["image"]
  z0 = encode(state, masks_lib.known_mean_fill(images, mask), enc=enc)
  disc_params = state.params[DISC]
  return completion.latent_optimisation(
      z0, images, mask, generate=lambda z: decode(state, z, dec=dec), num_steps=num_steps,
      learning_rate=learning_rate, prior_weight=prior_weight, z_weight=z_weight,
      adversarial=lambda x, z: gan_losses.gen_loss(loss, discriminate(disc, disc_params, x)[0]))[0]


# ---------------------------------------------------------------------------------------------
# From a config.


def create_models(config: ml_collections.ConfigDict, image_shape: Sequence[int]):
  """(Enc, Dec, Dis) of ``config.model``: Enc and Dec are the VAE's encoder and decoder
  (``arch``, ``hidden``, ``channels``, ``latent_dim``); Dis is a
  :class:`gen_jax.models.gan.FeatureDiscriminator`."""
  validate(config)
  m = config.model
  impl = layers.resolve_conv_impl(m.conv_impl)
  enc = autoencoders.make_encoder(m.arch, hidden=m.hidden, channels=tuple(m.channels),
                                  out_dim=2 * m.latent_dim, conv_impl=impl)
  dec = autoencoders.make_decoder(m.arch, hidden=m.hidden, channels=tuple(m.channels),
                                  image_shape=image_shape, conv_impl=impl)
  disc = gan_models.FeatureDiscriminator(arch=m.disc_arch, hidden=tuple(m.disc_hidden),
                                         channels=tuple(m.disc_channels),
                                         feature_layer=m.feature_layer, conv_impl=impl)
  return enc, dec, disc


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for a choice of ``config.model`` this family cannot train."""
  check(config.model.loss)


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  """The VAE-GAN of ``config``: ``config.optimizer`` trains Enc and Dec (each its own state),
  ``config.disc_optimizer`` trains Dis."""
  enc, dec, disc = create_models(config, image_shape)    # after validate(config)
  tx = adversarial.optimizers(config, "VAE-GAN", (ENC, DEC), trains="Enc and Dec")
  m = config.model
  nets = dict(enc=enc, dec=dec, disc=disc, latent_dim=m.latent_dim, loss=m.loss)
  latent_opt, method = adversarial.latent_completion(config, "the encoder's mean")
  p = functools.partial
  return Family(
      init=p(init_state, enc=enc, dec=dec, disc=disc, latent_dim=m.latent_dim, tx_enc=tx[ENC],
             tx_dec=tx[DEC], tx_disc=tx[DISC], image_shape=tuple(image_shape),
             ema=m.ema_decay > 0),
      train_step=p(train_step, **nets | {k: precision.cast(nets[k], precision.compute_dtype(m.dtype))
                                         for k in ("enc", "dec", "disc")}, gamma=m.gamma, kl_weight=m.kl_weight,
                   pixel_weight=m.pixel_weight, ema_decay=m.ema_decay),
      eval_step=p(eval_step, **nets),
      sample=p(sample, dec=dec, latent_dim=m.latent_dim),
      reconstruct=p(reconstruct, enc=enc, dec=dec),
      encode=p(encode, enc=enc),
      decode=p(decode, dec=dec),
      prior=p(prior, latent_dim=m.latent_dim),
      inpaint=p(inpaint, enc=enc, dec=dec, disc=disc, loss=m.loss, **latent_opt),
      inpaint_method=method,
  )
