"""Textures shared by objects and backgrounds of the synthetic dataset.

Objects and backgrounds draw from the SAME pool, so a model cannot tell an
object from the background by its local texture alone: it has to find the
boundary. Every texture is a vectorized numpy function of a random generator
and the canvas size returning float32 RGB values in [0, 255].
"""

import numpy as np

from deepmac_tf import errors

# Feature sizes (stripe periods, checker cells, blob grids) are given for a
# 64-pixel image and scaled with the image size.
_REFERENCE_SIZE = 64.0


def _colour(rng):
  """[3] float32: a uniformly random RGB colour."""
  return rng.uniform(0.0, 255.0, size=3).astype(np.float32)


def _two_colours(rng, min_distance=60.0):
  """Two RGB colours at least ``min_distance`` apart (a few tries)."""
  first = _colour(rng)
  second = _colour(rng)
  for _ in range(4):
    if np.linalg.norm(first - second) >= min_distance:
      break
    second = _colour(rng)
  return first, second


def _mix(first, second, weight):
  """Blends colours with a [H, W] weight in [0, 1] -> [H, W, 3] float32."""
  weight = weight.astype(np.float32)[..., None]
  return first + (second - first) * weight


def _rotated_coordinate(rng, height, width):
  """[H, W] float32 pixel coordinate along a random direction."""
  angle = rng.uniform(0.0, np.pi)
  ys = np.arange(height, dtype=np.float32)[:, None]
  xs = np.arange(width, dtype=np.float32)[None, :]
  return xs * np.float32(np.cos(angle)) + ys * np.float32(np.sin(angle))


def _bilinear_upsample(grid, height, width):
  """Bilinearly resamples a [gh, gw] grid to [height, width] (float32)."""
  gh, gw = grid.shape
  ys = np.linspace(0.0, gh - 1.0, height, dtype=np.float32)
  xs = np.linspace(0.0, gw - 1.0, width, dtype=np.float32)
  y0 = np.minimum(ys.astype(np.int64), gh - 2)
  x0 = np.minimum(xs.astype(np.int64), gw - 2)
  wy = (ys - y0)[:, None]
  wx = (xs - x0)[None, :]
  top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x0 + 1] * wx
  bottom = grid[y0 + 1][:, x0] * (1 - wx) + grid[y0 + 1][:, x0 + 1] * wx
  return (top * (1 - wy) + bottom * wy).astype(np.float32)


def flat(rng, height, width, scale):
  """One plain colour."""
  del scale
  return np.broadcast_to(_colour(rng), (height, width, 3)).copy()


def stripes(rng, height, width, scale):
  """Two-colour stripes at a random angle, period 4-12 px at 64x64."""
  first, second = _two_colours(rng)
  period = rng.uniform(4.0, 12.0) * scale
  phase = rng.uniform(0.0, 1.0)
  coordinate = _rotated_coordinate(rng, height, width) / period + phase
  return _mix(first, second, np.mod(coordinate, 1.0) < 0.5)


def checker(rng, height, width, scale):
  """Two-colour checkerboard, cells 3-9 px at 64x64, random offset."""
  first, second = _two_colours(rng)
  cell = rng.uniform(3.0, 9.0) * scale
  oy, ox = rng.uniform(0.0, 2.0 * cell, size=2)
  ys = np.floor((np.arange(height) + oy) / cell).astype(np.int64)[:, None]
  xs = np.floor((np.arange(width) + ox) / cell).astype(np.int64)[None, :]
  return _mix(first, second, (ys + xs) % 2 == 1)


def blobs(rng, height, width, scale):
  """Soft-edged two-colour blobs from thresholded smooth noise."""
  del scale  # The grid is relative to the canvas.
  first, second = _two_colours(rng)
  cells = int(rng.integers(3, 8))
  grid = rng.uniform(0.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
  noise = _bilinear_upsample(grid, height, width)
  sharpness = rng.uniform(4.0, 20.0)
  return _mix(first, second, np.clip((noise - 0.5) * sharpness + 0.5, 0, 1))


def gradient(rng, height, width, scale):
  """Linear gradient between two colours along a random direction."""
  del scale
  first, second = _two_colours(rng)
  coordinate = _rotated_coordinate(rng, height, width)
  low, high = coordinate.min(), coordinate.max()
  return _mix(first, second, (coordinate - low) / max(high - low, 1e-6))


def two_colour(rng, height, width, scale):
  """Random per-pixel (or per-2x2 at 128+) mix of two colours."""
  first, second = _two_colours(rng)
  block = max(int(round(scale)), 1)
  bh, bw = -(-height // block), -(-width // block)
  pick = rng.uniform(size=(bh, bw)) < rng.uniform(0.2, 0.8)
  pick = np.repeat(np.repeat(pick, block, axis=0), block, axis=1)
  return _mix(first, second, pick[:height, :width])


def pixel_noise(rng, height, width, scale):
  """One colour with strong per-pixel Gaussian noise."""
  del scale
  base = _colour(rng)
  sigma = rng.uniform(15.0, 45.0)
  noise = rng.standard_normal((height, width, 3), dtype=np.float32) * sigma
  return np.clip(base + noise, 0.0, 255.0)


TEXTURES = {
    'flat': flat,
    'stripes': stripes,
    'checker': checker,
    'blobs': blobs,
    'gradient': gradient,
    'two_colour': two_colour,
    'pixel_noise': pixel_noise,
}
TEXTURE_NAMES = tuple(TEXTURES)


def random_texture(rng, height, width, image_size=None):
  """Draws a texture kind uniformly from the pool and renders it.

  Args:
    rng: a ``numpy.random.Generator``.
    height: canvas height in pixels.
    width: canvas width in pixels.
    image_size: size that sets feature scale (default: max(height, width)).

  Returns:
    (name, [height, width, 3] float32 array in [0, 255]).
  """
  if height <= 0 or width <= 0:
    raise errors.DataError(
        f'Texture canvas must be non-empty, got {height}x{width}.')
  scale = float(image_size or max(height, width)) / _REFERENCE_SIZE
  name = TEXTURE_NAMES[int(rng.integers(len(TEXTURE_NAMES)))]
  return name, TEXTURES[name](rng, height, width, scale)
