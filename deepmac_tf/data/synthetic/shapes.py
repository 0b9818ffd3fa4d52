"""Shape families of the synthetic dataset, rendered as boolean masks.

Every family is an implicit function of local, rotated, radius-normalized
coordinates ``(u, v)``: it returns True for points inside the shape. All
shapes lie inside the unit disk, so an object of radius ``r`` stays inside a
``2r x 2r`` square around its center. Rendering is vectorized numpy evaluated
at pixel centers and only inside that square.
"""

import dataclasses

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


@dataclasses.dataclass(frozen=True)
class ParamRange:
  """The range a shape parameter is drawn from, and the values it may take.

  Attributes:
    low: smallest value drawn.
    high: largest value drawn (inclusive for integers).
    limits: (min, max) of the values that keep the shape well formed (inside
      the unit disk, non-empty); overrides must stay within them.
    integer: drawn with ``rng.integers`` instead of ``rng.uniform``.
  """
  low: float
  high: float
  limits: tuple
  integer: bool = False

  def draw(self, rng, low=None, high=None):
    low = self.low if low is None else low
    high = self.high if high is None else high
    if self.integer:
      return int(rng.integers(int(low), int(high) + 1))
    return float(rng.uniform(low, high))


# name -> (mask function, {parameter: ParamRange}); parameters are drawn in
# this order (changing it changes every dataset).
_FAMILIES = {
    'circle': (_circle, {}),
    'ellipse': (_ellipse, {'aspect': ParamRange(0.45, 0.75, (0.1, 1.0))}),
    'square': (_square, {'aspect': ParamRange(0.85, 1.0, (0.1, 1.0))}),
    'triangle': (_triangle, {'aspect': ParamRange(0.8, 1.0, (0.1, 1.0))}),
    'hexagon': (_hexagon, {'aspect': ParamRange(0.85, 1.0, (0.1, 1.0))}),
    'star': (_star, {'num_points': ParamRange(5, 6, (3, 12), integer=True),
                     'inner_ratio': ParamRange(0.38, 0.52, (0.05, 1.0))}),
    # Arms reach 0.92: half widths above 0.39 would leave the unit disk.
    'cross': (_cross, {'half_width': ParamRange(0.2, 0.32, (0.1, 0.39))}),
    'ring': (_ring, {'inner_ratio': ParamRange(0.45, 0.62, (0.0, 0.95))}),
    'crescent': (_crescent, {'offset': ParamRange(0.35, 0.55, (0.05, 1.0)),
                             'cut_radius': ParamRange(0.75, 0.9,
                                                      (0.1, 1.0))}),
    'l_shape': (_l_shape, {'arm_width': ParamRange(0.4, 0.6, (0.05, 0.7)),
                           'aspect': ParamRange(0.75, 1.0, (0.3, 1.0))}),
}

FAMILY_NAMES = tuple(_FAMILIES)
assert FAMILY_NAMES == classes.CLASS_NAMES, 'families must match classes'


def _check_family(name):
  if name not in _FAMILIES:
    raise errors.DataError(
        f'Unknown shape family {name!r}; expected one of '
        f'{", ".join(FAMILY_NAMES)}.')


def param_range(name, param):
  """The default ``ParamRange`` of one family's parameter.

  Raises:
    errors.DataError: unknown family or parameter (naming the known ones).
  """
  _check_family(name)
  ranges = _FAMILIES[name][1]
  if param not in ranges:
    raise errors.DataError(
        f'Shape family {name!r} has no parameter {param!r}; its parameters: '
        f'{", ".join(ranges) or "none"}.')
  return ranges[param]


def check_range_override(override):
  """Checks one ``(family, parameter, low, high)`` range override.

  Raises:
    errors.DataError: naming what is wrong with it.
  """
  if not isinstance(override, (tuple, list)) or len(override) != 4:
    raise errors.DataError(
        f'Shape range override {override!r}: expected (family, parameter, '
        'low, high).')
  name, param, low, high = override
  spec = param_range(name, param)
  kinds = (int, np.integer) if spec.integer else (int, float, np.number)
  lo_limit, hi_limit = spec.limits
  for value in (low, high):
    if isinstance(value, bool) or not isinstance(value, kinds) or not (
        lo_limit <= value <= hi_limit):
      kind = 'integers' if spec.integer else 'numbers'
      raise errors.DataError(
          f'Shape range override {override!r}: expected {kind} in '
          f'[{lo_limit}, {hi_limit}] with low <= high.')
  if low > high:
    raise errors.DataError(
        f'Shape range override {override!r}: low {low} > high {high}.')


def sample_shape_params(name, rng, range_overrides=()):
  """Draws the family-specific parameters of one shape.

  Args:
    name: a family name from ``FAMILY_NAMES``.
    rng: a ``numpy.random.Generator``.
    range_overrides: ``(family, parameter, low, high)`` tuples replacing the
      default ranges (``SceneConfig.shape_ranges``); others' are ignored.
      The number of draws does not change, so an override changes only the
      parameters it names.

  Returns:
    A dict of Python scalars (JSON-serializable).
  """
  _check_family(name)
  overrides = {param: (low, high)
               for family, param, low, high in range_overrides
               if family == name}
  return {param: spec.draw(rng, *overrides.get(param, (None, None)))
          for param, spec in _FAMILIES[name][1].items()}


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
