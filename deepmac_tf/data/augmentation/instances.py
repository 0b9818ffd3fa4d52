"""Helpers shared by augmentation steps: per-instance fields and box frames.

A step receives and returns a dict keyed by ``fields.InputFields`` holding one
image: ``image`` [height, width, 3] float32 in [0, 255], ``groundtruth_boxes``
[num_instances, 4] normalized yxyx, optionally ``groundtruth_instance_masks``
[num_instances, height, width], and any of the per-instance vectors in
``PER_INSTANCE_KEYS``. Keys a step does not know pass through unchanged.
"""

import tensorflow as tf

from deepmac_tf.data.fields import InputFields

# Fields indexed by instance along axis 0; removing an instance removes its
# row from every one of them.
PER_INSTANCE_KEYS = (
    InputFields.BOXES,
    InputFields.CLASSES,
    InputFields.WEIGHTS,
    InputFields.IS_CROWD,
    InputFields.AREA,
    InputFields.INSTANCE_MASKS,
    InputFields.MASK_WEIGHTS,
)


def gather_instances(tensors, indices):
  """Keeps the instances at ``indices`` [k] in every per-instance field."""
  return {key: tf.gather(value, indices) if key in PER_INSTANCE_KEYS else value
          for key, value in tensors.items()}


def change_box_frame(boxes, window):
  """Expresses boxes relative to ``window``.

  Args:
    boxes: [n, 4] normalized yxyx boxes.
    window: [4] yxyx window in the same frame (may extend beyond [0, 1]).

  Returns:
    [n, 4] boxes normalized so that ``window`` becomes [0, 0, 1, 1].
  """
  window = tf.cast(window, tf.float32)
  height = window[2] - window[0]
  width = window[3] - window[1]
  offset = tf.stack([window[0], window[1], window[0], window[1]])
  scale = tf.stack([height, width, height, width])
  return (boxes - offset) / scale


def clip_and_prune(tensors):
  """Clips boxes to [0, 1] and removes instances whose box became empty.

  Removal covers every per-instance field (masks, classes, weights, ...).
  """
  boxes = tf.clip_by_value(tensors[InputFields.BOXES], 0.0, 1.0)
  tensors = dict(tensors)
  tensors[InputFields.BOXES] = boxes
  keep = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
  indices = tf.reshape(tf.where(keep), [-1])
  return gather_instances(tensors, indices)


def coin_flip(probability, seed=None):
  """A scalar bool that is True with ``probability``."""
  return tf.random.uniform([], seed=seed) < probability


def random_int(minval, maxval, seed=None):
  """A scalar int32 drawn uniformly from [minval, maxval) (minval if empty)."""
  minval = tf.cast(minval, tf.int32)
  maxval = tf.maximum(tf.cast(maxval, tf.int32), minval + 1)
  return tf.random.uniform([], minval, maxval, dtype=tf.int32, seed=seed)


def masks_as_images(masks):
  """[n, H, W] masks -> [n, H, W, 1] for tf.image ops."""
  return masks[:, :, :, tf.newaxis]


def images_as_masks(images):
  """[n, H, W, 1] -> [n, H, W]."""
  return images[:, :, :, 0]


def resize_masks(masks, size):
  """Nearest-neighbour resize of [n, H, W] masks to ``size`` [2]."""
  resized = tf.image.resize(masks_as_images(masks), size,
                            method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
  return images_as_masks(resized)


def pad_masks(masks, offset_height, offset_width, target_height, target_width):
  """Zero-pads [n, H, W] masks, placing them at the offset."""
  padded = tf.image.pad_to_bounding_box(
      masks_as_images(masks), offset_height, offset_width, target_height,
      target_width)
  return images_as_masks(padded)


def pad_with_color(image, offset_height, offset_width, target_height,
                   target_width, color):
  """Pads an image [H, W, C] with a per-channel ``color`` [C].

  Original pixels are copied exactly (the colour is added only where the
  padding mask is 1).
  """
  padded = tf.image.pad_to_bounding_box(image, offset_height, offset_width,
                                        target_height, target_width)
  inside = tf.image.pad_to_bounding_box(
      tf.ones_like(image[:, :, :1]), offset_height, offset_width,
      target_height, target_width)
  color = tf.reshape(tf.cast(color, image.dtype), [1, 1, -1])
  return padded + (1.0 - inside) * color
