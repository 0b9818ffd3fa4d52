"""CenterNet losses: penalty-reduced logistic focal loss and L1 loss.

Both return unreduced, weighted per-element losses in float32; callers sum
and normalize (CenterNet divides by the number of groundtruth boxes and the
number of backbone stages, see ``meta_architectures/center_net.py``).
"""

import tensorflow as tf

# Probabilities are clipped to [SIGMOID_CLIP, 1 - SIGMOID_CLIP] so log() stays
# finite (newer OD API behaviour).
SIGMOID_CLIP = 1e-4


def penalty_reduced_logistic_focal_loss(logits, targets, weights=None,
                                        alpha=2.0, beta=4.0):
  """CenterNet heatmap focal loss (Law & Deng, CornerNet; Zhou et al.).

  With p = clip(sigmoid(logit), 1e-4, 1 - 1e-4) and y the Gaussian target:
  where y == 1, loss = -(1 - p)^alpha * log(p); elsewhere
  loss = -(1 - y)^beta * p^alpha * log(1 - p).

  Args:
    logits: [..., num_classes] float logits (any float dtype; computed in
      float32).
    targets: same shape, Gaussian heatmap targets in [0, 1].
    weights: optional tensor broadcastable to ``logits`` (e.g. a
      [batch, h * w, 1] valid-area mask).
    alpha: focusing exponent.
    beta: exponent of the penalty reduction near peaks.

  Returns:
    float32 tensor of ``logits``' shape: the weighted per-element loss.
  """
  logits = tf.cast(logits, tf.float32)
  targets = tf.cast(targets, tf.float32)
  probs = tf.clip_by_value(tf.sigmoid(logits), SIGMOID_CLIP, 1.0 - SIGMOID_CLIP)
  positive = tf.pow(1.0 - probs, alpha) * tf.math.log(probs)
  negative = (tf.pow(1.0 - targets, beta) * tf.pow(probs, alpha) *
              tf.math.log(1.0 - probs))
  loss = -tf.where(tf.equal(targets, 1.0), positive, negative)
  if weights is not None:
    loss = loss * tf.cast(weights, tf.float32)
  return loss


def l1_loss(predictions, targets, weights=None):
  """Elementwise absolute difference, optionally weighted.

  Args:
    predictions: [..., d] float tensor.
    targets: [..., d] float tensor.
    weights: optional [...] per-row weights (broadcast over the last axis).

  Returns:
    float32 tensor [..., d].
  """
  loss = tf.abs(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32))
  if weights is not None:
    loss = loss * tf.cast(weights, tf.float32)[..., tf.newaxis]
  return loss
