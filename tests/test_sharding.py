import jax
import pytest
from ml_collections import ConfigDict

from gen_jax import sharding


def _cfg(shape, axes=("data",)):
  return ConfigDict(dict(shape=shape, axes=axes, data_axis="data"))


def test_default_mesh_takes_all_devices():
  mesh = sharding.make_mesh(_cfg((-1,)))
  assert mesh.shape["data"] == jax.device_count() == 8


def test_two_axis_mesh():
  mesh = sharding.make_mesh(_cfg((-1, 2), ("data", "model")))
  assert dict(mesh.shape) == {"data": 4, "model": 2}


def test_mesh_larger_than_the_devices_is_a_clear_error():
  with pytest.raises(ValueError, match="needs 16 devices but only 8"):
    sharding.make_mesh(_cfg((16,)))


def test_indivisible_batch_names_the_field_and_a_fix():
  mesh = sharding.make_mesh(_cfg((8,)))
  with pytest.raises(ValueError, match=r"batch_size=100 cannot be split evenly over the 8 devices.*"
                                       r"--config.batch_size=104"):
    sharding.check_batch_size(100, mesh, "data")
  sharding.check_batch_size(128, mesh, "data")
