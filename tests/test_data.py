import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from gen_jax import data, sharding


def _mesh(n):
  return sharding.make_mesh(ConfigDict(dict(shape=(n,), axes=("data",), data_axis="data")))


def test_gather_matches_numpy_take_on_8_devices():
  mesh = _mesh(8)
  rows = np.arange(64 * 3, dtype=np.int32).reshape(64, 3)
  sharded = jax.device_put(rows, sharding.data_sharded(mesh, "data"))
  idx = jnp.array([63, 0, 5, 5, 17, 40, 8, 9, 31, 32, 33, 1, 2, 62, 7, 6], jnp.int32)
  out = jax.jit(lambda r, i: data.gather(r, i, mesh=mesh, data_axis="data"))(sharded, idx)
  np.testing.assert_array_equal(out, rows[np.asarray(idx)])
  assert out.sharding.spec == jax.sharding.PartitionSpec("data")


def test_gather_uint8_images_is_exact():
  mesh = _mesh(4)
  rows = np.random.default_rng(0).integers(0, 256, size=(12, 2, 2, 1), dtype=np.uint8)
  sharded = jax.device_put(rows, sharding.data_sharded(mesh, "data"))
  out = data.gather(sharded, jnp.array([11, 3, 3, 0]), mesh=mesh, data_axis="data")
  np.testing.assert_array_equal(np.asarray(out), rows[[11, 3, 3, 0]].astype(np.int32))


def test_mnist_loads_real_data_with_known_labels(tfds_dir):
  train = data.load_split("mnist", "train", mesh=_mesh(1), data_axis="data")
  test = data.load_split("mnist", "test", mesh=_mesh(1), data_axis="data")
  assert train.num_examples == 60000 and test.num_examples == 10000
  assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == jnp.uint8
  # MNIST's published class counts (TFDS stores the examples in its own shuffled order).
  np.testing.assert_array_equal(np.bincount(np.asarray(train.labels), minlength=10),
                                [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
  np.testing.assert_array_equal(np.bincount(np.asarray(test.labels), minlength=10),
                                [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
  assert int(train.images.max()) == 255 and train.max_value == 255


def test_uneven_split_is_padded_and_identical_to_one_device(tfds_dir):
  one = data.load_split("mnist", "test", mesh=_mesh(1), data_axis="data")
  seven = data.load_split("mnist", "test", mesh=_mesh(7), data_axis="data")
  assert seven.images.shape[0] == 10003 and seven.num_examples == 10000
  np.testing.assert_array_equal(np.asarray(seven.images[:10000]), np.asarray(one.images))
  assert int(jnp.abs(seven.images[10000:].astype(jnp.int32)).sum()) == 0


def test_binarized_mnist_is_binary(tfds_dir):
  train = data.load_split("binarized_mnist", "train", mesh=_mesh(1), data_axis="data")
  assert train.num_examples == 50000 and train.labels is None and train.max_value == 1
  assert set(np.unique(np.asarray(train.images[:1000]))) == {0, 1}


def test_epoch_order_is_a_permutation_that_changes_per_epoch():
  key = jax.random.PRNGKey(0)
  a, b = data.epoch_order(key, 0, 1000), data.epoch_order(key, 1, 1000)
  np.testing.assert_array_equal(np.sort(a), np.arange(1000))
  assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.0, 0.003, 0.3, 0.5, 254 / 255, 1.0])
def test_binarize_is_bernoulli_with_the_pixel_mean(p):
  n = 400_000
  x = data.binarize(jax.random.PRNGKey(0), jnp.full((n,), p))
  mean = float(x.mean())
  assert mean == pytest.approx(p, abs=5 * (p * (1 - p) / n) ** 0.5 + 1e-9)
  if 0 < p < 1:  # neighbouring pixels and the same pixel under another key are independent
    a = np.asarray(x)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.01
    b = np.asarray(data.binarize(jax.random.PRNGKey(1), jnp.full((n,), p)))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01


def test_binarize_is_the_same_under_sharding():
  mesh = _mesh(8)
  x = jax.random.uniform(jax.random.PRNGKey(2), (64, 28, 28, 1))
  key = jax.random.PRNGKey(3)
  whole = jax.jit(data.binarize)(key, x)
  sharded = jax.jit(data.binarize)(key, jax.device_put(x, sharding.data_sharded(mesh, "data")))
  np.testing.assert_array_equal(whole, sharded)


def test_missing_dataset_names_tfds_data_dir_and_the_dataset(tmp_path):
  with pytest.raises(data.DatasetError, match="TFDS_DATA_DIR") as e:
    data.read_rows("fashion_mnist", "train", 0, 10, data_dir=str(tmp_path), download=False)
  assert "fashion_mnist" in str(e.value)


def test_unknown_dataset_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown dataset 'mnits'"):
    data.info("mnits")
