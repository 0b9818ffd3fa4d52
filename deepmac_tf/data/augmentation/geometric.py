"""Flips, 90-degree rotation, rescaling, padding and box jitter (OD API
preprocessor semantics), applied consistently to image, boxes and masks.

Each function takes and returns a tensor dict described in
``augmentation.instances`` (image [height, width, 3] float32 in [0, 255]).
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_IMAGE = InputFields.IMAGE
_BOXES = InputFields.BOXES
_MASKS = InputFields.INSTANCE_MASKS


_KEYS = {'image': _IMAGE, 'boxes': _BOXES, 'masks': _MASKS}


def _updated(tensors, **changes):
  """A copy of ``tensors`` with image / boxes / masks replaced."""
  result = dict(tensors)
  for key, value in changes.items():
    result[_KEYS[key]] = value
  return result


def _flip_horizontally(tensors):
  ymin, xmin, ymax, xmax = tf.unstack(tensors[_BOXES], axis=1)
  changes = {
      'image': tf.reverse(tensors[_IMAGE], [1]),
      'boxes': tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1),
  }
  if _MASKS in tensors:
    changes['masks'] = tf.reverse(tensors[_MASKS], [2])
  return _updated(tensors, **changes)


def _flip_vertically(tensors):
  ymin, xmin, ymax, xmax = tf.unstack(tensors[_BOXES], axis=1)
  changes = {
      'image': tf.reverse(tensors[_IMAGE], [0]),
      'boxes': tf.stack([1.0 - ymax, xmin, 1.0 - ymin, xmax], axis=1),
  }
  if _MASKS in tensors:
    changes['masks'] = tf.reverse(tensors[_MASKS], [1])
  return _updated(tensors, **changes)


def _rotate90(tensors):
  """Rotates 90 degrees counter-clockwise: (y, x) -> (1 - x, y)."""
  ymin, xmin, ymax, xmax = tf.unstack(tensors[_BOXES], axis=1)
  changes = {
      'image': tf.image.rot90(tensors[_IMAGE], k=1),
      'boxes': tf.stack([1.0 - xmax, ymin, 1.0 - xmin, ymax], axis=1),
  }
  if _MASKS in tensors:
    changes['masks'] = instances.images_as_masks(
        tf.image.rot90(instances.masks_as_images(tensors[_MASKS]), k=1))
  return _updated(tensors, **changes)


def _maybe(transform, tensors, probability, seed):
  return tf.cond(instances.coin_flip(probability, seed),
                 lambda: transform(tensors), lambda: dict(tensors))


def random_horizontal_flip(tensors, probability=0.5, seed=None):
  """Mirrors left-right with ``probability``."""
  return _maybe(_flip_horizontally, tensors, probability, seed)


def random_vertical_flip(tensors, probability=0.5, seed=None):
  """Mirrors top-bottom with ``probability``."""
  return _maybe(_flip_vertically, tensors, probability, seed)


def random_rotation90(tensors, probability=0.5, seed=None):
  """Rotates by 90 degrees counter-clockwise with ``probability``.

  The output image is [width, height, 3].
  """
  return _maybe(_rotate90, tensors, probability, seed)


def random_image_scale(tensors, min_scale_ratio=0.5, max_scale_ratio=2.0,
                       seed=None):
  """Rescales the image by a factor drawn from U(min, max).

  The new size is floor(size * factor) (at least 1 pixel). The image is
  resized bilinearly, masks by nearest neighbour; normalized boxes are
  unchanged.
  """
  image = tensors[_IMAGE]
  factor = tf.random.uniform([], min_scale_ratio, max_scale_ratio, seed=seed)
  size = tf.cast(tf.shape(image)[:2], tf.float32) * factor
  size = tf.maximum(tf.cast(size, tf.int32), 1)
  changes = {'image': tf.image.resize(image, size)}
  if _MASKS in tensors:
    changes['masks'] = instances.resize_masks(tensors[_MASKS], size)
  return _updated(tensors, **changes)


def random_pad_image(tensors, min_image_size=None, max_image_size=None,
                     pad_color=None, seed=None):
  """Pads to a random size, the original at a random offset (OD API).

  The padded height is drawn from U{min_h .. max_h - 1} (max_h when the range
  is empty), where min_image_size (default: the image size) and
  max_image_size (default: twice the image size) are raised to at least the
  image size; the original's top offset is U{0 .. padded - height - 1} (0
  without padding). Width likewise. Padding takes ``pad_color`` ([3] RGB;
  the image's mean colour when None); masks are zero-padded; boxes move into
  the padded frame.

  Args:
    tensors: one image's tensor dict (``augmentation.instances``).
    min_image_size / max_image_size: [2] (height, width) or None.
    pad_color: [3] or None.
    seed: random seed.
  """
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  size = tf.stack([height, width])
  if min_image_size is None:
    min_image_size = size
  if max_image_size is None:
    max_image_size = 2 * size
  min_image_size = tf.maximum(tf.cast(min_image_size, tf.int32), size)
  max_image_size = tf.maximum(tf.cast(max_image_size, tf.int32), size)

  def _draw(low, high):
    return tf.cond(high > low, lambda: instances.random_int(low, high, seed),
                   lambda: high)

  target_height = _draw(min_image_size[0], max_image_size[0])
  target_width = _draw(min_image_size[1], max_image_size[1])
  offset_y = instances.random_int(0, target_height - height, seed)
  offset_x = instances.random_int(0, target_width - width, seed)
  if pad_color is None:
    pad_color = tf.reduce_mean(image, axis=[0, 1])
  padded = instances.pad_with_color(image, offset_y, offset_x, target_height,
                                    target_width, pad_color)
  window = tf.stack([-offset_y, -offset_x, target_height - offset_y,
                     target_width - offset_x])
  window = tf.cast(window, tf.float32) / tf.cast(
      tf.stack([height, width, height, width]), tf.float32)
  changes = {
      'image': padded,
      'boxes': instances.change_box_frame(tensors[_BOXES], window),
  }
  if _MASKS in tensors:
    changes['masks'] = instances.pad_masks(tensors[_MASKS], offset_y, offset_x,
                                           target_height, target_width)
  return _updated(tensors, **changes)


def random_absolute_pad_image(tensors, max_height_padding=1,
                              max_width_padding=1, pad_color=None, seed=None):
  """Pads by a random number of pixels, the original at a random offset.

  As the OD API: ``random_pad_image`` with the image size as minimum and the
  image size + (max_height_padding, max_width_padding) as maximum, so the
  padded height is height + U{0 .. max_height_padding - 1} and the top offset
  U{0 .. padding - 1} (0 without padding); width likewise.
  """
  shape = tf.shape(tensors[_IMAGE])
  size = tf.stack([shape[0], shape[1]])
  return random_pad_image(
      tensors, min_image_size=size,
      max_image_size=size + tf.constant([max_height_padding,
                                         max_width_padding], tf.int32),
      pad_color=pad_color, seed=seed)


JITTER_MODES = ('default', 'expand', 'shrink', 'expand_symmetric',
                'shrink_symmetric', 'expand_symmetric_xy',
                'shrink_symmetric_xy')


def jitter_boxes(boxes, ratio=0.05, jitter_mode='default', seed=None):
  """Randomly perturbs boxes (OD API ``random_jitter_boxes`` semantics).

  Each extent is scaled by a factor 1 + U(lo, hi) with (lo, hi) = (-r, r)
  for 'default', (0, r) for 'expand*' and (-r, 0) for 'shrink*'.
  Symmetric modes keep the centre (one factor per axis; '_xy' modes share
  one) and limit the factor so the box stays in the image; the others scale
  each of the four half-extents on its own. Results are clipped to [0, 1].

  Args:
    boxes: [n, 4] normalized yxyx boxes.
    ratio: the jitter ratio r.
    jitter_mode: one of ``JITTER_MODES``.
    seed: random seed.

  Returns:
    [n, 4] jittered boxes.
  """
  if jitter_mode not in JITTER_MODES:
    raise ValueError(f'Unknown jitter mode {jitter_mode!r}; expected one of '
                     f'{JITTER_MODES}.')
  if jitter_mode.startswith('shrink'):
    low, high = -ratio, 0.0
  elif jitter_mode.startswith('expand'):
    low, high = 0.0, ratio
  else:
    low, high = -ratio, ratio
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  y_center, x_center = (ymin + ymax) / 2.0, (xmin + xmax) / 2.0
  height = tf.maximum(tf.abs(ymax - ymin), 1e-6)
  width = tf.maximum(tf.abs(xmax - xmin), 1e-6)
  num_boxes = tf.shape(boxes)[0]
  if 'symmetric' in jitter_mode:
    factors = 1.0 + tf.random.uniform([num_boxes, 2], low, high, seed=seed)
    max_h = tf.abs(tf.minimum(2.0 * y_center, 2.0 * (1.0 - y_center)) / height)
    max_w = tf.abs(tf.minimum(2.0 * x_center, 2.0 * (1.0 - x_center)) / width)
    h_factor, w_factor = factors[:, 0], factors[:, 1]
    if jitter_mode.endswith('_xy'):
      w_factor = h_factor
      max_h = max_w = tf.minimum(max_h, max_w)
    h_factor = tf.clip_by_value(h_factor, -max_h, max_h)
    w_factor = tf.clip_by_value(w_factor, -max_w, max_w)
    half_h, half_w = height * h_factor / 2.0, width * w_factor / 2.0
    jittered = [y_center - half_h, x_center - half_w,
                y_center + half_h, x_center + half_w]
  else:
    factors = 1.0 + tf.random.uniform([num_boxes, 4], low, high, seed=seed)
    jittered = [y_center - height * factors[:, 0] / 2.0,
                x_center - width * factors[:, 1] / 2.0,
                y_center + height * factors[:, 2] / 2.0,
                x_center + width * factors[:, 3] / 2.0]
  return tf.clip_by_value(tf.stack(jittered, axis=1), 0.0, 1.0)


def random_jitter_boxes(tensors, ratio=0.05, jitter_mode='default', seed=None):
  """Jitters the groundtruth boxes only (image and masks are unchanged).

  See ``jitter_boxes``. As in the OD API, this is box noise: masks keep the
  true object extent.
  """
  return _updated(tensors, boxes=jitter_boxes(tensors[_BOXES], ratio,
                                              jitter_mode, seed))
