"""Codecs: entropy-coded symbols meet the entropy, round trips are exact, image baselines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import features

from gen_jax.representation import codec

# A fixed 4-d factorised categorical: per dimension, its support and probabilities.
_SUPPORTS = (np.arange(4), np.arange(-2, 3), np.array([5, 6, 7]), np.arange(-3, 5))
_PROBS = (np.array([0.5, 0.25, 0.125, 0.125]), np.array([0.1, 0.2, 0.4, 0.2, 0.1]),
          np.array([0.9, 0.05, 0.05]), np.full(8, 1 / 8))


def _draw(n, seed):
  rng = np.random.default_rng(seed)
  return np.stack([rng.choice(s, size=n, p=p) for s, p in zip(_SUPPORTS, _PROBS)],
                  axis=1).astype(np.int32)


def _empirical_entropy_bits(x):
  total = 0.0
  for j in range(x.shape[1]):
    _, counts = np.unique(x[:, j], return_counts=True)
    p = counts / len(x)
    total += -(p * np.log2(p)).sum()
  return len(x) * total


def test_stream_size_meets_the_empirical_entropy_and_decodes_exactly():
  train, test = _draw(50_000, seed=0), _draw(200_000, seed=1)
  model = codec.fit_entropy_model(train)
  words = codec.encode(model, test)
  assert words.dtype == np.uint32 and words.ndim == 1
  actual = codec.compressed_bits(words)
  assert actual == 32 * len(words)
  entropy = _empirical_entropy_bits(test)
  ideal = codec.information_bits(model, test)
  assert ideal.shape == (len(test),)
  assert abs(actual - entropy) / entropy < 0.01, (actual, entropy)
  assert abs(actual - ideal.sum()) / ideal.sum() < 0.01, (actual, ideal.sum())
  # The factorised model's true entropy, as a check on the check.
  true_entropy = len(test) * sum(-(p * np.log2(p)).sum() for p in _PROBS)
  assert abs(entropy - true_entropy) / true_entropy < 0.01
  decoded = codec.decode(model, words, len(test))
  assert decoded.dtype == np.int32 and decoded.shape == test.shape
  np.testing.assert_array_equal(decoded, test)


def test_symbols_outside_the_training_range_and_constant_dimensions_round_trip_exactly():
  rng = np.random.default_rng(2)
  train = np.stack([rng.integers(-3, 4, 500), np.full(500, 7), rng.integers(0, 2, 500)], axis=1)
  model = codec.fit_entropy_model(train)
  np.testing.assert_array_equal(model.lo, [-3, 7, 0])
  np.testing.assert_array_equal(model.hi, [3, 7, 1])
  extremes = [-10**6, 10**6, codec.INT32_MIN, codec.INT32_MAX, -4, 4, 6, 8, 2, -1, 0, 7]
  test = rng.integers(-3, 4, (len(extremes) * 3, 3))
  test[:, 1] = 7
  for i, value in enumerate(extremes):
    test[3 * i:3 * i + 3, i % 3] = value
    test[3 * i + 1, (i + 1) % 3] = min(-value, codec.INT32_MAX)
  words = codec.encode(model, test.astype(np.int32))
  np.testing.assert_array_equal(codec.decode(model, words, len(test)), test)
  # Escapes cost more than in-range symbols, but bits stay finite.
  bits = codec.information_bits(model, test)
  assert np.isfinite(bits).all() and bits.max() > 40
  # A stream with nothing but escapes, and the empty stream.
  far = np.array([[10**6, 10**6, -10**6]] * 4, np.int32)
  np.testing.assert_array_equal(codec.decode(model, codec.encode(model, far), 4), far)
  empty = codec.encode(model, np.zeros((0, 3), np.int32))
  assert codec.compressed_bits(empty) == 0
  assert codec.decode(model, empty, 0).shape == (0, 3)


def test_quantize_and_dequantize():
  z = np.array([-1.26, -0.25, 0.0, 0.24, 0.26, 1.0, 0.75])
  q = codec.quantize(z, 0.5)
  assert q.dtype == np.int32
  np.testing.assert_array_equal(q, [-3, 0, 0, 0, 1, 2, 2])  # ties to even: -0.5 -> 0, 1.5 -> 2
  centres = codec.dequantize(q, 0.5)
  assert centres.dtype == np.float32
  np.testing.assert_array_equal(centres, [-1.5, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0])
  rng = np.random.default_rng(3)
  z = rng.normal(scale=5.0, size=(1000, 16)).astype(np.float32)
  for step in (1e-3, 0.1, 0.37, 1.0, 4.0):
    error = np.abs(codec.dequantize(codec.quantize(z, step), step).astype(np.float64) - z)
    assert error.max() <= step / 2 * (1 + 1e-6) + 1e-6, (step, error.max())


def test_information_bits_of_a_hand_built_model():
  # Fitted on [0, 0, 0, 1] with s = 0.5: r = 2 values plus 2 escapes, denominator 4 + 0.5 * 4 = 6.
  model = codec.fit_entropy_model(np.array([[0], [0], [0], [1]]), smoothing=0.5)
  p0, p1, p_escape = 3.5 / 6, 1.5 / 6, 0.5 / 6
  np.testing.assert_allclose(model.probs, [[p_escape, p0, p1, p_escape]])
  np.testing.assert_allclose(model.probs.sum(axis=1), 1.0)
  # Exponent prior of an escape: half Elias-gamma 2^-(b+1) (normalised over b = 0..31), half
  # uniform over the 32 exponents; b = floor(log2 u) of the distance u, then b raw bits.
  def exponent(b):
    return 0.5 * 2.0**-(b + 1) / (1 - 2.0**-32) + 0.5 / 32

  symbols = np.array([[0], [1], [2], [-1], [6], [-9]])  # u = 1, 1, 5 (b=2), 10 (b=3)
  expected = [-np.log2(p0), -np.log2(p1),
              -np.log2(p_escape) - np.log2(exponent(0)),
              -np.log2(p_escape) - np.log2(exponent(0)),
              -np.log2(p_escape) - np.log2(exponent(2)) + 2,
              -np.log2(p_escape) - np.log2(exponent(3)) + 3]
  np.testing.assert_allclose(codec.information_bits(model, symbols), expected, rtol=1e-12)
  np.testing.assert_allclose(codec.ESCAPE_EXPONENT_PROBS, [exponent(b) for b in range(32)])
  words = codec.encode(model, symbols)
  np.testing.assert_array_equal(codec.decode(model, words, len(symbols)), symbols)


def _test_images():
  rng = np.random.default_rng(4)
  noise = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
  ramp = np.add.outer(np.arange(28), np.arange(28)) * 255 // 54
  smooth = np.stack([ramp, ramp.T[::-1], 255 - ramp]).astype(np.uint8)
  return noise, smooth


def test_png_is_lossless_and_jpeg_trades_bits_for_error():
  noise, smooth = _test_images()
  for images in (noise, smooth, smooth[..., None]):
    bits, decoded = codec.image_codec_bits(images, "PNG")
    assert decoded.shape == images.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, images)
    assert np.issubdtype(bits.dtype, np.integer) and bits.shape == (len(images),)
    assert (bits > 0).all() and (bits % 8 == 0).all()
  bits_95, decoded_95 = codec.image_codec_bits(smooth, "JPEG", quality=95)
  bits_10, decoded_10 = codec.image_codec_bits(smooth, "jpeg", quality=10)
  error_95 = np.abs(decoded_95.astype(int) - smooth)
  error_10 = np.abs(decoded_10.astype(int) - smooth)
  assert error_95.max() <= 4 and error_95.mean() < 1.0, (error_95.max(), error_95.mean())
  assert error_10.mean() > error_95.mean()
  assert (bits_10 < bits_95).all() and (bits_95 % 8 == 0).all() and (bits_10 > 0).all()
  noise_95, noise_decoded = codec.image_codec_bits(noise, "JPEG", quality=95)
  assert np.abs(noise_decoded.astype(int) - noise).mean() < 3.0
  assert (codec.image_codec_bits(noise, "JPEG", quality=10)[0] < noise_95).all()


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_lossless_without_quality_and_lossy_with_it():
  noise, smooth = _test_images()
  bits, decoded = codec.image_codec_bits(smooth, "WEBP")
  np.testing.assert_array_equal(decoded, smooth)
  lossy_bits, lossy = codec.image_codec_bits(noise[..., None], "WEBP", quality=50)
  assert lossy.shape == noise[..., None].shape and (lossy_bits > 0).all()
  assert (lossy_bits % 8 == 0).all() and not np.array_equal(lossy[..., 0], noise)


def test_bad_inputs_raise_useful_errors():
  z = np.zeros((2, 3), np.float32)
  for step in (0, -1.0, float("nan"), float("inf"), "0.5", True):
    with pytest.raises(ValueError, match="step"):
      codec.quantize(z, step)
  with pytest.raises(ValueError, match="step"):
    codec.dequantize(np.zeros(3, np.int32), 0.0)
  with pytest.raises(ValueError, match="larger step"):
    codec.quantize(np.array([1e12]), 1e-3)
  with pytest.raises(ValueError, match="finite"):
    codec.quantize(np.array([np.nan]), 1.0)
  with pytest.raises(ValueError, match="integer"):
    codec.fit_entropy_model(z)
  with pytest.raises(ValueError, match=r"shape \(n, d\)"):
    codec.fit_entropy_model(np.zeros(5, np.int32))
  with pytest.raises(ValueError, match="smoothing"):
    codec.fit_entropy_model(np.zeros((5, 2), np.int32), smoothing=0.0)
  with pytest.raises(ValueError, match="larger quantisation step"):
    codec.fit_entropy_model(np.array([[0], [10**6]]))
  model = codec.fit_entropy_model(np.zeros((5, 2), np.int32))
  with pytest.raises(ValueError, match="2 dimensions|fitted on 2"):
    codec.encode(model, np.zeros((5, 3), np.int32))
  with pytest.raises(ValueError, match="int32 range"):
    codec.encode(model, np.array([[2**40, 0]]))
  with pytest.raises(ValueError, match="uint32"):
    codec.decode(model, np.zeros(3, np.int64), 1)
  with pytest.raises(ValueError, match="num"):
    codec.decode(model, np.zeros(0, np.uint32), -1)
  images = np.zeros((2, 8, 8), np.uint8)
  with pytest.raises(ValueError, match="unknown image format 'GIF'"):
    codec.image_codec_bits(images, "GIF")
  with pytest.raises(ValueError, match="quality=None"):
    codec.image_codec_bits(images, "PNG", quality=90)
  with pytest.raises(ValueError, match="uint8"):
    codec.image_codec_bits(images.astype(np.float32) / 255, "PNG")
  with pytest.raises(ValueError, match="grey"):
    codec.image_codec_bits(np.zeros((2, 8, 8, 3), np.uint8), "PNG")
  for quality in (0, 101):
    with pytest.raises(ValueError, match="1..100"):
      codec.image_codec_bits(images, "JPEG", quality=quality)
  with pytest.raises(ValueError, match="JPEG needs a quality"):
    codec.image_codec_bits(images, "JPEG")
  with pytest.raises(ValueError, match="quality must be an int"):
    codec.image_codec_bits(images, "WEBP", quality=50.5)
