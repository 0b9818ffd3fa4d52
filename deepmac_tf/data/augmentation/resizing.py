"""Resizing steps of the OD API preprocessor, and self-concatenation.

Images are resized with the chosen method, masks with nearest neighbour (so
they stay 0/1 and keep matching the image); normalized boxes are unchanged
by a resize.
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_IMAGE = InputFields.IMAGE
_BOXES = InputFields.BOXES
_MASKS = InputFields.INSTANCE_MASKS

# The four methods random_resize_method picks from (OD API order).
RANDOM_RESIZE_METHODS = (tf.image.ResizeMethod.BILINEAR,
                         tf.image.ResizeMethod.NEAREST_NEIGHBOR,
                         tf.image.ResizeMethod.BICUBIC,
                         tf.image.ResizeMethod.AREA)


def resize_image(tensors, new_height, new_width,
                 method=tf.image.ResizeMethod.BILINEAR):
  """Resizes image (``method``) and masks (nearest) to new_height x
  new_width."""
  size = tf.stack([new_height, new_width])
  result = dict(tensors)
  result[_IMAGE] = tf.image.resize(tensors[_IMAGE], size, method=method)
  if _MASKS in tensors:
    result[_MASKS] = instances.resize_masks(tensors[_MASKS], size)
  return result


def random_resize_method(tensors, target_height, target_width, seed=None):
  """``resize_image`` to the target size with a method drawn uniformly from
  bilinear, nearest neighbour, bicubic and area (OD API)."""
  index = instances.random_int(0, len(RANDOM_RESIZE_METHODS), seed)
  image = tensors[_IMAGE]
  size = tf.stack([target_height, target_width])
  branches = [
      lambda m=method: tf.image.resize(image, size, method=m)
      for method in RANDOM_RESIZE_METHODS]
  result = resize_image(tensors, target_height, target_width)
  result[_IMAGE] = tf.switch_case(index, branches)
  return result


def random_downscale_to_target_pixels(tensors, min_target_pixels=300000,
                                      max_target_pixels=500000,
                                      random_coef=0.0, seed=None):
  """Downscales (aspect kept) to a pixel count from U{min .. max - 1} when
  the image has more pixels than that (OD API): new side =
  int(side * sqrt(target / pixels)). Skipped with probability
  ``random_coef``."""
  shape = tf.shape(tensors[_IMAGE])
  pixels = shape[0] * shape[1]
  apply = tf.random.uniform([], seed=seed) >= random_coef
  target = instances.random_int(min_target_pixels, max_target_pixels, seed)
  scale = tf.sqrt(tf.cast(target, tf.float32) / tf.cast(pixels, tf.float32))
  new_height = tf.cast(scale * tf.cast(shape[0], tf.float32), tf.int32)
  new_width = tf.cast(scale * tf.cast(shape[1], tf.float32), tf.int32)
  return tf.cond(
      tf.logical_and(apply, pixels > target),
      lambda: resize_image(tensors, tf.maximum(new_height, 1),
                           tf.maximum(new_width, 1)),
      lambda: dict(tensors))


def _concat_with_itself(tensors, axis):
  """Image (and masks) next to a copy of itself along ``axis`` (0: below,
  1: to the right); every instance appears twice."""
  boxes = tensors[_BOXES]
  n = tf.shape(boxes)[0]
  doubled = instances.gather_instances(
      tensors, tf.concat([tf.range(n), tf.range(n)], axis=0))
  if axis == 0:
    scale, shift = [0.5, 1.0, 0.5, 1.0], [0.5, 0.0, 0.5, 0.0]
  else:
    scale, shift = [1.0, 0.5, 1.0, 0.5], [0.0, 0.5, 0.0, 0.5]
  scaled = boxes * tf.constant(scale)
  doubled[_BOXES] = tf.concat([scaled, scaled + tf.constant(shift)], axis=0)
  doubled[_IMAGE] = tf.concat([tensors[_IMAGE]] * 2, axis=axis)
  if _MASKS in tensors:
    # Each instance keeps its mask in its own copy of the image.
    masks = tensors[_MASKS]
    empty = tf.zeros_like(masks)
    doubled[_MASKS] = tf.concat(
        [tf.concat([masks, empty], axis=axis + 1),
         tf.concat([empty, masks], axis=axis + 1)], axis=0)
  return doubled


def random_self_concat_image(tensors, concat_vertical_probability=0.1,
                             concat_horizontal_probability=0.1, seed=None):
  """With these probabilities, puts a copy of the image below, then to the
  right (OD API); boxes are rescaled and duplicated, and, unlike the OD API
  (which leaves them out), masks and the other per-instance fields follow."""
  for axis, probability in ((0, concat_vertical_probability),
                            (1, concat_horizontal_probability)):
    tensors = tf.cond(instances.coin_flip(probability, seed),
                      lambda t=tensors, a=axis: _concat_with_itself(t, a),
                      lambda t=tensors: dict(t))
  return tensors
