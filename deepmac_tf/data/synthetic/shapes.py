"""Shape families of the synthetic dataset, rendered as boolean masks.

Every family is an implicit function of local, rotated, radius-normalized
coordinates ``(u, v)``: it returns True for points inside the shape. All
shapes lie inside the unit disk, so an object of radius ``r`` stays inside a
``2r x 2r`` square around its center. Rendering is vectorized numpy evaluated
at pixel centers and only inside that square.
"""

import numpy as np

from deepmac_tf import errors
from deepmac_tf.data.synthetic import classes


def _star_polygon(u, v, num_points, inner_ratio):
  """Star polygon: vertices alternate between radius 1 and ``inner_ratio``.

  A regular n-gon is the special case ``inner_ratio = cos(pi / n)`` (the
  "inner" vertices are then edge midpoints). One outer vertex points to -v.

  Args:
    u: [...] float array, local x coordinates (unit = object radius).
    v: [...] float array, local y coordinates.
    num_points: number of outer vertices.
    inner_ratio: radius of the inner vertices, in (0, 1].

  Returns:
    [...] bool array.
  """
  rho = np.hypot(u, v)
  half = np.pi / num_points
  phi = np.arctan2(v, u) + np.pi / 2  # Outer vertex at angle -pi/2 (up).
  t = np.mod(phi, 2 * half)
  t = np.minimum(t, 2 * half - t)  # Angle to the nearest outer vertex.
  # Polar equation of the edge from (1, 0) to (inner_ratio, half).
  boundary = inner_ratio * np.sin(half) / (
      np.sin(t) + inner_ratio * np.sin(half - t))
  return rho <= boundary


def _circle(u, v, params):
  del params
  return u * u + v * v <= 1.0


def _ellipse(u, v, params):
  return u * u + (v / params['aspect'])**2 <= 1.0


def _square(u, v, params):
  return _star_polygon(u, v / params['aspect'], 4, np.cos(np.pi / 4))


def _triangle(u, v, params):
  return _star_polygon(u, v / params['aspect'], 3, 0.5)


def _hexagon(u, v, params):
  return _star_polygon(u, v / params['aspect'], 6, np.cos(np.pi / 6))


def _star(u, v, params):
  return _star_polygon(u, v, params['num_points'], params['inner_ratio'])


def _cross(u, v, params):
  half_width, arm = params['half_width'], 0.92
  au, av = np.abs(u), np.abs(v)
  return ((au <= half_width) & (av <= arm)) | ((av <= half_width) & (au <= arm))


def _ring(u, v, params):
  r2 = u * u + v * v
  return (r2 <= 1.0) & (r2 >= params['inner_ratio']**2)


def _crescent(u, v, params):
  offset, cut = params['offset'], params['cut_radius']
  return (u * u + v * v <= 1.0) & ((u - offset)**2 + v * v > cut * cut)


def _l_shape(u, v, params):
  extent, width = 0.7, params['arm_width']
  height = extent * params['aspect']
  inside = (np.abs(u) <= extent) & (np.abs(v) <= height)
  return inside & ((u <= -extent + width) | (v >= height - width))


# name -> (mask function, parameter sampler).
_FAMILIES = {
    'circle': (_circle, lambda rng: {}),
    'ellipse': (_ellipse, lambda rng: {'aspect': rng.uniform(0.45, 0.75)}),
    'square': (_square, lambda rng: {'aspect': rng.uniform(0.85, 1.0)}),
    'triangle': (_triangle, lambda rng: {'aspect': rng.uniform(0.8, 1.0)}),
    'hexagon': (_hexagon, lambda rng: {'aspect': rng.uniform(0.85, 1.0)}),
    'star': (_star, lambda rng: {'num_points': int(rng.integers(5, 7)),
                                 'inner_ratio': rng.uniform(0.38, 0.52)}),
    'cross': (_cross, lambda rng: {'half_width': rng.uniform(0.2, 0.32)}),
    'ring': (_ring, lambda rng: {'inner_ratio': rng.uniform(0.45, 0.62)}),
    'crescent': (_crescent, lambda rng: {'offset': rng.uniform(0.35, 0.55),
                                         'cut_radius': rng.uniform(0.75, 0.9)}),
    'l_shape': (_l_shape, lambda rng: {'arm_width': rng.uniform(0.4, 0.6),
                                       'aspect': rng.uniform(0.75, 1.0)}),
}

FAMILY_NAMES = tuple(_FAMILIES)
assert FAMILY_NAMES == classes.CLASS_NAMES, 'families must match classes'


def _check_family(name):
  if name not in _FAMILIES:
    raise errors.DataError(
        f'Unknown shape family {name!r}; expected one of '
        f'{", ".join(FAMILY_NAMES)}.')


def sample_shape_params(name, rng):
  """Draws the family-specific parameters of one shape.

  Args:
    name: a family name from ``FAMILY_NAMES``.
    rng: a ``numpy.random.Generator``.

  Returns:
    A dict of Python scalars (JSON-serializable).
  """
  _check_family(name)
  params = _FAMILIES[name][1](rng)
  return {k: (int(x) if isinstance(x, (int, np.integer)) else float(x))
          for k, x in params.items()}


def shape_mask(name, params, height, width, center_yx, radius, rotation):
  """Renders one shape as a boolean mask of the whole image.

  Args:
    name: a family name from ``FAMILY_NAMES``.
    params: dict from ``sample_shape_params``.
    height: image height in pixels.
    width: image width in pixels.
    center_yx: (y, x) object center in pixels (pixel centers sit at +0.5).
    radius: object radius in pixels; the shape fits in the disk of it.
    rotation: rotation in radians (counter-clockwise in image coordinates).

  Returns:
    [height, width] bool array (parts outside the image are cut off).
  """
  _check_family(name)
  if radius <= 0:
    raise errors.DataError(f'Shape radius must be > 0, got {radius}.')
  cy, cx = center_yx
  mask = np.zeros((height, width), dtype=bool)
  y0 = max(int(np.floor(cy - radius)) - 1, 0)
  y1 = min(int(np.ceil(cy + radius)) + 1, height)
  x0 = max(int(np.floor(cx - radius)) - 1, 0)
  x1 = min(int(np.ceil(cx + radius)) + 1, width)
  if y0 >= y1 or x0 >= x1:
    return mask
  dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - cy)[:, None]
  dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - cx)[None, :]
  cos, sin = np.cos(rotation), np.sin(rotation)
  u = (dx * cos + dy * sin) / radius
  v = (dy * cos - dx * sin) / radius
  mask[y0:y1, x0:x1] = _FAMILIES[name][0](u, v, params)
  return mask


def box_fill_ratio(mask):
  """Fraction of the mask's tight bounding box that the mask covers.

  Args:
    mask: [height, width] bool array.

  Returns:
    A float in [0, 1]; 0 for an empty mask.
  """
  rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
  if not rows.any():
    return 0.0
  r = np.flatnonzero(rows)
  c = np.flatnonzero(cols)
  box_area = (r[-1] - r[0] + 1) * (c[-1] - c[0] + 1)
  return float(mask.sum()) / float(box_area)
