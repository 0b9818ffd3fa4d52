"""Teacher-student mask heads on Deep-MAC (Zhao et al., "Rethinking Mask
Heads for Partially Supervised Instance Segmentation"; spec ``paper.md``
section 3, applied to CenterNet: the paper's scheme on a detector none of
the reference implementations offers it on).

* The **teacher** is the class-agnostic Deep-MAC head (``_mask_net``),
  trained exactly as without the option (mask loss on the seen classes,
  box consistency when asked), its losses scaled by
  ``teacher_loss_weight``.
* The **student** (``_student_mask_net``) is a class-specific catalogue
  head (one output channel per class, ``MaskHeadNetwork(num_outputs=K)``)
  on the same inputs: the pixel-embedding crop with coordinates and the
  instance embedding. It trains on every real instance on its class's
  channel only (``ops.class_channel``): groundtruth masks for the seen
  classes, the teacher's pseudo masks (``teacher_student_targets``) for
  the others; ``Loss/deep_mask_student`` = ``task_loss_weight`` x
  ``student_loss_weight`` x its mask loss, averaged over the stages used.

At inference only the student runs (masks of each box's class), and the
teacher is built only for training, so exports hold no teacher variable.
"""

import tensorflow as tf

from deepmac_tf.losses import mask_losses
from deepmac_tf.mask_heads import mask_head_network
from deepmac_tf.meta_architectures import teacher_student_targets as targets
from deepmac_tf.ops import class_channel
from deepmac_tf.ops import mask_targets

LOSS_STUDENT_MASK = 'Loss/deep_mask_student'
STUDENT_TARGETS = 'student_mask_targets'
PSEUDO_MASK_ROWS = 'pseudo_mask_rows'


def build_student(params, num_classes):
  """The class-specific student of ``DeepMACParams`` with teacher_student:
  the Deep-MAC head's width, inputs and mask size, ``num_classes``
  outputs."""
  return mask_head_network.MaskHeadNetwork(
      params.teacher_student.student_network_type,
      num_init_channels=params.num_init_channels,
      use_instance_embedding=params.use_instance_embedding,
      mask_size=params.mask_size,
      use_sync_batch_norm=params.use_sync_batch_norm,
      num_outputs=num_classes, name='student_mask_net')


def class_channel_head(student, training=None):
  """``(instance rows [n, D], pixel crops [n, S, S, E], classes [n]) ->
  [n, S, S]`` logits of each row's (0-based) class channel."""

  def head(instance_rows, pixel_rows, class_rows):
    features = student(instance_rows, pixel_rows, training=training,
                       project=False)
    weights, biases = student.class_projection()
    return class_channel.class_channel_logits(features, weights, biases,
                                              class_rows)

  return head


def student_inputs(params, classes, weights, given_mask_weights, masks,
                   boxes_for_crop, with_teacher=True):
  """What the student learns from, shared by the stages.

  Args:
    params: ``DeepMACParams`` with ``teacher_student``.
    classes: [B, N] int 1-based classes (0 = padding).
    weights: [B, N] instance weights.
    given_mask_weights: optional [B, N] groundtruth mask weights.
    masks: [B, N, H, W] groundtruth masks.
    boxes_for_crop: [B, N, 4] boxes the groundtruth targets are cropped at
      (the teacher's: jittered in training when asked).
    with_teacher: False for a model built for inference (no teacher, no
      pseudo masks): every class's groundtruth masks count as seen, and
      only instances with one count.

  Returns:
    dict: ``seen`` / ``real`` [B, N] (``teacher_student_targets.
    instance_weights``), ``classes`` [B, N] 0-based, ``gt_targets``
    [B, N, S, S].
  """
  seen, real = targets.instance_weights(
      classes, params.allowed_masked_classes_ids if with_teacher else (),
      given_mask_weights, weights)
  if not with_teacher:
    real = seen
  gt_targets = mask_targets.crop_instance_masks(
      masks, boxes_for_crop, params.mask_size,
      crop_method=mask_targets.CROP_AND_RESIZE)
  return {'seen': seen, 'real': real, 'gt_targets': gt_targets,
          'classes': tf.maximum(tf.cast(classes, tf.int32) - 1, 0)}


def student_stage_loss(params, teacher_logits, student_logits, masks, boxes,
                       inputs):
  """The student's weighted mask loss at one stage.

  Args:
    params: ``DeepMACParams`` with ``teacher_student``.
    teacher_logits: [B, N, S, S] the teacher's logits at ``boxes`` (every
      real instance), or None without a teacher (``student_inputs(...,
      with_teacher=False)``: no row uses a pseudo mask).
    student_logits: [B, N, S, S] the student's logits of each instance's
      class at ``boxes``.
    masks: [B, N, H, W] groundtruth masks.
    boxes: [B, N, 4] normalized groundtruth boxes (the crops' frame).
    inputs: ``student_inputs(...)``.

  Returns:
    (scalar loss, {STUDENT_TARGETS: [B, N, S, S], PSEUDO_MASK_ROWS: bool
    [B, N]}).
  """
  seen, real = inputs['seen'], inputs['real']
  uses_pseudo = (real > 0) & (seen <= 0)
  student_targets = inputs['gt_targets']
  if teacher_logits is not None:
    pseudo, _ = targets.pseudo_mask_targets(
        teacher_logits, student_logits, masks, seen, boxes, boxes,
        params.teacher_student.pseudo_mask_rule, params.mask_size)
    student_targets = targets.student_targets(uses_pseudo, pseudo,
                                              student_targets)
  per_instance = mask_losses.mask_prediction_loss(
      params.classification_loss, student_logits, student_targets)
  return (mask_losses.weighted_mask_loss(per_instance, real),
          {STUDENT_TARGETS: student_targets, PSEUDO_MASK_ROWS: uses_pseudo})
