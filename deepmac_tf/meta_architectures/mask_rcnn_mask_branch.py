"""The mask branch of Deep-MARC: one mask ROI crop + mask head call.

The mask head is the costly part of the model (HG-52 on 100 crops is most
of an inference), so it runs only on the boxes that matter: the real
detections at inference, the instances with a mask weight in training.
The ROI crop runs on every box (cheap); the wanted crops are gathered, the
head runs on them, and the logits are scattered back (0 elsewhere), so
output shapes keep the padded box count.
"""

import tensorflow as tf

from deepmac_tf.meta_architectures import mask_rcnn_class_masks as class_masks


def mask_logits(roi_aligner, mask_head, features, boxes, classes,
                training=None, valid=None, row_logits=None):
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

  Returns:
    [B, M, S', S'] float32 logits.
  """
  crops = roi_aligner(features, boxes, training=training)
  shape = tf.shape(crops)
  size = mask_head.mask_size
  if valid is None:
    index = None
    flat = tf.reshape(crops, tf.concat([[shape[0] * shape[1]], shape[2:]],
                                       axis=0))
    flat_classes = tf.reshape(classes, [-1])
  else:
    index = tf.where(valid)  # [n, 2] (image, box)
    flat = tf.gather_nd(crops, index)
    flat_classes = tf.gather_nd(classes, index)
  # Heads need static crop dims; the gather may lose them.
  crop = size // mask_head.upsample_factor
  channels = next(iter(features.values())).shape[-1]
  flat = tf.ensure_shape(flat, [None, crop, crop, channels])
  if row_logits is None:
    row_logits = class_masks.head_row_logits_fn(mask_head, training)
  logits = row_logits(flat, flat_classes)  # [n, S', S']
  out_shape = tf.stack([shape[0], shape[1], size, size])
  if index is None:
    return tf.reshape(logits, out_shape)
  return tf.scatter_nd(index, logits, tf.cast(out_shape, tf.int64))
