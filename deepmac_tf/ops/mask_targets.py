"""Mask targets from groundtruth: instance masks cropped at their boxes (the
one target-cropping rule of every meta-architecture: Deep-MAC and Deep-MARC)
and filled box masks (spec sections 5.1, 5.2). Pure functions; XLA-friendly
except the ``crop_and_resize`` method."""

import tensorflow as tf

from deepmac_tf.ops import roi_crop


# crop_instance_masks methods: roi_crop's two XLA-friendly formulations, and
# tf.image.crop_and_resize (no XLA kernel; fastest on CPU / GPU, and it reads
# each box's mask by index instead of copying full-size masks per box).
CROP_AND_RESIZE = 'crop_and_resize'
CROP_METHODS = roi_crop.METHODS + (CROP_AND_RESIZE,)


def crop_instance_masks(masks, boxes, mask_size, crop_method='gather',
                        instance_indices=None):
  """Groundtruth mask targets: instance masks cropped at training boxes.

  Soft (bilinear, ``crop_and_resize`` sampling) values, not binarized; no
  gradient flows through. Every method gives the same values.

  Args:
    masks: [B, N, H, W] instance masks at the input resolution.
    boxes: [B, M, 4] boxes normalized to the padded input.
    mask_size: python int S.
    crop_method: one of CROP_METHODS.
    instance_indices: optional [B, M] int, the instance whose mask box m
      crops; None = instance m (M = N).

  Returns:
    [B, M, S, S] float32 targets.
  """
  if crop_method not in CROP_METHODS:
    raise ValueError(f'crop_method must be one of {CROP_METHODS}, got '
                     f'{crop_method!r}.')
  masks = tf.stop_gradient(tf.cast(masks, tf.float32))
  boxes = tf.stop_gradient(tf.cast(boxes, tf.float32))
  if crop_method == CROP_AND_RESIZE:
    shape = tf.shape(masks)
    batch, num_masks = shape[0], shape[1]
    num_boxes = tf.shape(boxes)[1]
    if instance_indices is None:
      instance_indices = tf.broadcast_to(tf.range(num_boxes)[None],
                                         tf.stack([batch, num_boxes]))
    image_index = (tf.range(batch)[:, None] * num_masks +
                   tf.cast(instance_indices, tf.int32))
    crops = tf.image.crop_and_resize(
        tf.reshape(masks, tf.stack([batch * num_masks, shape[2], shape[3], 1])),
        tf.reshape(boxes, [-1, 4]), tf.reshape(image_index, [-1]),
        [mask_size, mask_size])
    crops = tf.reshape(crops, tf.stack([batch, num_boxes, mask_size,
                                        mask_size]))
  else:
    if instance_indices is not None:
      masks = tf.gather(masks, tf.cast(instance_indices, tf.int32),
                        batch_dims=1)
    crops = roi_crop.crop_and_resize_per_instance(masks, boxes, mask_size,
                                                  method=crop_method)
  return tf.stop_gradient(crops)


def fill_boxes(boxes, height, width):
  """Binary box masks (spec section 5.1).

  Pixel (i, j) is inside iff ymin * H <= i <= ymax * H and
  xmin * W <= j <= xmax * W (inclusive, scaled by H and W, not H - 1).

  Args:
    boxes: [B, N, 4] normalized boxes.
    height: scalar H.
    width: scalar W.

  Returns:
    [B, N, H, W] float32 of 0 / 1.
  """
  boxes = tf.cast(boxes, tf.float32)
  scale = tf.cast(tf.stack([height, width, height, width]), tf.float32)
  ymin, xmin, ymax, xmax = tf.unstack(boxes * scale, axis=-1)
  rows = tf.range(height, dtype=tf.float32)
  cols = tf.range(width, dtype=tf.float32)
  in_rows = tf.logical_and(rows >= ymin[..., None], rows <= ymax[..., None])
  in_cols = tf.logical_and(cols >= xmin[..., None], cols <= xmax[..., None])
  inside = tf.logical_and(in_rows[..., :, None], in_cols[..., None, :])
  return tf.cast(inside, tf.float32)
