"""Composes synthetic scenes: textured shapes on a textured background.

Objects are drawn in order, so later objects occlude earlier ones. Each
annotated instance keeps its *visible* mask (what is left after occlusion)
and the tight box of that mask. Instances that keep too little of their area
are dropped from the annotations but stay drawn, as clutter. The last object
drawn is never occluded, so every scene has at least one instance unless it
is cut by the image border below the visibility thresholds.
"""

import dataclasses
import zlib

import numpy as np

from deepmac_tf import errors
from deepmac_tf.data.synthetic import classes
from deepmac_tf.data.synthetic import shapes
from deepmac_tf.data.synthetic import textures

_CONTRAST_TRIES = 5


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """How scenes are drawn. Sizes are fractions of ``image_size``.

  Attributes:
    image_size: height and width of the square images, in pixels.
    min_objects: fewest objects drawn per image (annotated or not).
    max_objects: most objects drawn per image.
    min_radius: smallest object radius, as a fraction of ``image_size``.
    max_radius: largest object radius, as a fraction of ``image_size``.
    min_visible_fraction: an instance is annotated only if at least this
      fraction of its area stays visible after occlusion.
    min_visible_pixels: ... and at least this many pixels at 64x64 (scaled
      with the image area).
    min_contrast: least RGB distance between an object's mean colour and the
      mean colour it covers (re-drawn a few times otherwise).
    noise_stddev: std-dev of the sensor noise added to the whole image.
    families: names of the shape families drawn (default: all classes).
    shape_ranges: ``(family, parameter, low, high)`` tuples replacing the
      default range of a shape parameter (``shapes.ParamRange``), e.g.
      ``(('star', 'inner_ratio', 0.2, 0.3),)``; empty (the default) keeps
      every dataset as it was. Only the named parameters change: the same
      random draws are made.
  """
  image_size: int = 64
  min_objects: int = 1
  max_objects: int = 4
  min_radius: float = 0.14
  max_radius: float = 0.30
  min_visible_fraction: float = 0.5
  min_visible_pixels: int = 16
  min_contrast: float = 40.0
  noise_stddev: float = 3.0
  families: tuple = classes.CLASS_NAMES
  shape_ranges: tuple = ()

  def validate(self):
    """Raises ``errors.ConfigError`` naming the first bad field."""
    def fail(field, expected):
      raise errors.ConfigError(
          f'SceneConfig.{field} = {getattr(self, field)!r}: expected '
          f'{expected}.')
    if not isinstance(self.image_size, (int, np.integer)) or (
        self.image_size < 16):
      fail('image_size', 'an integer >= 16')
    if self.min_objects < 1:
      fail('min_objects', 'an integer >= 1')
    if self.max_objects < self.min_objects:
      fail('max_objects', f'an integer >= min_objects ({self.min_objects})')
    if not 0.0 < self.min_radius <= 0.5:
      fail('min_radius', 'a fraction of the image size in (0, 0.5]')
    if not self.min_radius <= self.max_radius <= 0.5:
      fail('max_radius', f'a fraction in [min_radius ({self.min_radius}), '
           '0.5]')
    if self.image_size * self.min_radius < 2.0:
      fail('min_radius', 'at least 2 pixels at this image_size')
    if not 0.0 <= self.min_visible_fraction <= 1.0:
      fail('min_visible_fraction', 'a fraction in [0, 1]')
    if self.min_visible_pixels < 1:
      fail('min_visible_pixels', 'an integer >= 1')
    if self.min_contrast < 0 or self.noise_stddev < 0:
      fail('min_contrast' if self.min_contrast < 0 else 'noise_stddev',
           'a number >= 0')
    if not self.families:
      fail('families', 'at least one family name')
    for name in self.families:
      if name not in classes.CLASS_ID_BY_NAME:
        fail('families', f'names from {", ".join(classes.CLASS_NAMES)}')
    for override in self.shape_ranges:
      try:
        shapes.check_range_override(override)
      except errors.DataError as e:
        raise errors.ConfigError(f'SceneConfig.shape_ranges: {e}') from e
    return self


@dataclasses.dataclass
class Instance:
  """One annotated object.

  Attributes:
    class_id: 1-based class id (see ``classes.CLASSES``).
    class_name: family name.
    mask: [H, W] bool visible mask.
    bbox: (x, y, width, height) ints, the tight box of ``mask`` (COCO style).
    area: visible pixels.
    full_area: pixels before occlusion.
    texture: texture kind of the object.
  """
  class_id: int
  class_name: str
  mask: np.ndarray
  bbox: tuple
  area: int
  full_area: int
  texture: str


@dataclasses.dataclass
class Scene:
  """A rendered image and its annotations.

  Attributes:
    image: [H, W, 3] uint8 RGB.
    instances: annotated ``Instance``s in drawing order (back to front).
    num_clutter: objects drawn but not annotated (too occluded or cut).
    background_texture: texture kind of the background.
  """
  image: np.ndarray
  instances: list
  num_clutter: int
  background_texture: str


def scene_rng(seed, split, index):
  """The generator of one image: depends only on (seed, split, index).

  So a split's images do not change when another split's size does, and any
  image can be re-rendered alone.

  Args:
    seed: non-negative int dataset seed.
    split: split name, e.g. 'train' or 'val'.
    index: 0-based image index in the split.

  Returns:
    A ``numpy.random.Generator``.
  """
  if int(seed) < 0 or int(index) < 0:
    raise errors.ConfigError(
        f'seed and image index must be >= 0, got seed={seed}, index={index}.')
  split_key = zlib.crc32(str(split).encode('utf-8'))
  return np.random.default_rng([int(seed), split_key, int(index)])


def tight_box(mask):
  """(x, y, width, height) of the smallest box holding a non-empty mask."""
  rows = np.flatnonzero(np.any(mask, axis=1))
  cols = np.flatnonzero(np.any(mask, axis=0))
  return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1),
          int(rows[-1] - rows[0] + 1))


def _draw_object_mask(rng, config, family):
  """Samples pose and parameters of one shape -> [S, S] bool mask."""
  size = config.image_size
  radius = rng.uniform(config.min_radius, config.max_radius) * size
  margin = 0.8 * radius
  center = rng.uniform(margin, size - margin, size=2)
  rotation = rng.uniform(0.0, 2.0 * np.pi)
  params = shapes.sample_shape_params(family, rng, config.shape_ranges)
  return shapes.shape_mask(family, params, size, size, tuple(center), radius,
                           rotation)


def _paint(rng, config, image, mask):
  """Paints a texture into ``image`` where ``mask``; returns its kind.

  The texture is rendered only over the mask's box (feature sizes still
  follow ``image_size``) and re-drawn (a few times at most) while its mean
  colour is closer than ``config.min_contrast`` to the mean colour it covers.
  """
  x, y, w, h = tight_box(mask)
  window = mask[y:y + h, x:x + w]
  target = image[y:y + h, x:x + w]
  covered = target[window].mean(axis=0)
  for _ in range(_CONTRAST_TRIES):
    kind, texture = textures.random_texture(rng, h, w, config.image_size)
    painted = texture[window]
    if np.linalg.norm(painted.mean(axis=0) - covered) >= config.min_contrast:
      break
  target[window] = painted
  return kind


def render_scene(rng, config=None, families=None):
  """Renders one image with its instance annotations.

  Args:
    rng: a ``numpy.random.Generator`` (e.g. from ``scene_rng``).
    config: a ``SceneConfig`` (default: ``SceneConfig()``).
    families: optional list of family names to draw, in order (overrides the
      random object count and classes; used by tests and demos).

  Returns:
    A ``Scene``.
  """
  config = (config or SceneConfig()).validate()
  size = config.image_size
  background_kind, image = textures.random_texture(rng, size, size, size)
  if families is None:
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    families = [config.families[int(rng.integers(len(config.families)))]
                for _ in range(count)]
  owner = np.full((size, size), -1, dtype=np.int16)
  drawn = []  # (family, full_area, texture kind)
  for index, family in enumerate(families):
    mask = _draw_object_mask(rng, config, family)
    full_area = int(mask.sum())
    kind = _paint(rng, config, image, mask) if full_area else None
    owner[mask] = index
    drawn.append((family, full_area, kind))
  if config.noise_stddev > 0:
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(
        config.noise_stddev)
  image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

  min_pixels = config.min_visible_pixels * (size / 64.0)**2
  instances = []
  for index, (family, full_area, kind) in enumerate(drawn):
    visible = owner == index
    area = int(visible.sum())
    if (area == 0 or area < min_pixels or
        area < config.min_visible_fraction * full_area):
      continue
    instances.append(Instance(
        class_id=classes.CLASS_ID_BY_NAME[family], class_name=family,
        mask=visible, bbox=tight_box(visible), area=area,
        full_area=full_area, texture=kind))
  return Scene(image=image, instances=instances,
               num_clutter=len(drawn) - len(instances),
               background_texture=background_kind)
