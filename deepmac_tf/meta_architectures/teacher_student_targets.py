"""What the teacher-student mask heads learn from, for every
meta-architecture that offers them (Mask R-CNN: ``mask_rcnn_teacher_student``,
Deep-MAC: ``deepmac_teacher_student``).

* The **teacher** (class-agnostic) learns from the groundtruth masks of the
  seen instances only (``seen`` weights).
* The **student** (class-specific) learns from every real instance
  (``real`` weights) on its class's channel: the groundtruth mask where the
  instance is seen, else a pseudo mask made from the teacher's prediction
  by the rules of ``ops.pseudo_masks`` in the crop's frame (no gradient
  flows into the teacher: the targets are constants).
"""

import tensorflow as tf

from deepmac_tf.ops import mask_targets
from deepmac_tf.ops import mask_weights
from deepmac_tf.ops import pseudo_masks


def instance_weights(classes, allowed_masked_classes_ids, given_mask_weights,
                     weights):
  """(seen, real): the instances each head of the pair learns from.

  Args:
    classes: [B, N] int class ids (0 = padding).
    allowed_masked_classes_ids: the seen classes (empty: every class).
    given_mask_weights: optional [B, N] groundtruth mask weights.
    weights: optional [B, N] instance weights.

  Returns:
    (seen [B, N], real [B, N]) float32: seen = the partial-supervision mask
    weights (``ops.mask_weights``), the teacher's rows; real = every
    non-padding instance with a weight, the student's rows.
  """
  classes = tf.cast(classes, tf.int32)
  seen = mask_weights.instance_mask_weights(
      classes, allowed_masked_classes_ids, given_mask_weights, weights)
  real = mask_weights.instance_mask_weights(classes, (), None, weights)
  return seen, real * tf.cast(classes > 0, tf.float32)


def pseudo_mask_targets(teacher_logits, student_logits, masks, seen,
                        gt_boxes, crop_boxes, rule, mask_size, rows=None):
  """Pseudo masks (rules 1-3) in the frame of the mask-head crops.

  Args:
    teacher_logits: [B, M, S, S] the teacher's logits at ``crop_boxes``.
    student_logits: [B, M, S, S] the student's logits of each row's class
      at the same boxes (read by ``INTERACTION`` only).
    masks: [B, N, H, W] groundtruth instance masks (zeros where an instance
      has none).
    seen: [B, N] > 0 for the seen instances (``instance_weights``).
    gt_boxes: [B, N, 4] normalized groundtruth boxes.
    crop_boxes: [B, M, 4] normalized boxes the logits were cropped at.
    rule: ``pseudo_masks.THRESHOLD`` or ``INTERACTION``.
    mask_size: python int S.
    rows: optional [B, M] int, the instance of each crop (None: crop m is
      instance m, M = N).

  Returns:
    (pseudo [B, M, S, S] binary pseudo masks, own [B, M, S, S] each row's
    groundtruth mask cropped at ``crop_boxes``), both without gradient.
  """
  size = int(mask_size)
  masks = tf.cast(masks, tf.float32)
  crop_boxes = tf.cast(crop_boxes, tf.float32)
  if rows is None:
    shape = tf.shape(crop_boxes)
    rows = tf.broadcast_to(tf.range(shape[1])[None], shape[:2])
  own = mask_targets.crop_instance_masks(
      masks, crop_boxes, size, crop_method=mask_targets.CROP_AND_RESIZE,
      instance_indices=rows)
  # Rule 2: the other seen instances' masks, from one count map per image.
  is_seen = tf.cast(seen > 0, tf.float32)
  seen_count = tf.reduce_sum(
      tf.cast(masks > 0.5, tf.float32) * is_seen[..., None, None], axis=1,
      keepdims=True)
  seen_count_crops = mask_targets.crop_instance_masks(
      seen_count, crop_boxes, size, crop_method=mask_targets.CROP_AND_RESIZE,
      instance_indices=tf.zeros_like(rows))
  overlap = pseudo_masks.seen_overlap_from_crops(
      seen_count_crops, own, tf.gather(is_seen, rows, batch_dims=1) > 0)
  # Rule 3: outside the instance's groundtruth box, in the crop's frame.
  inside = pseudo_masks.inside_boxes(
      tf.gather(tf.cast(gt_boxes, tf.float32), rows, batch_dims=1), size,
      size, frame_boxes=crop_boxes)
  pseudo = pseudo_masks.pseudo_masks(
      tf.sigmoid(teacher_logits), tf.sigmoid(student_logits), rule,
      seen_overlap=overlap, inside_box=inside)
  return pseudo, tf.stop_gradient(own)


def student_targets(uses_pseudo, pseudo, groundtruth_targets):
  """[B, M, S, S] targets of the student: ``pseudo`` on the rows where
  ``uses_pseudo`` [B, M] is true, the groundtruth crops elsewhere."""
  return tf.stop_gradient(tf.where(uses_pseudo[..., None, None], pseudo,
                                   groundtruth_targets))
