"""The mask branch of Deep-MARC: one mask ROI crop + mask head call.

The mask head is the costly part of the model (HG-52 on 100 crops is most
of an inference), so it runs only on the boxes that matter: the real
detections at inference, the instances with a mask weight in training.
The ROI crop runs on every box (cheap); ``mask_heads.selected_slots``
gathers the wanted crops, runs the head on them and scatters the logits
back (0 elsewhere), so output shapes keep the padded box count.
"""

import tensorflow as tf

from deepmac_tf.mask_heads import selected_slots
from deepmac_tf.meta_architectures import mask_rcnn_class_masks as class_masks


def mask_logits(roi_aligner, mask_head, features, boxes, classes,
                training=None, valid=None, row_logits=None, all_slots=None):
  """Mask logits at boxes: the one mask ROI crop + mask head call.

  Args:
    roi_aligner: Model Garden ``MultilevelROIAligner`` (mask crop size).
    mask_head: ``UpsamplingMaskHead``.
    features: {level: [B, h_l, w_l, C]}.
    boxes: [B, M, 4] pixels of the padded input.
    classes: [B, M] int 1-based (picks the channel when class-specific).
    training: Keras training flag of the mask head.
    valid: optional bool [B, M]: run the (costly) mask head only on these
      boxes (real detections, instances with a mask weight); the others
      get logits 0. None = every box.
    row_logits: optional ``(crops [n, S, S, C], classes [n]) -> [n, S', S']``
      (``mask_rcnn_class_masks.row_logits_fn``: class channel, MaskX weight
      transfer, MLP branch); default: ``mask_head`` and its class channel.
    all_slots: ``selected_slots.apply_to_selected_slots``'s static-shape
      fallback (the head on every box, others zeroed); None = on TPU only.

  Returns:
    [B, M, S', S'] float32 logits.
  """
  crops = roi_aligner(features, boxes, training=training)
  # Heads need static crop dims; the ROI aligner may lose them.
  crop = mask_head.mask_size // mask_head.upsample_factor
  channels = next(iter(features.values())).shape[-1]
  crops = tf.ensure_shape(crops, [None, None, crop, crop, channels])
  if row_logits is None:
    row_logits = class_masks.head_row_logits_fn(mask_head, training)
  if valid is None:
    valid, all_slots = tf.ones(tf.shape(crops)[:2], tf.bool), True
  return selected_slots.apply_to_selected_slots(
      row_logits, valid, (crops, classes), all_slots=all_slots)
