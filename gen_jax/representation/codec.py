"""Codecs for the rate-distortion study: entropy-coded latent codes and the classic image codecs.

Each autoencoding family is treated as a codec, and the rate is what a compressed file really
costs, not a bound. A latent ``z`` is quantised with a uniform step, a factorised categorical model
is fitted to the training symbols, and the test symbols are written with
``constriction``'s ANS coder into one stream of 32-bit words. :func:`information_bits` gives the
ideal code length under the same model, so the coder's overhead can be seen. JPEG, WebP and PNG,
with each image saved on its own by Pillow, are the baselines; their rate is the file size,
headers included.

Usage::

    from gen_jax.representation import codec

    q_train = codec.quantize(z_train, step=0.5)      # (n, d) int32
    model = codec.fit_entropy_model(q_train)         # per-dimension histograms + escapes
    q_test = codec.quantize(z_test, step=0.5)
    words = codec.encode(model, q_test)              # uint32 words of one stream
    bits = codec.compressed_bits(words)              # what the file costs
    assert (codec.decode(model, words, len(q_test)) == q_test).all()
    z_hat = codec.dequantize(q_test, 0.5)            # the decoder's view: bin centres

    jpeg_bits, jpeg_images = codec.image_codec_bits(images_uint8, "JPEG", quality=75)

The entropy model: dimension ``j`` is fitted on its training range ``[lo_j, hi_j]``
(``r_j = hi_j - lo_j + 1`` values) and gets the alphabet ``[escape-low, lo_j, ..., hi_j,
escape-high]`` of ``r_j + 2`` symbols with additive smoothing ``s``::

    p_j(v)          = (count_j(v) + s) / (n + s * (r_j + 2))   for lo_j <= v <= hi_j
    p_j(escape-low) = p_j(escape-high) = s / (n + s * (r_j + 2))

A symbol ``v`` outside the range is coded as the escape of its side followed by its distance
``u = lo_j - v`` or ``u = v - hi_j`` (``u >= 1``, at most ``2**32 - 1`` for int32 input) in an
Elias-gamma-like code: the exponent ``b = floor(log2 u)`` in ``0..31`` with the fixed prior
:data:`ESCAPE_EXPONENT_PROBS` (half Elias-gamma's ``2**-(b+1)``, half uniform over the 32
exponents), then the ``b`` bits of ``u`` below its leading one, one bit each. So every int32 symbol
is coded exactly.

Stream layout (ANS is a stack: pushed in reverse, decoded in this order): the ``n`` alphabet
indices of dimension 0, ..., those of dimension ``d - 1``, then the exponents of all escapes
(dimension-major, row order within a dimension), then their mantissa bits (most significant
first).
"""

from __future__ import annotations

import dataclasses
import io
import numbers

import constriction
import numpy as np
from PIL import Image, features

INT32_MIN, INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)
MAX_ALPHABET = 2**16  # per-dimension training range; the coder's probabilities have 24 bits
IMAGE_FORMATS = ("JPEG", "WEBP", "PNG")
_NUM_EXPONENTS = 32  # u <= 2**32 - 1 for int32 symbols and an int32 range


def _exponent_probs() -> np.ndarray:
  b = np.arange(_NUM_EXPONENTS, dtype=np.float64)
  gamma = 2.0 ** -(b + 1)
  probs = 0.5 * gamma / gamma.sum() + 0.5 / _NUM_EXPONENTS
  return probs / probs.sum()


# Prior of the exponent b = floor(log2 u) of an escaped symbol's distance u from the range.
ESCAPE_EXPONENT_PROBS = _exponent_probs()
_EXPONENT_MODEL = constriction.stream.model.Categorical(ESCAPE_EXPONENT_PROBS, perfect=False)
_BIT_MODEL = constriction.stream.model.Categorical(np.array([0.5, 0.5]), perfect=False)


# ------------------------------------------------------------------------------------------------
# Quantisation.


def _check_step(step) -> float:
  if isinstance(step, bool) or not isinstance(step, numbers.Real):
    raise ValueError(f"step must be a positive real number, got {step!r} "
                     f"({type(step).__name__}); pass e.g. step=0.5.")
  step = float(step)
  if not np.isfinite(step) or step <= 0:
    raise ValueError(f"step must be positive and finite, got {step}; pass e.g. step=0.5.")
  return step


def quantize(z: np.ndarray, step: float) -> np.ndarray:
  """Uniform scalar quantisation: int32 symbols ``round(z / step)`` (ties to even)."""
  step = _check_step(step)
  z = np.asarray(z)
  if z.dtype == bool or not (np.issubdtype(z.dtype, np.floating)
                             or np.issubdtype(z.dtype, np.integer)):
    raise ValueError(f"z must hold real numbers (a float or int array), got dtype {z.dtype}; "
                     "convert it with np.asarray(z, np.float32).")
  scaled = np.rint(z.astype(np.float64) / step)
  if not np.isfinite(scaled).all():
    raise ValueError("z holds NaN or infinite values; only finite latents can be quantised.")
  if scaled.size and (scaled.min() < INT32_MIN or scaled.max() > INT32_MAX):
    raise ValueError(f"z / step leaves the int32 range (|z|max={np.abs(z).max():g}, "
                     f"step={step:g}); use a larger step.")
  return scaled.astype(np.int32)


def dequantize(q: np.ndarray, step: float) -> np.ndarray:
  """The bin centres ``q * step`` as float32 (the reconstruction of :func:`quantize`)."""
  step = _check_step(step)
  q = _check_symbols(q, "q", ndim=None)
  return (q.astype(np.float64) * step).astype(np.float32)


def _check_symbols(symbols, name: str, ndim: int | None = 2) -> np.ndarray:
  """An integer array in the int32 range (as int64), of rank ``ndim`` where given."""
  symbols = np.asarray(symbols)
  if symbols.dtype == bool or not np.issubdtype(symbols.dtype, np.integer):
    raise ValueError(f"{name} must be an integer array (int32 symbols from quantize), got dtype "
                     f"{symbols.dtype}; quantise float latents with codec.quantize(z, step).")
  if ndim is not None and symbols.ndim != ndim:
    raise ValueError(f"{name} must have shape (n, d), got shape {symbols.shape}; reshape it to "
                     "(num_examples, num_dimensions).")
  if symbols.size and (int(symbols.min()) < INT32_MIN or int(symbols.max()) > INT32_MAX):
    raise ValueError(f"{name} has values outside the int32 range [{INT32_MIN}, {INT32_MAX}]; "
                     "use a larger quantisation step.")
  return symbols.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Entropy model.


@dataclasses.dataclass(frozen=True, eq=False)
class EntropyModel:
  """A factorised categorical model of int32 symbols with escapes outside the training range.

  Attributes:
    lo: (d,) int64, the smallest training symbol of each dimension.
    hi: (d,) int64, the largest training symbol of each dimension.
    probs: (d, K) float64, row ``j`` is the distribution over dimension ``j``'s alphabet: index 0
      is escape-low, index ``1 + v - lo[j]`` is symbol ``v`` in ``[lo[j], hi[j]]``, index
      ``hi[j] - lo[j] + 2`` is escape-high; the rest of the row (up to ``K = max_j r_j + 2``) is
      zero. Each row sums to 1.
    smoothing: the additive smoothing it was fitted with.
    num_train: the number of training rows.
  """

  lo: np.ndarray
  hi: np.ndarray
  probs: np.ndarray
  smoothing: float = 0.5
  num_train: int = 0

  def __post_init__(self):
    lo = np.asarray(self.lo, np.int64)
    hi = np.asarray(self.hi, np.int64)
    probs = np.asarray(self.probs, np.float64)
    if lo.ndim != 1 or hi.shape != lo.shape or probs.ndim != 2 or probs.shape[0] != lo.shape[0]:
      raise ValueError(f"EntropyModel needs lo and hi of shape (d,) and probs of shape (d, K), "
                       f"got {lo.shape}, {hi.shape}, {probs.shape}; build it with "
                       "fit_entropy_model.")
    if (hi < lo).any() or probs.shape[1] < (hi - lo).max(initial=-2) + 3:
      raise ValueError("EntropyModel needs lo <= hi and K >= max(hi - lo + 1) + 2 columns of "
                       "probs; build it with fit_entropy_model.")
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0):
      raise ValueError("EntropyModel.probs rows must be non-negative and sum to 1.")
    for name, value in (("lo", lo), ("hi", hi), ("probs", probs)):
      value.setflags(write=False)
      object.__setattr__(self, name, value)

  @property
  def dim(self) -> int:
    """The number of dimensions d."""
    return int(self.lo.shape[0])

  @property
  def alphabet_sizes(self) -> np.ndarray:
    """(d,) the number of coded symbols per dimension: the training range plus 2 escapes."""
    return self.hi - self.lo + 3


def fit_entropy_model(train_symbols: np.ndarray, *, smoothing: float = 0.5) -> EntropyModel:
  """Per-dimension histograms over the training range, smoothed, plus the two escape symbols.

  ``p_j(v) = (count_j(v) + s) / (n + s * (r_j + 2))`` in range, ``s / (n + s * (r_j + 2))`` for
  each escape (see the module docstring); ``s = smoothing`` must be positive so that every
  in-range symbol and both escapes have a nonzero probability.
  """
  symbols = _check_symbols(train_symbols, "train_symbols")
  n, d = symbols.shape
  if n == 0 or d == 0:
    raise ValueError(f"train_symbols must have at least one row and one column, got shape "
                     f"{symbols.shape}.")
  if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) or not (
      np.isfinite(smoothing) and smoothing > 0):
    raise ValueError(f"smoothing must be a positive finite number, got {smoothing!r}; the "
                     "default 0.5 is the Krichevsky-Trofimov estimator.")
  smoothing = float(smoothing)
  lo, hi = symbols.min(axis=0), symbols.max(axis=0)
  sizes = hi - lo + 1
  if sizes.max() > MAX_ALPHABET:
    j = int(sizes.argmax())
    raise ValueError(f"dimension {j} spans {int(sizes[j])} training values ({int(lo[j])}.."
                     f"{int(hi[j])}), more than MAX_ALPHABET={MAX_ALPHABET}; use a larger "
                     "quantisation step.")
  width = int(sizes.max()) + 2
  flat = (np.arange(d) * width + (symbols - lo + 1)).ravel()
  counts = np.bincount(flat, minlength=d * width).reshape(d, width).astype(np.float64)
  valid = np.arange(width)[None, :] < (sizes + 2)[:, None]
  probs = np.where(valid, counts + smoothing, 0.0) / (n + smoothing * (sizes + 2))[:, None]
  return EntropyModel(lo=lo, hi=hi, probs=probs, smoothing=smoothing, num_train=int(n))


def _check_model_symbols(model: EntropyModel, symbols, name: str = "symbols") -> np.ndarray:
  if not isinstance(model, EntropyModel):
    raise ValueError(f"model must be an EntropyModel (from fit_entropy_model), got "
                     f"{type(model).__name__}.")
  symbols = _check_symbols(symbols, name)
  if symbols.shape[1] != model.dim:
    raise ValueError(f"{name} has {symbols.shape[1]} dimensions but the model was fitted on "
                     f"{model.dim}; pass symbols of shape (n, {model.dim}).")
  return symbols


def _split(model: EntropyModel, symbols: np.ndarray):
  """Alphabet indices (n, d) and the escapes' distances u >= 1 (0 where in range)."""
  low, high = symbols < model.lo, symbols > model.hi
  index = np.where(low, 0, np.where(high, model.hi - model.lo + 2, symbols - model.lo + 1))
  distance = np.where(low, model.lo - symbols, np.where(high, symbols - model.hi, 0))
  return index, distance


def _exponents(u: np.ndarray) -> np.ndarray:
  """floor(log2 u) for integers 1 <= u < 2**32, exactly."""
  b = np.zeros(u.shape, np.int64)
  for shift in (16, 8, 4, 2, 1):
    big = (u >> (b + shift)) > 0
    b = np.where(big, b + shift, b)
  return b


def information_bits(model: EntropyModel, symbols: np.ndarray) -> np.ndarray:
  """(n,) the ideal code length ``-sum_d log2 p(symbol)`` of each row, escapes included, in bits."""
  symbols = _check_model_symbols(model, symbols)
  index, distance = _split(model, symbols)
  p = model.probs[np.arange(model.dim)[None, :], index]
  bits = -np.log2(p)
  escaped = distance > 0
  b = _exponents(distance[escaped])
  bits[escaped] += -np.log2(ESCAPE_EXPONENT_PROBS[b]) + b
  return bits.sum(axis=1)


# ------------------------------------------------------------------------------------------------
# Entropy coding.


def _dimension_models(model: EntropyModel):
  return [constriction.stream.model.Categorical(model.probs[j, :int(size)], perfect=False)
          for j, size in enumerate(model.alphabet_sizes)]


def encode(model: EntropyModel, symbols: np.ndarray) -> np.ndarray:
  """Entropy-code (n, d) int symbols into the uint32 words of one ANS stream."""
  symbols = _check_model_symbols(model, symbols)
  index, distance = _split(model, symbols)
  u = distance.T[distance.T > 0]  # dimension-major, like the decoder sees them
  b = _exponents(u)
  mantissa = u - (np.int64(1) << b)
  owner = np.repeat(np.arange(len(u)), b)
  position = np.arange(len(owner)) - np.repeat(np.cumsum(b) - b, b)
  bits = (mantissa[owner] >> (b[owner] - 1 - position)) & 1
  coder = constriction.stream.stack.AnsCoder()
  coder.encode_reverse(bits.astype(np.int32), _BIT_MODEL)
  coder.encode_reverse(b.astype(np.int32), _EXPONENT_MODEL)
  for j, dim_model in reversed(list(enumerate(_dimension_models(model)))):
    coder.encode_reverse(np.ascontiguousarray(index[:, j], np.int32), dim_model)
  return coder.get_compressed()


def decode(model: EntropyModel, words: np.ndarray, num: int) -> np.ndarray:
  """Decode ``num`` rows from the words of :func:`encode`: (num, d) int32, exactly as encoded."""
  if not isinstance(model, EntropyModel):
    raise ValueError(f"model must be an EntropyModel (from fit_entropy_model), got "
                     f"{type(model).__name__}.")
  words = _check_words(words)
  if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 0:
    raise ValueError(f"num must be a non-negative int (the number of encoded rows), got {num!r}.")
  num = int(num)
  coder = constriction.stream.stack.AnsCoder(words)
  index = np.stack([coder.decode(dim_model, num).astype(np.int64)
                    for dim_model in _dimension_models(model)], axis=1).reshape(num, model.dim)
  sizes = model.alphabet_sizes
  low, high = index == 0, index == (sizes - 1)
  escaped_t = (low | high).T
  b = coder.decode(_EXPONENT_MODEL, int(escaped_t.sum())).astype(np.int64)
  bits = coder.decode(_BIT_MODEL, int(b.sum())).astype(np.int64)
  if not coder.is_empty():
    raise ValueError("the stream holds more data than num rows of this model need; pass the num "
                     "and the model the words were encoded with.")
  owner = np.repeat(np.arange(len(b)), b)
  position = np.arange(len(owner)) - np.repeat(np.cumsum(b) - b, b)
  u = np.int64(1) << b
  np.add.at(u, owner, bits << (b[owner] - 1 - position))
  distance_t = np.zeros(escaped_t.shape, np.int64)
  distance_t[escaped_t] = u
  distance = distance_t.T
  symbols = np.where(low, model.lo - distance,
                     np.where(high, model.hi + distance, model.lo + index - 1))
  if symbols.size and (symbols.min() < INT32_MIN or symbols.max() > INT32_MAX):
    raise ValueError("decoded symbols leave the int32 range: the words, num or model do not match "
                     "the ones used by encode.")
  return symbols.astype(np.int32)


def _check_words(words) -> np.ndarray:
  words = np.asarray(words)
  if words.dtype != np.uint32 or words.ndim != 1:
    raise ValueError(f"words must be a 1-d uint32 array (the output of encode), got dtype "
                     f"{words.dtype} and shape {words.shape}.")
  return np.ascontiguousarray(words)


def compressed_bits(words: np.ndarray) -> int:
  """The stream's actual size in bits: 32 times the number of words."""
  return 32 * int(_check_words(words).shape[0])


# ------------------------------------------------------------------------------------------------
# Classic image codecs.


def image_codec_bits(images: np.ndarray, fmt: str,
                     quality: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Save each grey image on its own with Pillow; return (n,) file bits and the decoded images.

  ``fmt`` is 'JPEG' (``quality`` 1-100 required, ``optimize=True`` Huffman tables), 'WEBP'
  (``quality`` 1-100 lossy with ``method=6``; ``None`` is lossless WebP) or 'PNG' (lossless,
  ``optimize=True``; ``quality`` must be None), case-insensitive. The bits are the whole file,
  headers included. ``images`` is uint8 of shape (n, H, W) or (n, H, W, 1); the decoded images
  have the same shape and dtype.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"images must be uint8 (0..255), got dtype {images.dtype}; convert with "
                     "np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for x in [0, 1].")
  if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 1)):
    raise ValueError(f"images must be grey, of shape (n, H, W) or (n, H, W, 1), got shape "
                     f"{images.shape}.")
  if not isinstance(fmt, str) or fmt.upper() not in IMAGE_FORMATS:
    raise ValueError(f"unknown image format {fmt!r}; use one of {', '.join(IMAGE_FORMATS)}.")
  fmt = fmt.upper()
  if quality is not None and (isinstance(quality, bool) or not isinstance(quality,
                                                                          numbers.Integral)):
    raise ValueError(f"quality must be an int in 1..100 or None, got {quality!r}.")
  if fmt == "PNG" and quality is not None:
    raise ValueError(f"PNG is lossless and takes no quality (got {quality}); pass quality=None.")
  if fmt == "JPEG" and quality is None:
    raise ValueError("JPEG needs a quality in 1..100 (it has no lossless mode); pass e.g. "
                     "quality=75.")
  if quality is not None and not 1 <= quality <= 100:
    raise ValueError(f"quality must be in 1..100, got {quality}.")
  if fmt == "WEBP" and not features.check("webp"):
    raise RuntimeError("this Pillow was built without WebP support; install a Pillow wheel with "
                       "libwebp (pip install --force-reinstall pillow) or skip the WEBP baseline.")
  if fmt == "JPEG":
    options = dict(quality=int(quality), optimize=True)
  elif fmt == "WEBP":
    options = dict(lossless=True) if quality is None else dict(quality=int(quality), method=6)
  else:
    options = dict(optimize=True)
  grey = images.reshape(images.shape[:3])
  bits = np.zeros(len(grey), np.int64)
  decoded = np.empty_like(grey)
  for i, image in enumerate(grey):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    bits[i] = 8 * buffer.tell()
    buffer.seek(0)
    with Image.open(buffer) as reread:
      decoded[i] = np.asarray(reread.convert("L"))
  return bits, decoded.reshape(images.shape)
