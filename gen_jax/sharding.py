"""The device mesh named in the config, and the shardings the loop uses.

The mesh uses *Auto* axis types (``jax.sharding.AxisType.Auto``): the loop states every input and
output sharding of its jitted functions explicitly and lets XLA propagate the rest, which is what
data parallelism needs; *Explicit* axes (the ``jax.make_mesh`` default) would make every array's
sharding part of its type and ask each model for sharding annotations it does not need.
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


def make_mesh(cfg: ml_collections.ConfigDict, devices=None) -> Mesh:
  """A mesh of ``cfg.shape`` over ``cfg.axes``; one -1 in the shape takes the remaining devices."""
  devices = list(jax.devices() if devices is None else devices)
  shape, axes = list(cfg.shape), tuple(cfg.axes)
  if len(shape) != len(axes):
    raise ValueError(f"mesh.shape {tuple(shape)} and mesh.axes {axes} differ in length.")
  if cfg.data_axis not in axes:
    raise ValueError(f"mesh.data_axis {cfg.data_axis!r} is not one of mesh.axes {axes}.")
  if shape.count(-1) > 1:
    raise ValueError(f"mesh.shape {tuple(shape)} has more than one -1.")
  if -1 in shape:
    rest = math.prod(s for s in shape if s != -1)
    if len(devices) % rest:
      raise ValueError(f"mesh.shape {tuple(shape)} does not divide the {len(devices)} devices.")
    shape[shape.index(-1)] = len(devices) // rest
  if math.prod(shape) > len(devices):
    raise ValueError(f"mesh.shape {tuple(shape)} needs {math.prod(shape)} devices but only "
                     f"{len(devices)} are available; set --config.mesh.shape to fit them.")
  devices = devices[:math.prod(shape)]  # a fixed shape may use fewer devices than there are
  return jax.make_mesh(tuple(shape), axes, axis_types=(AxisType.Auto,) * len(axes),
                       devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh, data_axis: str) -> NamedSharding:
  """Leading (batch or example) axis split over ``data_axis``, replicated over the other axes."""
  return NamedSharding(mesh, P(data_axis))


def check_batch_size(batch_size: int, mesh: Mesh, data_axis: str, what: str = "batch_size") -> None:
  n = mesh.shape[data_axis]
  if batch_size % n:
    lower, upper = (batch_size // n) * n, (batch_size // n + 1) * n
    raise ValueError(
        f"{what}={batch_size} cannot be split evenly over the {n} devices of mesh axis "
        f"{data_axis!r}: use a multiple of {n}, e.g. --config.{what}={upper}"
        + (f" or {lower}." if lower else "."))


def host_value(tree):
  """Arrays (a pytree of them) as NumPy on this host, whatever their sharding: an array split over
  the devices of several processes is gathered from all of them (every process must call this)."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))
  return jax.tree.map(one, tree)
