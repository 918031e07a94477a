"""Mixed precision: train steps that compute in bfloat16 over float32 parameters.

``config.model.dtype='bfloat16'`` makes each family bind its *train step* to :func:`cast` of its
networks: a Linen module whose ``apply`` casts the floating variables (parameters, batch-norm
statistics) and floating inputs to bfloat16, runs the module (Flax layers compute in the dtype of
their inputs and parameters), and casts the floating outputs back to float32. So

- parameters and optimizer state stay float32 (the gradient of the cast is the cast of the gradient);
- every matrix product and convolution runs in bfloat16, with float32 accumulation where the
  backend has it (TPU MXU, GPU tensor cores);
- losses, metrics and the updated batch-norm statistics are float32;
- evaluation, sampling and the likelihood bounds use the networks as they are, in float32.

Glow and the RBM/DBN families do not take bfloat16 (see :func:`compute_dtype`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# The families (config.model.family) whose train steps refuse bfloat16 -- their log-determinants,
# free energies and Gibbs chains need float32 -- and their names in the error.
FLOAT32_ONLY = {"flow": "flow", "rbm": "RBM", "dbn": "DBN"}


def compute_dtype(name: str, family: str = ""):
  """The dtype of ``config.model.dtype``; a clear error for a name not in :data:`DTYPES` or for
  bfloat16 in a family (``config.model.family``) of :data:`FLOAT32_ONLY`."""
  if name not in DTYPES:
    raise ValueError(f"unknown model.dtype {name!r}: choose one of {', '.join(DTYPES)}.")
  if name != "float32" and family in FLOAT32_ONLY:
    raise ValueError(f"model.dtype={name!r}: the {FLOAT32_ONLY[family]} family trains in float32 "
                     "only (its log-determinants and Gibbs chains need float32's precision); set "
                     "--config.model.dtype=float32.")
  return DTYPES[name]


def _cast_floats(tree: Any, dtype) -> Any:
  def one(x):
    if isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) or hasattr(x, "dtype"):
      if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype:
        return x.astype(dtype)
    return x
  return jax.tree.map(one, tree)


class Cast:
  """``module`` with ``apply`` in ``dtype`` (see the module docstring); everything else, ``init``
  included, is the module's own. Pass it wherever a step function takes a network."""

  def __init__(self, module: nn.Module, dtype):
    self.module = module
    self.dtype = dtype

  def apply(self, variables, *args, **kwargs):
    out = self.module.apply(_cast_floats(variables, self.dtype), *_cast_floats(args, self.dtype),
                            **{k: (_cast_floats(v, self.dtype) if k not in ("rngs", "method", "mutable")
                                   else v) for k, v in kwargs.items()})
    if kwargs.get("mutable", False) is not False:
      y, updates = out
      like = {k: variables[k] for k in updates if k in variables}
      # Updated collections (batch-norm statistics) come back in their own dtype.
      updates = {k: jax.tree.map(lambda u, v: u.astype(v.dtype), updates[k], like[k])
                 if k in like else _cast_floats(updates[k], jnp.float32) for k in updates}
      return _cast_floats(y, jnp.float32), updates
    return _cast_floats(out, jnp.float32)

  def __getattr__(self, name):   # the module's fields (num_classes, code_dim, ...) and methods
    if name in ("module", "dtype"):   # not set yet (copy, pickle): no recursion
      raise AttributeError(name)
    return getattr(self.module, name)

  def __hash__(self):
    return hash((self.module, self.dtype))

  def __eq__(self, other):
    return isinstance(other, Cast) and (self.module, self.dtype) == (other.module, other.dtype)


def cast(module: nn.Module, dtype) -> Any:
  """``module`` itself for float32, else :class:`Cast` of it."""
  return module if jnp.dtype(dtype) == jnp.float32 else Cast(module, dtype)
