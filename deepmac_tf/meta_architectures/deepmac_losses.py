"""Per-instance Deep-MAC loss terms from mask logits and groundtruth
(spec sections 4.2, 4.3): the ops that bring logits and targets into one
frame, followed by ``deepmac_tf.losses.mask_losses``.

Each function returns [B, N] per-instance losses; weighting and
normalization happen afterwards in ``mask_losses.weighted_mask_loss``.
"""

import tensorflow as tf

from deepmac_tf.losses import mask_losses
from deepmac_tf.ops import instances
from deepmac_tf.ops import mask_targets
from deepmac_tf.ops import roi_crop


def _spatial(tensor):
  """(height, width) of [B, N, h, w]; Python ints when static."""
  height = tensor.shape[2] if tensor.shape[2] is not None else tf.shape(
      tensor)[2]
  width = tensor.shape[3] if tensor.shape[3] is not None else tf.shape(
      tensor)[3]
  return height, width


def per_instance_no_class_overlap(classes, weights, boxes, height, width):
  """0 where a pixel lies in >= 2 boxes of the instance's class, else 1.

  Boxes are filled at (height, width) as normalized-image boxes (even when
  the logits are box crops, as in the OD API).

  Args:
    classes: [B, N] int class ids (0 = padding).
    weights: [B, N] instance weights; instances with weight 0 are not
      counted.
    boxes: [B, N, 4] normalized boxes.
    height: scalar h.
    width: scalar w.

  Returns:
    [B, N, h, w] float32 of 0 / 1.
  """
  filled = mask_targets.fill_boxes(boxes, height, width)
  classes = tf.cast(classes, tf.int32)
  valid = tf.cast(weights, tf.float32) > 0
  same_class = tf.logical_and(
      tf.equal(classes[:, :, None], classes[:, None, :]), valid[:, None, :])
  counts = tf.einsum('bij,bjhw->bihw', tf.cast(same_class, tf.float32),
                     filled)
  return tf.cast(counts < 2.0, tf.float32)


def mask_estimation_loss(loss, logits, masks, boxes_for_crop,
                         full_resolution=False, no_overlap_args=None):
  """Fully supervised per-instance mask loss.

  Args:
    loss: ``mask_losses.MaskClassificationLoss``.
    logits: [B, N, S, S] crop-mode logits, or [B, N, h, w] full-resolution
      logits.
    masks: [B, N, H, W] groundtruth instance masks (input resolution) or
      None (no masks: the loss is 0).
    boxes_for_crop: [B, N, 4] boxes the targets are cropped at (the
      groundtruth boxes, jittered in training when asked).
    full_resolution: targets are the masks themselves and the logits are
      bilinearly resized to (H, W).
    no_overlap_args: None, or (classes [B, N], weights [B, N]) to zero the
      logits where boxes of the same class overlap
      (``ignore_per_class_box_overlap``).

  Returns:
    [B, N] float32.
  """
  logits = tf.cast(logits, tf.float32)
  if masks is None:
    return tf.zeros(tf.shape(logits)[:2], tf.float32)

  def suppress_overlap(tensor):
    if no_overlap_args is None:
      return tensor
    height, width = _spatial(tensor)
    return tensor * per_instance_no_class_overlap(
        no_overlap_args[0], no_overlap_args[1], boxes_for_crop, height,
        width)

  logits = suppress_overlap(logits)
  if full_resolution:
    targets = tf.stop_gradient(tf.cast(masks, tf.float32))
    height, width = _spatial(targets)
    logits = suppress_overlap(instances.resize_logits(logits, height,
                                                        width))
  else:
    targets = mask_targets.crop_instance_masks(masks, boxes_for_crop,
                                              _spatial(logits))
  return mask_losses.mask_prediction_loss(loss, logits, targets)


def box_consistency_loss(loss, boxes, boxes_for_crop, logits, mask_size,
                         full_resolution=False,
                         normalize=mask_losses.NORMALIZE_AUTO,
                         tightness=False):
  """BoxInst projection loss of the logits against the groundtruth boxes.

  The boxes are filled at the logits' size, treating the logits' frame as
  the normalized image. In crop mode both the filled boxes and the logits
  are then cropped again at ``boxes_for_crop`` to ``mask_size`` (the OD
  API's behaviour, kept for parity).

  Args:
    loss: ``mask_losses.MaskClassificationLoss``.
    boxes: [B, N, 4] groundtruth boxes (not jittered).
    boxes_for_crop: [B, N, 4] boxes of the second crop (crop mode only).
    logits: [B, N, h, w] logits.
    mask_size: python int, size of the second crop.
    full_resolution: skip the second crop.
    normalize: aggregation over each projection profile.
    tightness: tightness-prior variant of the projection.

  Returns:
    [B, N] float32.
  """
  logits = tf.cast(logits, tf.float32)
  height, width = _spatial(logits)
  filled = mask_targets.fill_boxes(tf.stop_gradient(boxes), height, width)
  if not full_resolution:
    crop_boxes = tf.stop_gradient(boxes_for_crop)
    filled = roi_crop.crop_and_resize_per_instance(filled, crop_boxes,
                                                   mask_size)
    logits = roi_crop.crop_and_resize_per_instance(logits, crop_boxes,
                                                   mask_size)
  return mask_losses.box_consistency_loss(loss, logits, filled, normalize,
                                          tightness)
