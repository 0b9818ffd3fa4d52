"""Deep-MARC losses: Model Garden's RPN / Fast R-CNN losses and our mask loss.

The mask loss is ``mask_losses.weighted_mask_loss`` over per-box losses
with per-box weights = the mask weight of the groundtruth instance behind
the box (``ops.mask_weights``): partial supervision is data, applied in that
one place.
"""

import tensorflow as tf
from official.vision.losses import maskrcnn_losses

from deepmac_tf.losses import mask_losses
from deepmac_tf.meta_architectures import mask_rcnn_teacher_student as teacher_student

LOSS_RPN_OBJECTNESS = 'Loss/RPNLoss/objectness_loss'
LOSS_RPN_LOCALIZATION = 'Loss/RPNLoss/localization_loss'
LOSS_BOX_CLASSIFICATION = 'Loss/BoxClassifierLoss/classification_loss'
LOSS_BOX_LOCALIZATION = 'Loss/BoxClassifierLoss/localization_loss'
LOSS_MASK = 'Loss/BoxClassifierLoss/mask_loss'
LOSS_NAMES = (LOSS_RPN_OBJECTNESS, LOSS_RPN_LOCALIZATION,
              LOSS_BOX_CLASSIFICATION, LOSS_BOX_LOCALIZATION, LOSS_MASK)
# Teacher-student heads: the student's loss is LOSS_MASK.
LOSS_TEACHER_MASK = teacher_student.LOSS_TEACHER_MASK

_SIGMOID = mask_losses.MaskClassificationLoss()


def mask_loss(logits, targets, weights):
  """sum_i w_i mean_pixels(CE_i) / max(sum_i w_i, 1) over [B, M] boxes."""
  per_box = mask_losses.mask_prediction_loss(_SIGMOID, logits, targets)
  return mask_losses.weighted_mask_loss(per_box, weights)


def l2_weight_decay_losses(parts, decay):
  """weight * sum(kernel^2) / 2 per regularized part.

  Args:
    parts: {part name: [layers]} (None entries skipped).
    decay: ((part name, weight), ...).

  Returns:
    list of float32 scalars, one per part with kernels.
  """
  losses = []
  for part, weight in decay:
    kernels = [v for layer in parts[part] if layer is not None
               for v in layer.trainable_variables
               if 'kernel' in v.name.split('/')[-1]]
    if kernels:
      losses.append(weight * tf.add_n(
          [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in kernels]))
  return losses


def all_losses(params, first_stage, second_stage, rpn_score_targets,
               rpn_box_targets):
  """Every Deep-MARC loss, weighted by the config.

  Args:
    params: ``MaskRCNNParams``.
    first_stage: ``predict`` output (``rpn_scores``, ``rpn_boxes``).
    second_stage: dict with ``class_outputs``, ``box_outputs``,
      ``class_targets``, ``box_targets`` and, when the mask branch ran,
      ``mask_logits``, ``mask_targets``, ``mask_loss_weights``.
    rpn_score_targets / rpn_box_targets: {level: [B, h, w, A(x4)]}.

  Returns:
    {name: float32 scalar} for the names in LOSS_NAMES (mask only with a
    mask branch).
  """
  p = params
  score_loss = maskrcnn_losses.RpnScoreLoss(p.rpn_batch_size_per_im)(
      first_stage['rpn_scores'],
      {k: tf.cast(v, tf.float32) for k, v in rpn_score_targets.items()})
  box_loss = maskrcnn_losses.RpnBoxLoss(p.rpn_huber_loss_delta)(
      first_stage['rpn_boxes'], rpn_box_targets)
  class_targets = second_stage['class_targets']
  frcnn_class = maskrcnn_losses.FastrcnnClassLoss()(
      second_stage['class_outputs'], class_targets)
  frcnn_box = maskrcnn_losses.FastrcnnBoxLoss(
      p.frcnn_huber_loss_delta, class_agnostic_bbox_pred=False)(
          second_stage['box_outputs'], class_targets,
          second_stage['box_targets'])
  losses = {
      LOSS_RPN_OBJECTNESS: p.rpn_score_loss_weight * score_loss,
      LOSS_RPN_LOCALIZATION: p.rpn_box_loss_weight * box_loss,
      LOSS_BOX_CLASSIFICATION: p.frcnn_class_loss_weight * frcnn_class,
      LOSS_BOX_LOCALIZATION: p.frcnn_box_loss_weight * frcnn_box,
  }
  if 'mask_logits' in second_stage:
    pair = p.mask_head.teacher_student if p.mask_head else None
    student_weight = pair.student_loss_weight if pair else 1.0
    losses[LOSS_MASK] = p.mask_loss_weight * student_weight * mask_loss(
        second_stage['mask_logits'], second_stage['mask_targets'],
        second_stage['mask_loss_weights'])
    if teacher_student.TEACHER_MASK_LOGITS in second_stage:
      losses[LOSS_TEACHER_MASK] = (
          p.mask_loss_weight * pair.teacher_loss_weight * mask_loss(
              second_stage[teacher_student.TEACHER_MASK_LOGITS],
              second_stage[teacher_student.TEACHER_MASK_TARGETS],
              second_stage[teacher_student.TEACHER_MASK_WEIGHTS]))
  return {k: tf.cast(tf.reduce_mean(v), tf.float32)
          for k, v in losses.items()}
