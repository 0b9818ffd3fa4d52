"""Teacher-student mask heads on Mask R-CNN (Zhao et al., "Rethinking Mask
Heads for Partially Supervised Instance Segmentation"; spec ``paper.md``
section 3).

Two heads see the same mask ROI crops of the training boxes:

* the **teacher**, class-agnostic (any catalogue head), learns from the
  groundtruth masks of the seen classes only;
* the **student**, class-specific (one output channel per class; the
  meta-architecture's own mask head), learns from every instance on its
  class's channel only (``mask_rcnn_class_masks`` computes just that
  channel): groundtruth masks for the seen classes, the teacher's pseudo
  masks (``teacher_student_targets``, the rules of ``ops.pseudo_masks``; no
  gradient into the teacher) for the rest.

Only the student runs at inference. The teacher is built only for training
(``is_training``), so an exported model holds no teacher variable.
"""

import tensorflow as tf

from deepmac_tf.data.fields import InputFields
from deepmac_tf.mask_heads import upsampling_mask_head
from deepmac_tf.meta_architectures import mask_rcnn_mask_branch as mask_branch
from deepmac_tf.meta_architectures import mask_rcnn_targets as targets
from deepmac_tf.meta_architectures import teacher_student_targets as ts_targets

TEACHER_HEAD_NAME = 'teacher_mask_head'
TEACHER_MASK_LOGITS = 'teacher_mask_logits'
TEACHER_MASK_TARGETS = 'teacher_mask_targets'
TEACHER_MASK_WEIGHTS = 'teacher_mask_loss_weights'
PSEUDO_MASK_ROWS = 'pseudo_mask_rows'
LOSS_TEACHER_MASK = 'Loss/BoxClassifierLoss/teacher_mask_loss'


def build_teacher(mask_head_params, use_sync_batch_norm=False):
  """The class-agnostic teacher head at the student's crop and mask size."""
  m = mask_head_params
  t = m.teacher_student
  return upsampling_mask_head.UpsamplingMaskHead(
      t.teacher_network_type, num_init_channels=t.teacher_num_init_channels,
      crop_size=m.crop_size, upsample_factor=m.upsample_factor,
      num_outputs=1, use_sync_batch_norm=use_sync_batch_norm,
      name=TEACHER_HEAD_NAME)


def training_masks(mask_head_params, roi_aligner, student_head, teacher_head,
                   features, gt_boxes, groundtruth, sampled, training=True,
                   student_row_logits=None):
  """Student and teacher logits, targets and weights on the training boxes.

  Args:
    mask_head_params: ``MaskHeadParams`` with ``teacher_student``.
    roi_aligner: the mask ROI aligner.
    student_head: the class-specific ``UpsamplingMaskHead``.
    teacher_head: the class-agnostic teacher (``build_teacher``).
    features: {level: [B, h, w, C]}.
    gt_boxes: [B, N, 4] groundtruth boxes in pixels of the padded input.
    groundtruth: ``InputFields`` dict with ``groundtruth_instance_masks``
      [B, N, H, W] (zeros where an instance has none).
    sampled: (rois, matched classes, matched indices) of the ROI sampler
      (proposal box sources).
    training: Keras training flag.
    student_row_logits: optional ``mask_rcnn_class_masks`` row function of
      the student (default: its own class channel).

  Returns:
    dict: ``mask_roi_boxes`` [B, M, 4]; the student's ``mask_logits`` /
    ``mask_targets`` [B, M, S', S'] and ``mask_loss_weights`` [B, M] (every
    real instance); the teacher's ``teacher_mask_logits`` /
    ``teacher_mask_targets`` / ``teacher_mask_loss_weights`` (seen
    instances with masks); ``pseudo_mask_rows`` [B, M] bool (rows whose
    student target is a pseudo mask).
  """
  m = mask_head_params
  classes = tf.cast(groundtruth[InputFields.CLASSES], tf.int32)
  seen, real = ts_targets.instance_weights(
      classes, m.allowed_masked_classes_ids,
      groundtruth.get(InputFields.MASK_WEIGHTS),
      groundtruth.get(InputFields.WEIGHTS))
  selection = targets.mask_training_boxes(
      m.box_source, gt_boxes, classes, real, sampled=sampled,
      num_sampled_masks=m.num_sampled_masks)
  boxes = tf.stop_gradient(selection['boxes'])
  rows = selection['instance_indices']
  row_weights = selection['weights']
  valid = row_weights > 0
  row_seen = tf.gather(seen, rows, batch_dims=1) * tf.cast(valid, tf.float32)
  student_logits = mask_branch.mask_logits(
      roi_aligner, student_head, features, boxes, selection['classes'],
      training=training, valid=valid, row_logits=student_row_logits)
  teacher_logits = mask_branch.mask_logits(
      roi_aligner, teacher_head, features, boxes, selection['classes'],
      training=training, valid=valid)

  masks = groundtruth[InputFields.INSTANCE_MASKS]
  shape = tf.shape(masks)
  scale = tf.cast(tf.stack([shape[2], shape[3]] * 2), tf.float32)
  pseudo, gt_targets = ts_targets.pseudo_mask_targets(
      teacher_logits, student_logits, masks, seen,
      tf.cast(gt_boxes, tf.float32) / scale, boxes / scale,
      m.teacher_student.pseudo_mask_rule, m.mask_size, rows=rows)
  uses_pseudo = valid & (row_seen <= 0)
  student_targets = ts_targets.student_targets(uses_pseudo, pseudo,
                                               gt_targets)
  return {
      'mask_roi_boxes': boxes,
      'mask_logits': student_logits,
      'mask_targets': student_targets,
      'mask_loss_weights': row_weights,
      TEACHER_MASK_LOGITS: teacher_logits,
      TEACHER_MASK_TARGETS: gt_targets,
      TEACHER_MASK_WEIGHTS: row_seen,
      PSEUDO_MASK_ROWS: uses_pseudo,
  }
