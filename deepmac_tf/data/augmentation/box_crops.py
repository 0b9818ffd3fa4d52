"""Box-aware random crops of the OD API preprocessor: ``random_crop_image``,
``random_crop_pad_image`` and ``random_crop_to_aspect_ratio``.

A crop window (normalized yxyx) keeps the instances whose box overlaps it by
at least ``overlap_thresh`` of the box's own area (instances entirely outside
are dropped first); boxes move into the window's frame and, with
``clip_boxes``, are clipped to [0, 1]. Masks and every other per-instance
field follow their box (``augmentation.instances``). Each function takes and
returns one image's tensor dict.
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import geometric
from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_IMAGE = InputFields.IMAGE
_BOXES = InputFields.BOXES
_MASKS = InputFields.INSTANCE_MASKS
# sample_distorted_bounding_box tries this many windows (OD API value).
_MAX_ATTEMPTS = 100


def box_overlap_with_window(boxes, window):
  """Intersection area / box area ([n] float32) of boxes [n, 4] with a
  window [4] (normalized yxyx); 0 for empty boxes."""
  ymin = tf.maximum(boxes[:, 0], window[0])
  xmin = tf.maximum(boxes[:, 1], window[1])
  ymax = tf.minimum(boxes[:, 2], window[2])
  xmax = tf.minimum(boxes[:, 3], window[3])
  intersection = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)
  area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
  return tf.math.divide_no_nan(intersection, area)


def crop_to_window(tensors, offset, size, overlap_thresh=0.3,
                   clip_boxes=True):
  """Crops image and masks to a pixel window and selects the instances.

  Args:
    tensors: one image's tensor dict.
    offset: [2] int32 top-left (y, x) of the window in pixels.
    size: [2] int32 (height, width) of the window, inside the image.
    overlap_thresh: keep instances whose box overlaps the window by at least
      this fraction of the box's area.
    clip_boxes: clip the moved boxes to [0, 1].

  Returns:
    The cropped tensor dict.
  """
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  image_size = tf.cast(tf.stack([shape[0], shape[1]]), tf.float32)
  offset = tf.cast(offset, tf.int32)
  size = tf.cast(size, tf.int32)
  start = tf.cast(offset, tf.float32) / image_size
  end = tf.cast(offset + size, tf.float32) / image_size
  window = tf.concat([start, end], axis=0)
  boxes = tensors[_BOXES]
  outside = tf.logical_or(
      tf.logical_or(boxes[:, 0] >= window[2], boxes[:, 2] <= window[0]),
      tf.logical_or(boxes[:, 1] >= window[3], boxes[:, 3] <= window[1]))
  keep = tf.logical_and(
      tf.logical_not(outside),
      box_overlap_with_window(boxes, window) >= overlap_thresh)
  result = instances.gather_instances(tensors,
                                      tf.reshape(tf.where(keep), [-1]))
  result[_IMAGE] = tf.slice(image, tf.concat([offset, [0]], 0),
                            tf.concat([size, [-1]], 0))
  if _MASKS in result:
    masks = result[_MASKS]
    result[_MASKS] = tf.slice(masks, tf.concat([[0], offset], 0),
                              tf.concat([[-1], size], 0))
  moved = instances.change_box_frame(result[_BOXES], window)
  result[_BOXES] = (tf.clip_by_value(moved, 0.0, 1.0) if clip_boxes
                    else moved)
  return result


def _unless(random_coef, transform, tensors, seed):
  """``transform(tensors)``, except with probability ``random_coef``."""
  if random_coef <= 0.0:
    return transform(tensors)
  apply = tf.random.uniform([], seed=seed) > random_coef
  return tf.cond(apply, lambda: transform(tensors), lambda: dict(tensors))


def _strict_random_crop(tensors, min_object_covered, aspect_ratio_range,
                        area_range, overlap_thresh, clip_boxes, seed):
  image = tensors[_IMAGE]
  boxes = tf.clip_by_value(tensors[_BOXES], 0.0, 1.0)
  begin, size, _ = tf.image.sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=boxes[tf.newaxis],
      seed=seed or 0, min_object_covered=min_object_covered,
      aspect_ratio_range=aspect_ratio_range, area_range=area_range,
      max_attempts=_MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  return crop_to_window(tensors, begin[:2], size[:2], overlap_thresh,
                        clip_boxes)


def random_crop_image(tensors, min_object_covered=1.0,
                      aspect_ratio_range=(0.75, 1.33),
                      area_range=(0.1, 1.0), overlap_thresh=0.3,
                      clip_boxes=True, random_coef=0.0, seed=None):
  """Crops a random window (OD API ``random_crop_image``).

  The window is drawn by ``tf.image.sample_distorted_bounding_box``: it
  covers at least ``min_object_covered`` of some groundtruth box (any window
  when there is none), its aspect ratio (width / height) is in
  ``aspect_ratio_range`` and its area, as a fraction of the image, in
  ``area_range`` (100 attempts, else the whole image). Instances are kept as
  in ``crop_to_window``. With probability ``random_coef`` nothing changes.
  """
  return _unless(random_coef, lambda t: _strict_random_crop(
      t, min_object_covered, aspect_ratio_range, area_range, overlap_thresh,
      clip_boxes, seed), tensors, seed)


def random_crop_pad_image(tensors, min_object_covered=1.0,
                          aspect_ratio_range=(0.75, 1.33),
                          area_range=(0.1, 1.0), overlap_thresh=0.3,
                          clip_boxes=True, random_coef=0.0,
                          min_padded_size_ratio=(1.0, 1.0),
                          max_padded_size_ratio=(2.0, 2.0), pad_color=None,
                          seed=None):
  """``random_crop_image``, then ``random_pad_image`` (OD API).

  The padded size is drawn between min_padded_size_ratio and
  max_padded_size_ratio times the size of the image *before* the crop (as
  the OD API does), and at least the crop size.
  """
  shape = tf.shape(tensors[_IMAGE])
  size = tf.cast(tf.stack([shape[0], shape[1]]), tf.float32)
  cropped = random_crop_image(tensors, min_object_covered, aspect_ratio_range,
                              area_range, overlap_thresh, clip_boxes,
                              random_coef, seed)
  min_size = tf.cast(size * tf.constant(min_padded_size_ratio, tf.float32),
                     tf.int32)
  max_size = tf.cast(size * tf.constant(max_padded_size_ratio, tf.float32),
                     tf.int32)
  return geometric.random_pad_image(cropped, min_size, max_size, pad_color,
                                    seed)


def random_crop_to_aspect_ratio(tensors, aspect_ratio=1.0,
                                overlap_thresh=0.3, clip_boxes=True,
                                seed=None):
  """Crops the largest window of ``aspect_ratio`` (width / height) at a
  random position (OD API): the full height when the image is wider than the
  ratio (width = round(height * ratio)), else the full width (height =
  round(width / ratio)). Instances as in ``crop_to_window``."""
  shape = tf.shape(tensors[_IMAGE])
  height, width = shape[0], shape[1]
  height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
  wider = width_f / height_f >= aspect_ratio
  crop_height = tf.where(
      wider, height, tf.cast(tf.round(width_f / aspect_ratio), tf.int32))
  crop_width = tf.where(
      wider, tf.cast(tf.round(height_f * aspect_ratio), tf.int32), width)
  crop_height = tf.clip_by_value(crop_height, 1, height)
  crop_width = tf.clip_by_value(crop_width, 1, width)
  offset_y = instances.random_int(0, height - crop_height + 1, seed)
  offset_x = instances.random_int(0, width - crop_width + 1, seed)
  return crop_to_window(tensors, tf.stack([offset_y, offset_x]),
                        tf.stack([crop_height, crop_width]), overlap_thresh,
                        clip_boxes)
