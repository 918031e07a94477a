"""The one train-state pytree every model family uses.

A model is a set of named networks (``{'vae': ...}``, later ``{'gen': ..., 'disc': ...}``), each with
its own parameters and optax optimizer state, held together in one immutable pytree so that a whole
model is checkpointed, sharded and passed through ``jax.jit`` as a single value.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import optax

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Parameters, optimizer states and randomness of every network of one model.

  Attributes:
    step: number of completed training steps (int32 scalar).
    params: network name -> Flax params.
    opt_state: network name -> optax state of that network's optimizer.
    key: the run's base PRNG key (raw uint32 key). Per-step randomness is derived from it with
      ``fold_in(key, step)`` (see :meth:`step_key`), never from Python-side state.
    extra: anything else a family keeps between steps (batch statistics, EMA weights, persistent
      Gibbs chains). Checkpointed with the rest.
    tx: network name -> optax transformation (static: not a pytree leaf, not checkpointed).
  """

  step: jax.Array
  params: dict[str, PyTree]
  opt_state: dict[str, PyTree]
  key: jax.Array
  extra: dict[str, PyTree] = flax.struct.field(default_factory=dict)
  tx: Mapping[str, optax.GradientTransformation] = flax.struct.field(pytree_node=False, default=None)

  @classmethod
  def create(cls, *, params: dict[str, PyTree], tx: Mapping[str, optax.GradientTransformation],
             key: jax.Array, extra: dict[str, PyTree] | None = None) -> "TrainState":
    if set(params) != set(tx):
      raise ValueError(f"params has networks {sorted(params)} but tx has {sorted(tx)}; "
                       "give every network exactly one optimizer.")
    opt_state = {name: tx[name].init(p) for name, p in params.items()}
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, key=key,
               extra=extra or {}, tx=dict(tx))

  @classmethod
  def for_module(cls, key: jax.Array, *, name: str, module, tx: optax.GradientTransformation,
                 image_shape, key_arg: bool = False, extra_inputs: tuple = ()) -> "TrainState":
    """A fresh one-network state: ``module.init`` on one zero image (and, with ``key_arg``, the
    init key as a second argument, for modules that sample; then ``extra_inputs``, such as a
    label); ``key`` (raw uint32 key) seeds the parameters and, split off, every later step."""
    init_key, run_key = jax.random.split(key)
    x = jnp.zeros((1, *image_shape), jnp.float32)
    params = module.init(init_key, *((x, init_key) if key_arg else (x,)), *extra_inputs)["params"]
    return cls.create(params={name: params}, tx={name: tx}, key=run_key)

  def step_key(self, salt: int = 0) -> jax.Array:
    """The PRNG key of the current step; ``salt`` separates independent streams within a step."""
    return jax.random.fold_in(jax.random.fold_in(self.key, self.step), salt)

  def apply_gradients(self, grads: dict[str, PyTree], *, next_step: bool = True) -> "TrainState":
    """Updates the networks named in ``grads`` (others untouched); advances ``step`` if asked.

    A GAN's step calls this once for the discriminator (``next_step=False``) and once for the
    generator, so one call of its train step still counts as one step.
    """
    params, opt_state = dict(self.params), dict(self.opt_state)
    for name, g in grads.items():
      updates, opt_state[name] = self.tx[name].update(g, self.opt_state[name], self.params[name])
      params[name] = optax.apply_updates(self.params[name], updates)
    return self.replace(step=self.step + int(next_step), params=params, opt_state=opt_state)
