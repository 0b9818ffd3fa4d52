"""Post-processing helpers of Deep-MARC that Model Garden's
``DetectionGenerator`` does not give: padded proposals kept out of the
detections, and the per-class scores of each kept detection (OD API
``detection_multiclass_scores``).

The generator returns boxes, scores and classes after NMS but not which
proposal each detection came from. Each detection is exactly one
(proposal, class) pair's decoded box and softmax score, so we find the
proposal by matching: decode every proposal's box for the detection's class
the way the generator does (``box_ops.decode_boxes`` then ``clip_boxes``)
and take the proposal whose box and score are nearest (distance 0 up to
float rounding). Cost: B x K x R x 4 subtractions, no extra network call.
"""

import tensorflow as tf
from official.vision.ops import box_ops


def without_padded_proposals(class_outputs, rois):
  """Box-classifier logits with padded proposals made sure background.

  The ROI generator pads its output to a fixed count with zero boxes when
  fewer proposals survive (small inputs). Their features are all alike, so
  they score alike, and the fused NMS keeps every one of them (zero-area
  boxes overlap nothing): rows of identical empty detections. With logits
  (0 for background, -1e4 elsewhere) no class of theirs passes any score
  threshold, in either NMS.

  Args:
    class_outputs: [B, R, C + 1] logits (0 = background).
    rois: [B, R, 4] proposals; zero-area = padding.

  Returns:
    [B, R, C + 1] logits, padded rows replaced.
  """
  real = (rois[..., 2] > rois[..., 0]) & (rois[..., 3] > rois[..., 1])
  background = tf.one_hot(0, tf.shape(class_outputs)[-1], on_value=0.0,
                          off_value=-1e4, dtype=class_outputs.dtype)
  return tf.where(real[..., None], class_outputs, background)


def multiclass_scores(class_outputs, box_outputs, rois, image_shape,
                      detection_boxes, detection_classes, detection_scores,
                      num_detections, regression_weights):
  """Softmax class scores of the proposal behind each detection.

  Args:
    class_outputs: [B, R, C + 1] box-classifier logits (0 = background).
    box_outputs: [B, R, 4 (C + 1)] per-class box regressions.
    rois: [B, R, 4] proposals in pixels.
    image_shape: [B, 2] true image size in pixels (clipping).
    detection_boxes: [B, K, 4] detections in pixels (generator output).
    detection_classes: [B, K] int 1-based classes (generator output).
    detection_scores: [B, K] scores.
    num_detections: [B] int real detections (the first ones).
    regression_weights: 4 box-coder weights.

  Returns:
    [B, K, C + 1] float32 softmax scores, background first; zeros for
    padded slots.
  """
  class_outputs = tf.cast(class_outputs, tf.float32)
  scores = tf.nn.softmax(class_outputs, axis=-1)  # [B, R, C + 1]
  batch, num_rois = tf.shape(rois)[0], tf.shape(rois)[1]
  num_outputs = tf.shape(class_outputs)[2]
  raw = tf.reshape(tf.cast(box_outputs, tf.float32),
                   tf.stack([batch, num_rois, num_outputs, 4]))
  anchors = tf.broadcast_to(tf.cast(rois, tf.float32)[:, :, None, :],
                            tf.shape(raw))
  decoded = box_ops.decode_boxes(raw, anchors,
                                 weights=list(regression_weights))
  decoded = box_ops.clip_boxes(
      decoded, tf.cast(image_shape, tf.float32)[:, None, None, :])
  classes = tf.cast(detection_classes, tf.int32)
  # [B, R, C + 1, 4] -> per detection its class's column: [B, K, R, 4].
  per_class_boxes = tf.gather(tf.transpose(decoded, [0, 2, 1, 3]), classes,
                              batch_dims=1)
  per_class_scores = tf.gather(tf.transpose(scores, [0, 2, 1]), classes,
                               batch_dims=1)  # [B, K, R]
  distance = (tf.reduce_sum(tf.abs(
      per_class_boxes - tf.cast(detection_boxes, tf.float32)[:, :, None]),
                            axis=-1) +
              tf.abs(per_class_scores -
                     tf.cast(detection_scores, tf.float32)[..., None]))
  source = tf.argmin(distance, axis=-1, output_type=tf.int32)  # [B, K]
  result = tf.gather(scores, source, batch_dims=1)
  real = tf.sequence_mask(num_detections, tf.shape(classes)[1])
  return result * tf.cast(real, tf.float32)[..., None]
