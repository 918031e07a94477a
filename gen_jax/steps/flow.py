"""Normalizing flow (Glow, Kingma & Dhariwal 2018) on dequantized grey-level images.

The data loop gives images x in [0, 1] (uint8 / 255, ``dataset.binarize = 'none'``). With
x_int = round(255 x) in {0..255}^D, uniform dequantization y = (x_int + u) / 256, u ~ U[0, 1)^D,
turns the discrete data into a density on [0, 1]^D; RealNVP's logit transform
s = logit(alpha + (1 - 2 alpha) y) (alpha = 0.05) maps it to R^D, and the flow
(:class:`gen_jax.models.glow.Glow`) maps s to codes eps with a N(0, I) prior. Then

    log p(y) = log N(eps; 0, I) + log |det d eps / ds| + log |det ds / dy|,
    log P(x_int) = log E_u[p(y)] - D log 256 >= E_u[log p(y)] - D log 256,

and the training loss is the mean over the batch of minus that bound with one draw of u, in nats
per image (``metrics['bpd']``: the same in bits per dimension, nats / (D ln 2)).
``log_likelihood(..., k)`` combines k draws of u by logsumexp - log k, an importance-weighted
bound with the uniform proposal that tightens with k (k = 1: the usual dequantized bound).

Metrics: ``loss`` = ``nll`` (nats per image, the bound above) and ``bpd``. Samples and decoded
codes are quantized back to the 256 grey levels (the level whose cell [x_int, x_int + 1) / 256
holds y), so they are images of the data's kind; encoding uses the cell midpoints (u = 0.5), so
``reconstruct`` gives the input back exactly (the flow's float error is far below half a cell).

Usage in a research script::

    from functools import partial
    import jax, optax
    from gen_jax.models.glow import Glow
    from gen_jax.steps import flow

    model = Glow(image_shape=(28, 28, 1), levels=2, steps=12, hidden=64, out_kernel=1)
    state = flow.init_state(jax.random.key_data(jax.random.key(0)), model=model,
                            tx=optax.adam(1e-3), image_shape=(28, 28, 1))
    step = jax.jit(partial(flow.train_step, model=model, alpha=0.05, init_actnorm=True),
                   donate_argnums=0)
    state, metrics = step(state, {"image": x})   # x: (B, 28, 28, 1), grey levels in [0, 1]
    bpd = flow.eval_step(state, {"image": x}, key, model=model, alpha=0.05)["bpd"]
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_jax import optim, precision
from gen_jax.applications import completion
from gen_jax.applications import masks as masks_lib
from gen_jax.losses import densities
from gen_jax.models import glow
from gen_jax.models.glow import Glow
from gen_jax.state import TrainState
from gen_jax.steps import Family

NET = "flow"
LEVELS = 256          # grey levels of the data
LOG_LEVELS = math.log(LEVELS)


def init_state(key: jax.Array, *, model: Glow, tx: optax.GradientTransformation,
               image_shape: Sequence[int]) -> TrainState:
  """A fresh state; ``key`` (raw uint32 key) seeds the parameters and every later step. The
  actnorms start at the identity: ``init`` sees no data; ``train_step(..., init_actnorm=True)``
  sets them from the first training batch (:func:`data_init`)."""
  return TrainState.for_module(key, name=NET, module=model, tx=tx, image_shape=image_shape)


def dequantize(x: jax.Array, u: jax.Array | float) -> jax.Array:
  """y = (round(255 x) + u) / 256: images in [0, 1] to points of their grey level's cell."""
  return (jnp.round(x * (LEVELS - 1)) + u) / LEVELS


def quantize(y: jax.Array) -> jax.Array:
  """The grey level whose cell [x_int, x_int + 1) / 256 holds y, as x_int / 255 in [0, 1]."""
  return jnp.clip(jnp.floor(y * LEVELS), 0, LEVELS - 1) / (LEVELS - 1)


def log_density(params, y: jax.Array, *, model: Glow, alpha: float) -> jax.Array:
  """Per-example log p(y) in nats of the continuous model on [0, 1]^D."""
  s, log_det_logit = glow.logit_transform(y, alpha)
  eps, log_det = model.apply({"params": params}, s)
  return densities.standard_normal_log_prob(eps) + log_det + log_det_logit


def discrete_nll(params, x: jax.Array, key: jax.Array, *, model: Glow, alpha: float) -> jax.Array:
  """Per-example -log P(x_int) upper bound in nats, one uniform dequantization draw:
  -log p(y) + D log 256."""
  y = dequantize(x, jax.random.uniform(key, x.shape, x.dtype))
  num_dims = math.prod(x.shape[1:])
  return -log_density(params, y, model=model, alpha=alpha) + num_dims * LOG_LEVELS


def _bpd(nll: jax.Array, image_shape: Sequence[int]) -> jax.Array:
  return densities.nats_to_bits_per_dim(nll, math.prod(image_shape))


def data_init(state: TrainState, batch: dict, key: jax.Array, *, model: Glow,
              alpha: float) -> TrainState:
  """``state`` with every actnorm set from the dequantized ``batch`` (Glow's data-dependent
  initialisation, :mod:`gen_jax.models.glow`); the other parameters and the optimizer untouched."""
  s, _ = glow.logit_transform(dequantize(batch["image"], jax.random.uniform(
      key, batch["image"].shape, batch["image"].dtype)), alpha)
  _, updated = model.apply({"params": state.params[NET]}, s, data_init=True, mutable=["params"])
  return state.replace(params={NET: updated["params"]})


def train_step(state: TrainState, batch: dict, *, model: Glow, alpha: float,
               init_actnorm: bool = False) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on the mean dequantized NLL bound (nats per image). With
  ``init_actnorm``, the step-0 call first runs :func:`data_init` on its batch."""
  x = batch["image"]
  if init_actnorm:
    state = jax.lax.cond(
        state.step == 0,
        lambda st: data_init(st, batch, st.step_key(1), model=model, alpha=alpha),
        lambda st: st, state)
  loss, grads = jax.value_and_grad(
      lambda p: discrete_nll(p, x, state.step_key(), model=model, alpha=alpha).mean())(
          state.params[NET])
  metrics = {"loss": loss, "nll": loss, "bpd": _bpd(loss, x.shape[1:])}
  return state.apply_gradients({NET: grads}), metrics


def eval_step(state: TrainState, batch: dict, key: jax.Array, *, model: Glow,
              alpha: float) -> dict[str, jax.Array]:
  """Per-example ``nll`` (nats, one dequantization draw) and ``bpd``."""
  x = batch["image"]
  nll = discrete_nll(state.params[NET], x, key, model=model, alpha=alpha)
  return {"nll": nll, "bpd": _bpd(nll, x.shape[1:])}


def log_likelihood(state: TrainState, batch: dict, key: jax.Array, *, model: Glow, alpha: float,
                   k: int) -> jax.Array:
  """Per-example log P(x_int) >= logsumexp_i log p(y_i) - log k - D log 256, in nats, with k
  uniform dequantizations y_i (one at a time, ``lax.map``: memory does not grow with k)."""
  x = batch["image"]
  log_w = jax.lax.map(
      lambda kk: -discrete_nll(state.params[NET], x, kk, model=model, alpha=alpha),
      jax.random.split(key, k))                                           # (k, B)
  return densities.importance_weighted_bound(log_w, axis=0)


def sample(state: TrainState, key: jax.Array, num: int, *, model: Glow, alpha: float,
           temperature: float = 1.0) -> jax.Array:
  """``num`` images in [0, 1] (quantized to the grey levels) from codes eps ~ N(0, T^2 I),
  T = ``temperature`` (Glow's reduced-temperature sampling for T < 1)."""
  eps = temperature * prior(state, key, num, model=model)
  return decode(state, eps, model=model, alpha=alpha)


def encode(state: TrainState, images: jax.Array, *, model: Glow, alpha: float) -> jax.Array:
  """The codes eps (batch, D) of images in [0, 1] at their cells' midpoints (u = 0.5)."""
  s, _ = glow.logit_transform(dequantize(images, 0.5), alpha)
  return model.apply({"params": state.params[NET]}, s)[0]


def decode(state: TrainState, z: jax.Array, *, model: Glow, alpha: float) -> jax.Array:
  """The images of codes z (batch, D): the flow's exact inverse, quantized to the grey levels."""
  s = model.apply({"params": state.params[NET]}, z, method=Glow.inverse)
  return quantize(glow.logit_inverse(s, alpha))


def prior(state: TrainState, key: jax.Array, num: int, *, model: Glow) -> jax.Array:
  """eps ~ N(0, I), (num, D): the codes' prior (each level's learned Gaussian is inside the flow,
  so ``state`` is unused)."""
  del state
  return jax.random.normal(key, (num, math.prod(model.image_shape)))


def reconstruct(state: TrainState, batch: dict, *, model: Glow, alpha: float) -> jax.Array:
  """decode(encode(x)): x itself up to float rounding (the flow is a bijection)."""
  return decode(state, encode(state, batch["image"], model=model, alpha=alpha),
                model=model, alpha=alpha)


def inpaint(state: TrainState, batch: dict, mask: jax.Array, key: jax.Array, *, model: Glow,
            alpha: float, num_steps: int, learning_rate: float) -> jax.Array:
  """Projected gradient ascent on log p(y) over the missing pixels: Adam on their logits s for
  ``num_steps`` steps from the known-pixel mean fill, the known pixels clamped at their cells'
  midpoints and s kept in the logit range of [0, 1] (the projection); then quantized, the known
  pixels pasted back bit-identical. Deterministic (``key`` unused)."""
  del key
  images = batch["image"]
  params = state.params[NET]
  s_known, _ = glow.logit_transform(dequantize(images, 0.5), alpha)
  s0, _ = glow.logit_transform(dequantize(masks_lib.known_mean_fill(images, mask), 0.5), alpha)
  lo, hi = math.log(alpha / (1 - alpha)), math.log((1 - alpha) / alpha)
  tx = optax.adam(learning_rate)

  def neg_log_p(s_free):
    y = glow.logit_inverse(jnp.where(mask, s_known, s_free), alpha)
    return -jnp.sum(log_density(params, y, model=model, alpha=alpha))

  def step(_, carry):
    s, opt = carry
    updates, opt = tx.update(jax.grad(neg_log_p)(s), opt, s)
    return jnp.clip(optax.apply_updates(s, updates), lo, hi), opt

  s, _ = jax.lax.fori_loop(0, num_steps, step, (s0, tx.init(s0)))
  return completion.paste(images, mask, quantize(glow.logit_inverse(s, alpha)))


def create_model(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Glow:
  m = config.model
  return Glow(image_shape=tuple(image_shape), levels=m.levels, steps=m.steps, hidden=m.hidden,
              out_kernel=m.out_kernel)


def validate(config: ml_collections.ConfigDict,
             image_shape: Sequence[int] | None = None) -> None:
  """A clear error for each setting the flow cannot train (and, given ``image_shape``, for a
  number of levels the image cannot be squeezed through)."""
  m = config.model
  precision.compute_dtype(m.dtype, "flow")
  if config.dataset.binarize != "none":
    raise ValueError(f"dataset.binarize={config.dataset.binarize!r}: the flow models grey levels "
                     "by uniform dequantization; set --config.dataset.binarize=none.")
  if m.levels < 1 or m.steps < 1 or m.hidden < 1:
    raise ValueError(f"model.levels={m.levels}, model.steps={m.steps}, model.hidden={m.hidden}: "
                     "the flow needs at least one level of at least one step, and hidden >= 1 "
                     "channels in its coupling networks.")
  if m.out_kernel not in (1, 3):
    raise ValueError(f"model.out_kernel={m.out_kernel}: the couplings' last layer is a 3x3 (Glow) "
                     "or a 1x1 convolution; set --config.model.out_kernel=3 or 1.")
  if not 0.0 < m.alpha < 0.5:
    raise ValueError(f"model.alpha={m.alpha}: the logit transform's margin must lie in (0, 0.5) "
                     "(RealNVP uses 0.05).")
  if not m.temperature > 0:
    raise ValueError(f"model.temperature={m.temperature}: sample at a temperature > 0 (1.0: the "
                     "model's own distribution, Glow shows 0.7).")
  if config.apps.num_steps < 0 or not config.apps.learning_rate > 0:
    raise ValueError(f"apps.num_steps={config.apps.num_steps}, apps.learning_rate="
                     f"{config.apps.learning_rate}: completion runs num_steps >= 0 Adam steps of a "
                     "positive learning rate.")
  if image_shape is not None:
    h, w, _ = image_shape
    if h % 2 ** m.levels or w % 2 ** m.levels:
      raise ValueError(f"model.levels={m.levels}: each level halves the {h}x{w} images, which "
                       f"{h}x{w} does not allow {m.levels} times; use --config.model.levels="
                       f"{_max_levels(h, w)} or fewer.")


def _max_levels(h: int, w: int) -> int:
  n = 0
  while h % 2 == 0 and w % 2 == 0:
    h, w, n = h // 2, w // 2, n + 1
  return n


def from_config(config: ml_collections.ConfigDict, image_shape: Sequence[int]) -> Family:
  validate(config, image_shape)
  model = create_model(config, image_shape)
  m, a = config.model, config.apps
  p = functools.partial
  return Family(
      init=p(init_state, model=model, tx=optim.make(config.optimizer),
             image_shape=tuple(image_shape)),
      train_step=p(train_step, model=model, alpha=m.alpha, init_actnorm=m.data_init),
      eval_step=p(eval_step, model=model, alpha=m.alpha),
      sample=p(sample, model=model, alpha=m.alpha, temperature=m.temperature),
      reconstruct=p(reconstruct, model=model, alpha=m.alpha),
      encode=p(encode, model=model, alpha=m.alpha),
      decode=p(decode, model=model, alpha=m.alpha),
      prior=p(prior, model=model),
      log_likelihood=p(log_likelihood, model=model, alpha=m.alpha),
      inpaint=p(inpaint, model=model, alpha=m.alpha, num_steps=a.num_steps,
                learning_rate=a.learning_rate),
      inpaint_method=(f"projected gradient ascent on log p (Adam {a.learning_rate}, "
                      f"{a.num_steps} steps)"),
  )
