"""Config files, one per model and dataset (and the study configs); the helpers that load one by
name and set a dotted field."""

import importlib


def load(name: str):
  """The config of ``configs/<module>.py`` for ``name`` = 'module' or 'module:arg'."""
  module, _, arg = name.partition(":")
  return importlib.import_module(f"configs.{module}").get_config(arg or None)


def set_field(config, path: str, value, *, if_present: bool = False) -> bool:
  """``config.a.b = value`` for ``path`` 'a.b'; with ``if_present``, only where the config has that
  field (otherwise nothing, and False)."""
  node = config
  *parents, leaf = path.split(".")
  for p in parents:
    if if_present and p not in node:
      return False
    node = node[p]
  if if_present and leaf not in node:
    return False
  node[leaf] = value
  return True
