"""Where metrics and images go: ``metrics.jsonl``, TensorBoard event files, PNG files.

``metrics.jsonl`` has one JSON object per write, ``{"step": N, "train/loss": ..., ...}``, with
namespaced keys. TensorBoard files are written with tensorboardX, which needs no TensorFlow. Only
process 0 writes.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Mapping

import jax
import numpy as np
from PIL import Image


def format_eta(seconds: float) -> str:
  """Seconds as H:MM:SS for progress lines."""
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
  """(N, H, W, C) floats in [0, 1] -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) uint8 grid."""
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  pixels = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
  for i in range(n):
    r, col = divmod(i, ncols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):pad + col * (w + pad) + w] = pixels[i]
  return grid


def save_png(path: str | pathlib.Path, grid: np.ndarray) -> None:
  grid = grid[..., 0] if grid.shape[-1] == 1 else grid
  Image.fromarray(grid).save(path)


def _drop_partial_last_line(path: pathlib.Path) -> None:
  """A run killed while writing a row leaves a line without its newline: cut it off, so that the
  resumed run's rows start on a line of their own."""
  if not path.exists() or path.stat().st_size == 0:
    return
  with open(path, "rb+") as f:
    f.seek(-1, 2)
    if f.read(1) == b"\n":
      return
    data = f.seek(0) or f.read()
    f.truncate(data.rfind(b"\n") + 1)


class MetricWriter:
  """Writes scalars to ``<workdir>/metrics.jsonl`` and TensorBoard, images to PNG and TensorBoard."""

  def __init__(self, workdir: str | pathlib.Path, *, tensorboard: bool = True):
    self.workdir = pathlib.Path(workdir)
    self.active = jax.process_index() == 0
    self._tb = None
    if self.active:
      self.workdir.mkdir(parents=True, exist_ok=True)
      path = self.workdir / "metrics.jsonl"
      _drop_partial_last_line(path)
      self._jsonl = open(path, "a", encoding="utf-8")
      if tensorboard:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self.active:
      return
    row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(k, float(v), int(step))

  def write_images(self, step: int, name: str, images: np.ndarray, ncols: int | None = None) -> pathlib.Path:
    """Saves a grid of ``images`` as ``<workdir>/<name>_<step>.png``; returns the path."""
    path = self.workdir / f"{name.replace('/', '_')}_{int(step):08d}.png"
    if self.active:
      grid = image_grid(images, ncols)
      save_png(path, grid)
      if self._tb is not None:
        self._tb.add_image(name, grid, int(step), dataformats="HWC")
    return path

  def close(self) -> None:
    if self.active:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()
