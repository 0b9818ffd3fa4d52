"""Mask targets from groundtruth: instance masks cropped at their boxes (the
one target-cropping rule of every meta-architecture) and filled box masks
(spec sections 5.1, 5.2). Pure functions, XLA-friendly."""

import tensorflow as tf

from deepmac_tf.ops import roi_crop


def crop_instance_masks(masks, boxes, mask_size, crop_method='gather'):
  """Groundtruth mask targets: each instance's mask cropped at its box.

  Soft (bilinear) values, not binarized; no gradient flows through.

  Args:
    masks: [B, N, H, W] instance masks at the input resolution.
    boxes: [B, N, 4] boxes normalized to the padded input.
    mask_size: python int S.
    crop_method: ``roi_crop.crop_and_resize`` method.

  Returns:
    [B, N, S, S] float32 targets.
  """
  masks = tf.stop_gradient(tf.cast(masks, tf.float32))
  crops = roi_crop.crop_and_resize_per_instance(
      masks, tf.stop_gradient(boxes), mask_size, method=crop_method)
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
