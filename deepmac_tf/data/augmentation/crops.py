"""Square crops used by CenterNet / Deep-MAC configs (OD API semantics).

Parts of a crop outside the image are zero; boxes are moved into the crop
frame and clipped, and instances whose box falls outside the crop are removed
together with their masks and other per-instance fields.
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_IMAGE = InputFields.IMAGE
_BOXES = InputFields.BOXES
_MASKS = InputFields.INSTANCE_MASKS


def _crop_border(max_border, size):
  """Largest max_border / 2**k (k >= 0) that is at most size / 2.

  Crop centres are drawn at least this many pixels inside the image.
  """
  border = tf.cast(max_border, tf.float32)
  size = tf.cast(size, tf.float32)
  exponent = tf.math.ceil(tf.math.log(2.0 * border / size) / tf.math.log(2.0))
  divisor = tf.clip_by_value(tf.pow(2.0, exponent), 1.0, tf.maximum(border, 1.))
  return tf.cast(max_border, tf.int32) // tf.cast(divisor, tf.int32)


def _crop_window(tensor, y0, x0, crop_height, crop_width, height, width,
                 axis):
  """Takes rows [y0, y0 + crop_height) and columns [x0, x0 + crop_width).

  The window may extend beyond the ``height`` x ``width`` image: the outside
  is zero. ``axis`` is the row axis of ``tensor`` (0 for images [H, W, C],
  1 for masks [n, H, W, 1]).
  """
  top, left = tf.maximum(y0, 0), tf.maximum(x0, 0)
  bottom = tf.minimum(y0 + crop_height, height)
  right = tf.minimum(x0 + crop_width, width)
  bottom, right = tf.maximum(bottom, top), tf.maximum(right, left)
  if axis == 0:
    inside = tensor[top:bottom, left:right]
  else:
    inside = tensor[:, top:bottom, left:right]
  return tf.image.pad_to_bounding_box(inside, top - y0, left - x0,
                                      crop_height, crop_width)


def _apply_window(tensors, y0, x0, crop_height, crop_width):
  """Crops image and masks to a pixel window and moves the boxes."""
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  result = dict(tensors)
  result[_IMAGE] = _crop_window(image, y0, x0, crop_height, crop_width,
                                height, width, axis=0)
  if _MASKS in tensors:
    masks = instances.masks_as_images(tensors[_MASKS])
    result[_MASKS] = instances.images_as_masks(_crop_window(
        masks, y0, x0, crop_height, crop_width, height, width, axis=1))
  window = tf.cast(tf.stack([y0, x0, y0 + crop_height, x0 + crop_width]),
                   tf.float32)
  window /= tf.cast(tf.stack([height, width, height, width]), tf.float32)
  result[_BOXES] = instances.change_box_frame(tensors[_BOXES], window)
  return instances.clip_and_prune(result)


def random_square_crop_by_scale(tensors, max_border=128, scale_min=0.6,
                                scale_max=1.3, num_scales=8, seed=None):
  """Crops a random square of side scale x max(height, width).

  ``scale`` is one of ``num_scales`` evenly spaced values in [scale_min,
  scale_max]. The centre is drawn uniformly with at least a border of
  max_border / 2**k pixels (the largest such value <= half the image side)
  to the image edges. Outside-image parts of the square are zero. Output
  image: [side, side, 3].
  """
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  scales = tf.linspace(float(scale_min), float(scale_max), int(num_scales))
  scale = scales[instances.random_int(0, num_scales, seed)]
  side = tf.cast(scale * tf.cast(tf.maximum(height, width), tf.float32),
                 tf.int32)
  side = tf.maximum(side, 1)
  h_border = _crop_border(max_border, height)
  w_border = _crop_border(max_border, width)
  y_center = instances.random_int(h_border, height - h_border + 1, seed)
  x_center = instances.random_int(w_border, width - w_border + 1, seed)
  half = side // 2
  return _apply_window(tensors, y_center - half, x_center - half, side, side)


def random_scale_crop_and_pad_to_square(tensors, output_size=512,
                                        scale_min=0.1, scale_max=2.0,
                                        seed=None):
  """Rescales, crops and zero-pads to an output_size square.

  The image is resized so its longer side is output_size x U(scale_min,
  scale_max) (aspect kept; bilinear for the image, nearest neighbour for
  masks). When a side exceeds output_size, a random output_size window is
  taken; smaller images are zero-padded at the bottom / right. Output image:
  [output_size, output_size, 3].
  """
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  height = tf.cast(shape[0], tf.float32)
  width = tf.cast(shape[1], tf.float32)
  scale = tf.random.uniform([], scale_min, scale_max, seed=seed)
  longest = tf.maximum(height, width)
  target = scale * float(output_size)
  scaled_height = tf.maximum(tf.cast(target * height / longest, tf.int32), 1)
  scaled_width = tf.maximum(tf.cast(target * width / longest, tf.int32), 1)
  size = tf.stack([scaled_height, scaled_width])
  offset_y = tf.cast(
      tf.cast(tf.maximum(scaled_height - output_size, 0), tf.float32) *
      tf.random.uniform([], seed=seed), tf.int32)
  offset_x = tf.cast(
      tf.cast(tf.maximum(scaled_width - output_size, 0), tf.float32) *
      tf.random.uniform([], seed=seed), tf.int32)
  scaled = dict(tensors)
  scaled[_IMAGE] = tf.image.resize(image, size)
  if _MASKS in tensors:
    scaled[_MASKS] = instances.resize_masks(tensors[_MASKS], size)
  return _apply_window(scaled, offset_y, offset_x, output_size, output_size)
