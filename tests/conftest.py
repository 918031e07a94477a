"""Test set-up: 8 fake CPU devices (set before JAX starts), a persistent compilation cache and the
real datasets of ../shared/tfds."""

import os
import pathlib
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = pathlib.Path(__file__).resolve().parents[1]
# JAX's persistent compilation cache, shared by the pytest-xdist workers and the launch.py
# subprocesses of the tests: the tiny runs of many tests compile the same programs, and compilation
# is most of a tiny run (25 s cold, 4 s warm for the loop test). Every program is cached, however
# fast it compiled.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".cache" / "xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
_SHARED_TFDS = ROOT.parent / "shared" / "tfds"
if "TFDS_DATA_DIR" not in os.environ and _SHARED_TFDS.is_dir():
  os.environ["TFDS_DATA_DIR"] = str(_SHARED_TFDS)
sys.path.insert(0, str(ROOT))  # `configs` is a folder of the repository, not of the package

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tfds_dir() -> str:
  d = os.environ.get("TFDS_DATA_DIR")
  if not d or not pathlib.Path(d, "mnist").is_dir():
    pytest.skip("real MNIST not found: set TFDS_DATA_DIR to a folder holding mnist/")
  return d


def tiny_config(name: str = "vae_mnist", **overrides):
  """A config file's ':tiny' variant shrunk further to a seconds-long run on a small model."""
  import configs
  config = configs.load(f"{name}:tiny")
  config.model.hidden = (32,)
  config.model.latent_dim = 4
  config.batch_size = 32
  config.num_steps = 20
  config.steps_per_dispatch = 5
  config.eval.every_steps = 10
  config.eval.iwae_k = 4
  config.eval.iwae_k_chunk = 2
  config.eval.num_images = 4
  config.checkpoint.every_steps = 10
  config.checkpoint.async_save = False
  config.tensorboard = False
  config.mesh.shape = (1,)
  for path, value in overrides.items():
    configs.set_field(config, path, value)
  return config


def pytest_collection_modifyitems(config, items):
  """Tests marked ``heavy`` (whole training runs) first, the rest in file order: with the two
  pytest-xdist workers of the default run, the long tests then do not pile up at the end."""
  del config
  items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
