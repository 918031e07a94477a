"""Generative adversarial networks: MLP GAN, DCGAN, WGAN (weight clipping), WGAN-GP, hinge GAN,
and InfoGAN's categorical code on any of them.

One :class:`gen_jax.state.TrainState` holds both networks::

    params    = {"gen": G params, "disc": D params}
    opt_state = {"gen": ..., "disc": ...}            tx = {"gen": G optimizer, "disc": D optimizer}
    extra     = {"ema": {"gen": EMA of G params}                   (if ema_decay > 0)
                 "batch_stats": {"gen": ..., "disc": ...}}          (networks with batch norm only)

One call of :func:`train_step` is one generator step: ``n_critic`` discriminator updates (a
``lax.fori_loop``), then one generator update against the updated discriminator, then the EMA
update; ``state.step`` counts generator steps.

Real data for the critic steps: the loop's batch is split into ``n_critic`` disjoint minibatches
of ``batch_size / n_critic`` (example j to critic step j mod n_critic: no communication between
devices), so every critic update sees fresh real images (Arjovsky et al.'s and Gulrajani et al.'s
algorithm) and an epoch visits each training image once. The generator step and each critic step
draw ``batch_size / n_critic`` fresh noise vectors.

Batch norm: both networks normalize with the statistics of the batch they are given, in training
and in :func:`eval_step` (real and generated images are separate batches, as in Radford et al.;
under ``jit`` the statistics are global over a sharded batch, so 1 and 8 devices agree). Samples
come from the EMA generator with *standing statistics* (Brock et al. 2019): those of
``standing_num`` fixed noise vectors through the EMA weights, so a sample does not depend on the
others drawn with it. Running averages are kept in ``extra['batch_stats']`` but not used.

Data range: a 'tanh' generator works in [-1, 1] and real images are mapped there (2x - 1); a
'sigmoid' generator works in [0, 1], and its discriminator maps its inputs to [-1, 1] as its first
step (``centre``, see gen_jax/models/gan.py: without it the MLP GAN collapsed). :func:`sample`
always returns [0, 1].

Train metrics (the loop logs them as ``train/<name>``, means over the steps of a dispatch):
``loss`` = ``disc_loss`` (D's loss with the penalty; mean over the critic steps), ``gen_loss``,
``d_real`` / ``d_fake`` (mean D(x) and D(G(z)) as probabilities for the logit losses, mean critic
values for the critic losses), ``wasserstein`` (critic losses: mean f(x) - mean f(G(z)), the
critic's estimate of the Wasserstein-1 distance up to its Lipschitz constant), ``gp`` and
``gp_grad_norm`` (WGAN-GP), ``r1_grad_sq`` (R1), ``info_ce`` (InfoGAN), ``disc_grad_norm`` /
``gen_grad_norm`` (global norms of each network's gradients), ``fake_pixel_std`` (per-pixel
standard deviation across the generated batch, in [0, 1] units, averaged over pixels: it falls
towards 0 when the generator collapses to a few images).

InfoGAN (Chen et al. 2016; ``cat_dim`` > 0): the generator's input is z and the one-hot of a
uniform categorical code c (:func:`latent`); the discriminator has a Q head (``q_dim`` =
``cat_dim``, sown beside its output) that predicts c from a fake; D's and G's losses both add
``info_weight`` times Q's cross-entropy on the fakes (Q learns to read the code, G to make it
readable). No labels are used. A continuous generator must pass through in-between images to get
from one digit to the next; a discrete code lets it jump, and the digits it draws are sharper
(results/NOTES.md#dcgan_mnist has the measurements).

Usage in a research script (``configs/gan_common.py`` holds the values a run uses)::

    from functools import partial
    import jax, optax
    from gen_jax.models import gan as gan_models
    from gen_jax.steps import gan

    gen = gan_models.DCGANGenerator(channels=(128, 64), image_shape=(28, 28, 1))
    disc = gan_models.DCGANDiscriminator(channels=(64, 128))
    adam = optax.adam(2e-4, b1=0.5)
    state = gan.init_state(jax.random.PRNGKey(0), gen=gen, disc=disc, z_dim=100, tx_gen=adam,
                           tx_disc=adam)
    step = jax.jit(partial(gan.train_step, gen=gen, disc=disc, z_dim=100, loss="non_saturating",
                           output="tanh", ema_decay=0.999), donate_argnums=0)
    state, metrics = step(state, {"image": x})        # x: (B, 28, 28, 1) in [0, 1]
    images = gan.sample(state, jax.random.PRNGKey(1), 64, gen=gen, z_dim=100, output="tanh",
                        standing_num=512)
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
from gen_jax.losses import gan as gan_losses
from gen_jax.models import gan as gan_models
from gen_jax.models import layers
from gen_jax.state import TrainState
from gen_jax.steps import Family, adversarial
from gen_jax.steps.adversarial import (apply, apply_q, batch_stats, critic_minibatches, outputs,
                                       to_model_range, to_unit_range, with_batch_stats)

GEN, DISC = "gen", adversarial.DISC
_STANDING_SALT = 0xFFFFFFFF   # fold_in data of the standing-statistics noise; no step reaches it


# ---------------------------------------------------------------------------------------------
# State.


def latent(key: jax.Array, num: int, z_dim: int, cat_dim: int = 0,
           codes: Optional[jax.Array] = None) -> tuple[jax.Array, Optional[jax.Array]]:
  """(generator input, categorical code or None) for ``num`` samples.

  The input is z ~ N(0, I) of ``z_dim``; with ``cat_dim`` > 0 (InfoGAN, Chen et al. 2016), the
  one-hot of a code c ~ Uniform{0, ..., cat_dim - 1} follows it, (num, z_dim + cat_dim). ``codes``
  (num,) fixes c instead, e.g. to draw each category in turn.
  """
  if not cat_dim:
    if codes is not None:
      raise ValueError("codes need a categorical code: set model.cat_dim > 0 (InfoGAN).")
    return jax.random.normal(key, (num, z_dim)), None
  z_key, c_key = jax.random.split(key)
  if codes is None:
    codes = jax.random.randint(c_key, (num,), 0, cat_dim)
  z = jax.random.normal(z_key, (num, z_dim))
  return jnp.concatenate([z, jax.nn.one_hot(codes, cat_dim, dtype=z.dtype)], axis=-1), codes


def init_state(key: jax.Array, *, gen: nn.Module, disc: nn.Module, z_dim: int,
               tx_gen: optax.GradientTransformation, tx_disc: optax.GradientTransformation,
               image_shape: Optional[Sequence[int]] = None, ema: bool = True,
               cat_dim: int = 0) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds both networks and every later step."""
  gen_key, disc_key, run_key = jax.random.split(key, 3)
  g_vars = gen.init(gen_key, jnp.zeros((1, z_dim + cat_dim), jnp.float32), train=True)
  x = gen.apply(g_vars, jnp.zeros((1, z_dim + cat_dim), jnp.float32), train=False)
  if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
    raise ValueError(f"the generator makes {tuple(x.shape[1:])} images but the data are "
                     f"{tuple(image_shape)}; set model.gen_channels / the dataset to match.")
  d_vars = disc.init(disc_key, x, train=True)
  params = {GEN: g_vars["params"], DISC: d_vars["params"]}
  extra = adversarial.init_ema(params, (GEN,), ema)
  stats = {name: v["batch_stats"] for name, v in ((GEN, g_vars), (DISC, d_vars))
           if "batch_stats" in v}
  if stats:
    extra["batch_stats"] = stats
  return TrainState.create(params=params, tx={GEN: tx_gen, DISC: tx_disc}, key=run_key, extra=extra)


# ---------------------------------------------------------------------------------------------
# Steps.


def disc_loss_fn(disc_params, disc_stats, real: jax.Array, fake: jax.Array, eps: jax.Array, *,
                 disc: nn.Module, loss: str, gp_weight: Optional[float] = None,
                 label_smoothing: float = 0.0, r1_weight: float = 0.0, r1_every: int = 1,
                 codes: Optional[jax.Array] = None, info_weight: Optional[float] = None,
                 labels: Optional[jax.Array] = None, class_weight: float = 0.0):
  """Mean discriminator loss (with the gradient penalty for 'wgan_gp') and its parts.

  ``codes``: the categorical codes the fakes were drawn with (InfoGAN); D's Q head learns them,
  ``info_weight`` times :func:`gen_jax.losses.gan.info_ce` is added to the loss. ``labels`` of the
  real images with ``class_weight`` > 0 (ACGAN, Odena et al. 2017): Q also learns the real
  images' classes, ``class_weight`` times its cross-entropy on them (``class_ce``), so that the
  code becomes the class.

  ``r1_weight`` = gamma > 0 adds R1, gamma / 2 * r1_every * mean ||grad_x D(x)||^2 over the real
  images; a lazy caller that adds it on one step in ``r1_every`` passes that interval, so that the
  penalty per step is the same on average (Karras et al. 2020). ``r1_grad_sq`` in the metrics is
  r1_every times the mean squared norm, so its mean over steps estimates the norm on every step.
  """
  stats_in = disc_stats
  d_real, q_real, disc_stats = apply_q(disc, disc_params, disc_stats, real, bool(class_weight))
  d_fake, q_logits, disc_stats = apply_q(disc, disc_params, disc_stats, fake, codes is not None)
  info = 0.0 if codes is None else (adversarial.needed(info_weight, "info_weight", "with codes")
                                    * gan_losses.info_ce(q_logits, codes))
  value = gan_losses.disc_loss(loss, d_real, d_fake, label_smoothing).mean() + info
  aux = {"d_real_raw": d_real.mean(), "d_fake_raw": d_fake.mean(),
         "d_real": outputs(loss, d_real).mean(), "d_fake": outputs(loss, d_fake).mean()}
  if class_weight:
    aux["class_ce"] = gan_losses.info_ce(q_real, labels)
    value = value + class_weight * aux["class_ce"]
  critic = lambda v: apply(disc, disc_params, stats_in, v)[0]
  if loss == "wgan_gp":
    adversarial.check_per_example(disc, "the gradient penalty")
    penalty, norms = gan_losses.gradient_penalty(critic, real, fake, eps)
    weight = adversarial.needed(gp_weight, "gp_weight", "for loss 'wgan_gp'")
    value = value + weight * penalty.mean()
    aux |= {"gp": penalty.mean(), "gp_grad_norm": norms.mean()}
  if r1_weight:
    adversarial.check_per_example(disc, "the R1 penalty (model.r1_weight)")
    sq = r1_every * gan_losses.r1_penalty(critic, real).mean()
    value = value + 0.5 * r1_weight * sq
    aux["r1_grad_sq"] = sq
  return value, (aux, disc_stats)


def gen_loss_fn(gen_params, gen_stats, disc_params, disc_stats, z: jax.Array, *, gen: nn.Module,
                disc: nn.Module, loss: str, top_k: Optional[jax.Array] = None,
                codes: Optional[jax.Array] = None, info_weight: Optional[float] = None):
  """Mean generator loss; with ``top_k`` (a fraction), over the fakes D scores highest only; with
  ``codes`` (InfoGAN), plus ``info_weight`` times :func:`gen_jax.losses.gan.info_ce` of D's Q
  head on the fakes.
  Aux: (fakes, G's batch stats, {'info_ce': ...} or {})."""
  fake, gen_stats = apply(gen, gen_params, gen_stats, z)
  # D's running stats: its own steps only.
  d_fake, q_logits, _ = apply_q(disc, disc_params, disc_stats, fake, codes is not None)
  info = {} if codes is None else {"info_ce": gan_losses.info_ce(q_logits, codes)}
  per_example = gan_losses.gen_loss(loss, d_fake)
  value = per_example.mean() if top_k is None else gan_losses.top_k_mean(per_example, d_fake, top_k)
  if info:
    value = value + adversarial.needed(info_weight, "info_weight", "with codes") * info["info_ce"]
  return value, (fake, gen_stats, info)


def train_step(state: TrainState, batch: dict, *, gen: nn.Module, disc: nn.Module, z_dim: int,
               loss: str, output: str, ema_decay: float, n_critic: int = 1,
               gp_weight: Optional[float] = None, clip: float = 0.0, label_smoothing: float = 0.0,
               top_k: float = 1.0, top_k_decay: Optional[float] = None,
               top_k_decay_steps: Optional[int] = None, r1_weight: float = 0.0, r1_every: int = 1,
               cat_dim: int = 0, info_weight: Optional[float] = None,
               class_weight: float = 0.0) -> tuple[TrainState, dict]:
  """``n_critic`` discriminator updates, one generator update, one EMA update; one step.

  ``label_smoothing`` > 0: D's target for real images is 1 - label_smoothing (one-sided, logit
  losses). ``top_k`` < 1: the generator's loss is the mean over the fraction
  max(top_k, top_k_decay ** (step / top_k_decay_steps)) of its fakes that D scores highest
  (Sinha et al. 2020); the fraction is logged as ``top_k_fraction``. ``r1_weight`` > 0: the R1
  penalty of :func:`disc_loss_fn` on the real images, on the steps that are multiples of
  ``r1_every`` only (lazy regularization; a ``lax.cond``, so the other steps skip its cost).
  ``cat_dim`` > 0: InfoGAN; the noise carries a categorical code (:func:`latent`) that D's Q head
  (``q_dim`` = ``cat_dim``) learns to read off the fakes in D's steps and G learns to make
  readable in its step, each with weight ``info_weight``; ``info_ce`` is logged.
  ``class_weight`` > 0: ACGAN (Odena et al. 2017), the code is the class: Q also learns the real
  images' ``batch["label"]`` (weight ``class_weight``; ``class_ce`` is logged), and a sample of
  class y is drawn with code y (``sample(..., labels=y)``).
  """
  adversarial.check_loss(loss, "GAN")
  real_all = critic_minibatches(to_model_range(batch["image"], output), n_critic)
  m = real_all.shape[0]
  labels_all = None
  if class_weight:
    if "label" not in batch:
      raise ValueError("model.class_weight > 0 (ACGAN) trains on labels, and the batches have none: "
                       "use a labelled dataset.")
    labels_all = critic_minibatches(batch["label"], n_critic)

  names = ["d_real_raw", "d_fake_raw", "d_real", "d_fake", "disc_grad_norm", "disc_loss"]
  if loss == "wgan_gp":
    names += ["gp", "gp_grad_norm"]
  if r1_weight:
    names += ["r1_grad_sq"]
  if class_weight:
    names += ["class_ce"]
  sums = {k: jnp.zeros((), jnp.float32) for k in names}

  def critic_step(i, carry):
    state, sums = carry
    z_key, eps_key = jax.random.split(jax.random.fold_in(state.step_key(0), i))
    real = jax.lax.dynamic_index_in_dim(real_all, i, axis=1, keepdims=False)
    labels = (None if labels_all is None else
              jax.lax.dynamic_index_in_dim(labels_all, i, axis=1, keepdims=False))
    g_in, codes = latent(z_key, m, z_dim, cat_dim)
    fake, _ = apply(gen, state.params[GEN], batch_stats(state, GEN), g_in)
    disc_grads = functools.partial(
        jax.value_and_grad(disc_loss_fn, has_aux=True), state.params[DISC],
        batch_stats(state, DISC),
        real, jax.lax.stop_gradient(fake), jax.random.uniform(eps_key, (m,)), disc=disc,
        loss=loss, gp_weight=gp_weight, label_smoothing=label_smoothing, codes=codes,
        info_weight=info_weight, labels=labels, class_weight=class_weight)
    if r1_weight and r1_every > 1:
      def without_r1():
        (value, (aux, disc_stats)), grads = disc_grads()
        return (value, (aux | {"r1_grad_sq": jnp.zeros((), jnp.float32)}, disc_stats)), grads
      (value, (aux, disc_stats)), grads = jax.lax.cond(
          state.step % r1_every == 0,
          functools.partial(disc_grads, r1_weight=r1_weight, r1_every=r1_every), without_r1)
    else:
      (value, (aux, disc_stats)), grads = disc_grads(r1_weight=r1_weight)
    state = with_batch_stats(state.apply_gradients({DISC: grads}, next_step=False), DISC,
                             disc_stats)
    if clip:
      clipped = gan_losses.clip_weights(state.params[DISC], clip)
      state = state.replace(params={**state.params, DISC: clipped})
    aux = aux | {"disc_grad_norm": optax.tree.norm(grads), "disc_loss": value}
    return state, {k: sums[k] + aux[k] for k in sums}

  state, sums = jax.lax.fori_loop(0, n_critic, critic_step, (state, sums))
  metrics = {k: v / n_critic for k, v in sums.items()}

  z, codes = latent(state.step_key(1), m, z_dim, cat_dim)
  fraction = None
  if top_k < 1.0:
    fraction = gan_losses.top_k_fraction(
        state.step, top_k, adversarial.needed(top_k_decay, "top_k_decay", "with top_k < 1"),
        adversarial.needed(top_k_decay_steps, "top_k_decay_steps", "with top_k < 1"))
    metrics["top_k_fraction"] = fraction
  (g_value, (fake, gen_stats, info)), g_grads = jax.value_and_grad(gen_loss_fn, has_aux=True)(
      state.params[GEN], batch_stats(state, GEN), state.params[DISC], batch_stats(state, DISC), z,
      gen=gen, disc=disc, loss=loss, top_k=fraction, codes=codes, info_weight=info_weight)
  metrics |= info
  decay = adversarial.ema_decay_at(state.step, ema_decay)
  state = with_batch_stats(state.apply_gradients({GEN: g_grads}), GEN, gen_stats)
  state = adversarial.update_ema(state, decay)

  unit = to_unit_range(fake, output)
  metrics |= {"gen_loss": g_value, "gen_grad_norm": optax.tree.norm(g_grads),
              "fake_pixel_std": adversarial.pixel_std(unit)}
  metrics["loss"] = metrics["disc_loss"]
  if loss in gan_losses.CRITIC_LOSSES:
    metrics["wasserstein"] = metrics["d_real_raw"] - metrics["d_fake_raw"]
  del metrics["d_real_raw"], metrics["d_fake_raw"]
  return state, metrics


def generate(state: TrainState, z: jax.Array, *, gen: nn.Module, standing_num: int,
             ema: bool = True, cat_dim: int = 0) -> jax.Array:
  """G(z) in the generator's output range, from the EMA weights if the state has them.

  With batch norm, the generator normalizes with standing statistics: those of ``standing_num``
  fixed noise vectors (a function of the run's key only) through the same weights. ``z`` is the
  input of :func:`latent`, with ``cat_dim`` one-hot code columns at its end.
  """
  return generator(state, gen=gen, standing_num=standing_num, z_dim=z.shape[-1] - cat_dim,
                   ema=ema, cat_dim=cat_dim)(z)


def generator(state: TrainState, *, gen: nn.Module, standing_num: int, z_dim: int,
              ema: bool = True, cat_dim: int = 0):
  """The function z -> :func:`generate` (state, z), its standing statistics computed once (for a
  loop that calls G many times, such as latent optimisation)."""
  params = (adversarial.inference_params(state) if ema else state.params)[GEN]
  stats = batch_stats(state, GEN)
  if stats is None:
    return lambda z: apply(gen, params, None, z, train=False)[0]
  z_standing, _ = latent(jax.random.fold_in(state.key, _STANDING_SALT), standing_num, z_dim,
                         cat_dim)
  # momentum 0: the "running averages" after one batch are exactly that batch's statistics.
  _, standing = apply(gen.clone(bn_momentum=0.0), params, stats, z_standing, train=True)
  return lambda z: apply(gen, params, standing, z, train=False)[0]


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, gen: nn.Module, disc: nn.Module,
              z_dim: int, loss: str, output: str, standing_num: int, classifier=None,
              cat_dim: int = 0) -> dict[str, jax.Array]:
  """Per-example metrics on test images and as many samples of the EMA generator.

  ``d_real`` = D(x) on test images, ``d_fake`` = D(G(z)) (probabilities for logit losses, critic
  values otherwise), ``disc_loss`` = D's loss on the pair (x_i, G(z_i)) (without penalty); with a
  critic loss, ``wasserstein`` = f(x_i) - f(G(z_i)), whose mean is the critic's estimate of the
  distance between the test set and the samples. With batch norm in D, the test batch and the
  generated batch are normalized with their own statistics, as in training. With a ``classifier``
  (a :class:`gen_jax.metrics.networks.FeatureNetwork`), the scores of
  :func:`gen_jax.steps.adversarial.classifier_scores` on the generated batch.
  """
  real = to_model_range(batch["image"], output)
  z, _ = latent(key, real.shape[0], z_dim, cat_dim)
  fake = generate(state, z, gen=gen, standing_num=standing_num, cat_dim=cat_dim)
  d_real, _ = apply(disc, state.params[DISC], batch_stats(state, DISC), real)
  d_fake, _ = apply(disc, state.params[DISC], batch_stats(state, DISC), fake)
  out = {"d_real": outputs(loss, d_real), "d_fake": outputs(loss, d_fake),
         "disc_loss": gan_losses.disc_loss(loss, d_real, d_fake)}
  if loss in gan_losses.CRITIC_LOSSES:
    out["wasserstein"] = d_real - d_fake
  if classifier is not None:
    out |= adversarial.classifier_scores(classifier.apply(to_unit_range(fake, output))[1])
  return out


def sample(state: TrainState, key: jax.Array, num: int, labels: Optional[jax.Array] = None, *,
           gen: nn.Module, z_dim: int, output: str, standing_num: int, cat_dim: int = 0,
           codes: Optional[jax.Array] = None) -> jax.Array:
  """``num`` images in [0, 1] from the EMA generator, z ~ N(0, I) (and, with ``cat_dim``, a
  uniform categorical code, or the given ``codes``: see :func:`latent`). ``labels`` (ACGAN, whose
  code is the class) are the codes."""
  z, _ = latent(key, num, z_dim, cat_dim, codes if labels is None else labels)
  return to_unit_range(generate(state, z, gen=gen, standing_num=standing_num, cat_dim=cat_dim),
                       output)


def decode(state: TrainState, z: jax.Array, *, gen: nn.Module, output: str, standing_num: int,
           cat_dim: int = 0) -> jax.Array:
  """G(z) in [0, 1] (EMA weights if kept), ``z`` as :func:`latent` makes it."""
  return to_unit_range(generate(state, z, gen=gen, standing_num=standing_num, cat_dim=cat_dim),
                       output)


def discriminator_features(state: TrainState, images: jax.Array, *, disc: nn.Module,
                           output: str) -> jax.Array:
  """The discriminator's last hidden layer on images in [0, 1], (batch, F) -- Radford et al.'s
  (2016) use of a GAN's D as a feature extractor. Batch norm uses each batch's own statistics, as
  D normalised the real batches it was trained on (call it with batches of hundreds)."""
  variables, mutable = {"params": state.params[DISC]}, ["intermediates"]
  stats = batch_stats(state, DISC)
  if stats is not None:
    variables, mutable = variables | {"batch_stats": stats}, mutable + ["batch_stats"]
  _, updates = disc.apply(variables, to_model_range(images, output), train=True, mutable=mutable)
  h = updates["intermediates"]["features"][0]
  return h.reshape(h.shape[0], -1)


def prior(state: TrainState, key: jax.Array, num: int, *, z_dim: int,
          cat_dim: int = 0) -> jax.Array:
  """The generator's inputs for ``num`` samples (:func:`latent`; ``state`` unused)."""
  del state
  return latent(key, num, z_dim, cat_dim)[0]


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, gen: nn.Module,
            disc: nn.Module, z_dim: int, loss: str, output: str, standing_num: int, num_steps: int,
            learning_rate: float, prior_weight: float, z_weight: float, restarts: int = 1,
            cat_dim: int = 0) -> jax.Array:
  """Latent optimisation (:func:`gen_jax.applications.completion.latent_optimisation`) from
  ``restarts`` prior draws per image: the z whose G(z) matches the known pixels, with
  ``prior_weight`` times the generator's loss under D (Yeh et al.'s prior loss) and ``z_weight``
  times ||z||^2 / 2."""
  g = generator(state, gen=gen, standing_num=standing_num, z_dim=z_dim, cat_dim=cat_dim)

  def adversarial_loss(x, z):
    del z
    d, _ = apply(disc, state.params[DISC], batch_stats(state, DISC), to_model_range(x, output))
    return gan_losses.gen_loss(loss, d)

  num = batch["image"].shape[0]
  z0 = prior(state, key, restarts * num, z_dim=z_dim, cat_dim=cat_dim).reshape(restarts, num, -1)
  return completion.latent_optimisation(
      z0, batch["image"], mask, generate=lambda z: to_unit_range(g(z), output),
      num_steps=num_steps, learning_rate=learning_rate, prior_weight=prior_weight, adversarial=adversarial_loss,
      z_weight=z_weight)[0]


# ---------------------------------------------------------------------------------------------
# From a config.


def create_models(config: ml_collections.ConfigDict,
                  image_shape: Sequence[int]) -> tuple[nn.Module, nn.Module]:
  m = config.model
  gen = gan_models.make_generator(
      m.arch, image_shape=image_shape, hidden=m.gen_hidden, channels=m.gen_channels,
      output=m.gen_output, norm=m.gen_norm, bn_momentum=m.bn_momentum, dense=m.gen_dense,
      conv_impl=layers.resolve_conv_impl(m.conv_impl))
  disc = gan_models.make_discriminator(
      m.arch, hidden=m.disc_hidden, channels=m.disc_channels, norm=m.disc_norm,
      bn_momentum=m.bn_momentum, dense=m.disc_dense, centre=m.gen_output == "sigmoid",
      q_dim=m.cat_dim, conv_impl=layers.resolve_conv_impl(m.conv_impl))
  return gen, disc


def validate(config: ml_collections.ConfigDict) -> None:
  """A clear error for every choice of ``config.model`` this family cannot train."""
  m = config.model
  adversarial.check_loss(m.loss, "GAN")
  if m.n_critic < 1 or config.batch_size % m.n_critic:
    raise ValueError(f"batch_size={config.batch_size} must be a positive multiple of "
                     f"model.n_critic={m.n_critic}: the n_critic discriminator steps each take "
                     "batch_size / n_critic real images.")
  if m.r1_weight < 0 or m.r1_every < 1:
    raise ValueError(f"model.r1_weight={m.r1_weight} must be >= 0 (0: no R1 penalty) "
                     f"and model.r1_every={m.r1_every} a positive number of steps.")
  for what, on in (("the gradient penalty (model.loss='wgan_gp')", m.loss == "wgan_gp"),
                   ("the R1 penalty (model.r1_weight > 0)", m.r1_weight > 0)):
    if on and m.arch == "dcgan" and m.disc_norm == "batch":
      raise ValueError(f"{what} needs a critic without batch norm: set model.disc_norm='layer' "
                       "(Gulrajani et al.), 'spectral' or 'none'.")
  if m.clip and m.loss != "wasserstein":
    raise ValueError(f"model.clip={m.clip} (weight clipping) belongs to model.loss='wasserstein'; "
                     f"set model.clip=0 for loss {m.loss!r}.")
  gan_losses.check_label_smoothing(m.loss, m.label_smoothing)
  if not 0.0 < m.gen_top_k <= 1.0 or m.gen_top_k_decay_steps < 1:
    raise ValueError(f"model.gen_top_k={m.gen_top_k} must be a fraction in (0, 1] "
                     f"(1: every fake) and model.gen_top_k_decay_steps="
                     f"{m.gen_top_k_decay_steps} a positive number of steps.")
  if m.cat_dim < 0 or m.cat_dim == 1:
    raise ValueError(f"model.cat_dim={m.cat_dim} is the number of categories of InfoGAN's code: "
                     "set it to 0 (no code) or at least 2 (10 for the digits of MNIST).")
  if m.class_weight < 0 or (m.class_weight and m.cat_dim != 10):
    raise ValueError(f"model.class_weight={m.class_weight} (ACGAN: the code is the class) needs "
                     f"model.cat_dim equal to the number of classes (10), not {m.cat_dim}; "
                     "class_weight=0 is the unconditional GAN.")


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  """The GAN family of ``config``: ``config.optimizer`` trains the generator and
  ``config.disc_optimizer`` (same fields) the discriminator."""
  m = config.model
  validate(config)
  tx = adversarial.optimizers(config, "GAN", (GEN,), trains="the generator")
  gen, disc = create_models(config, image_shape)
  classifier = adversarial.load_classifier(config, image_shape)
  shared = dict(z_dim=m.z_dim, cat_dim=m.cat_dim)
  dtype = precision.compute_dtype(m.dtype)
  draw = dict(gen=gen, output=m.gen_output, standing_num=m.standing_stats_num, **shared)
  latent_opt, method = adversarial.latent_completion(config, "prior draw", restarts=True)
  p = functools.partial
  return Family(
      init=p(init_state, gen=gen, disc=disc, tx_gen=tx[GEN], tx_disc=tx[DISC],
             image_shape=tuple(image_shape), ema=m.ema_decay > 0, **shared),
      train_step=p(train_step, gen=precision.cast(gen, dtype), disc=precision.cast(disc, dtype),
                   loss=m.loss, n_critic=m.n_critic,
                   gp_weight=m.gp_weight, clip=m.clip, ema_decay=m.ema_decay, output=m.gen_output,
                   label_smoothing=m.label_smoothing, top_k=m.gen_top_k,
                   top_k_decay=m.gen_top_k_decay, top_k_decay_steps=m.gen_top_k_decay_steps,
                   r1_weight=m.r1_weight, r1_every=m.r1_every, info_weight=m.info_weight,
                   class_weight=m.class_weight, **shared),
      eval_step=p(eval_step, disc=disc, loss=m.loss, classifier=classifier, **draw),
      sample=p(sample, **draw),
      decode=p(decode, **{k: v for k, v in draw.items() if k != "z_dim"}),
      prior=p(prior, **shared),
      discriminator_features=p(discriminator_features, disc=disc, output=m.gen_output),
      inpaint=p(inpaint, disc=disc, loss=m.loss, **draw, **latent_opt),
      inpaint_method=method,
      num_classes=m.cat_dim if m.class_weight else 0,
      final_metrics=None if classifier is None else p(
          adversarial.final_sample_scores, sample=p(sample, **draw), classifier=classifier,
          num_samples=config.eval.is_num_samples, seed=config.eval.is_seed, cat_dim=m.cat_dim),
  )
