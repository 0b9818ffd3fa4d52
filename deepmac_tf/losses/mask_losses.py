"""Per-instance mask losses of Deep-MAC (spec sections 4.1-4.3).

All losses are computed in float32, whatever the dtype of the logits (e.g.
bfloat16 under a mixed-precision policy). Per-instance losses have shape
[B, N]; ``weighted_mask_loss`` is the single place where per-instance weights
(partial supervision: 0 for instances without a usable mask or of a class
not allowed to have masks) turn them into one scalar.
"""

import dataclasses

import tensorflow as tf

from deepmac_tf.losses import normalization

SIGMOID = 'sigmoid'
DICE = 'dice'
LOSS_KINDS = (SIGMOID, DICE)

NORMALIZE_AUTO = 'normalize_auto'
NORMALIZE_GROUNDTRUTH_COUNT = 'normalize_groundtruth_count'
NORMALIZE_BALANCED = 'normalize_balanced'
NORMALIZATIONS = (NORMALIZE_AUTO, NORMALIZE_GROUNDTRUTH_COUNT,
                  NORMALIZE_BALANCED)


@dataclasses.dataclass(frozen=True)
class MaskClassificationLoss:
  """Which per-pixel classification loss the mask terms use.

  Attributes:
    kind: 'sigmoid' (OD API ``weighted_sigmoid``: per-pixel sigmoid
      cross-entropy) or 'dice' (``weighted_dice_classification_loss``).
    squared_normalization: dice only; square predictions and targets first.
    is_prediction_probability: dice only; predictions are probabilities, not
      logits.
  """
  kind: str = SIGMOID
  squared_normalization: bool = False
  is_prediction_probability: bool = False

  def __post_init__(self):
    if self.kind not in LOSS_KINDS:
      raise ValueError(f'mask loss kind must be one of {LOSS_KINDS}, got '
                       f'{self.kind!r}.')


def _float32(*tensors):
  return [tf.cast(t, tf.float32) for t in tensors]


def sigmoid_cross_entropy(logits, targets, weights=None):
  """Elementwise sigmoid cross-entropy (float32), optionally weighted."""
  logits, targets = _float32(logits, targets)
  loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets,
                                                 logits=logits)
  if weights is not None:
    loss *= tf.cast(weights, tf.float32)
  return loss


def dice_loss(predictions, targets, weights=None, squared_normalization=False,
              is_prediction_probability=False):
  """1 - dice coefficient over the last axis.

  dice = 2 sum(p t) / max(sum(p) + sum(t), 1), with p = sigmoid(predictions)
  (or predictions if they are probabilities), both squared first when
  ``squared_normalization``, and both multiplied by ``weights``.

  Args:
    predictions: [n, P] logits (or probabilities).
    targets: [n, P] targets in [0, 1].
    weights: optional [n, P] pixel weights.
    squared_normalization: see above.
    is_prediction_probability: see above.

  Returns:
    [n] float32 losses.
  """
  predictions, targets = _float32(predictions, targets)
  probs = predictions if is_prediction_probability else tf.sigmoid(
      predictions)
  if squared_normalization:
    probs, targets = tf.square(probs), tf.square(targets)
  if weights is not None:
    weights = tf.cast(weights, tf.float32)
    probs, targets = probs * weights, targets * weights
  numerator = 2.0 * tf.reduce_sum(probs * targets, axis=-1)
  denominator = tf.reduce_sum(probs, axis=-1) + tf.reduce_sum(targets,
                                                              axis=-1)
  return 1.0 - numerator / tf.maximum(denominator, 1.0)


def aggregate_pixel_loss(pixel_loss, targets, normalize=NORMALIZE_AUTO):
  """Reduces [n, P] per-pixel losses to [n] per-instance losses.

  Args:
    pixel_loss: [n, P] elementwise losses.
    targets: [n, P] targets (binary for the count-based normalizations).
    normalize: 'normalize_auto' (mean over pixels), 'normalize_groundtruth_
      count' (sum / max(sum of targets, 1)) or 'normalize_balanced' (mean
      over positive pixels + mean over negative pixels).

  Returns:
    [n] float32.
  """
  pixel_loss, targets = _float32(pixel_loss, targets)
  if normalize == NORMALIZE_AUTO:
    return tf.reduce_mean(pixel_loss, axis=-1)
  if normalize == NORMALIZE_GROUNDTRUTH_COUNT:
    count = tf.reduce_sum(targets, axis=-1)
    return tf.reduce_sum(pixel_loss, axis=-1) / tf.maximum(count, 1.0)
  if normalize == NORMALIZE_BALANCED:
    num_pos = tf.maximum(tf.reduce_sum(targets, axis=-1, keepdims=True), 1.0)
    num_neg = tf.maximum(
        tf.reduce_sum(1.0 - targets, axis=-1, keepdims=True), 1.0)
    norm = tf.where(targets > 0.5, num_pos, num_neg)
    return tf.reduce_sum(pixel_loss / norm, axis=-1)
  raise ValueError(f'normalize must be one of {NORMALIZATIONS}, got '
                   f'{normalize!r}.')


def instance_loss(loss, predictions, targets, normalize=NORMALIZE_AUTO):
  """Applies ``loss`` to flat per-instance profiles and aggregates them.

  Args:
    loss: a ``MaskClassificationLoss``.
    predictions: [n, P] logits (or probabilities for such a dice loss).
    targets: [n, P] targets.
    normalize: aggregation of the sigmoid loss (see
      ``aggregate_pixel_loss``); the dice loss is per instance already and
      supports only 'normalize_auto'.

  Returns:
    [n] float32.
  """
  if loss.kind == DICE:
    if normalize != NORMALIZE_AUTO:
      raise ValueError(f'the dice loss supports only {NORMALIZE_AUTO!r} '
                       f'aggregation, got {normalize!r}.')
    return dice_loss(predictions, targets,
                     squared_normalization=loss.squared_normalization,
                     is_prediction_probability=loss.is_prediction_probability)
  return aggregate_pixel_loss(sigmoid_cross_entropy(predictions, targets),
                              targets, normalize)


def _flatten_pixels(tensor):
  """[B, N, H, W] -> [B * N, H * W]."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor, tf.stack([shape[0] * shape[1],
                                      shape[2] * shape[3]]))


def mask_prediction_loss(loss, logits, targets):
  """Fully supervised per-instance mask loss (spec section 4.2).

  Args:
    loss: a ``MaskClassificationLoss``.
    logits: [B, N, S, S] mask logits (any float dtype).
    targets: [B, N, S, S] soft targets in [0, 1], same spatial size.

  Returns:
    [B, N] float32: mean pixel cross-entropy (sigmoid) or 1 - dice.
  """
  shape = tf.shape(logits)
  per_instance = instance_loss(loss, _flatten_pixels(logits),
                               _flatten_pixels(targets))
  return tf.reshape(per_instance, shape[:2])


def box_consistency_loss(loss, logits, box_masks, normalize=NORMALIZE_AUTO,
                         tightness=False):
  """BoxInst projection loss (spec section 4.3) on aligned maps.

  For each axis, the max projection of the logits is compared with the max
  projection of the filled groundtruth box; the two axis terms are summed.

  Args:
    loss: a ``MaskClassificationLoss``.
    logits: [B, N, h, w] mask logits, in the same frame as ``box_masks``.
    box_masks: [B, N, h, w] binary filled groundtruth boxes.
    normalize: aggregation of each axis term (``aggregate_pixel_loss``).
    tightness: use b * max(logits * box) + (1 - b) * max(logits), with
      b = max(box) along the axis, as the logit projection.

  Returns:
    [B, N] float32.
  """
  logits, box_masks = _float32(logits, box_masks)
  shape = tf.shape(logits)
  total = tf.zeros(shape[:2], tf.float32)
  for axis in (2, 3):
    pred_max = tf.reduce_max(logits, axis=axis)
    gt_max = tf.reduce_max(box_masks, axis=axis)
    if tightness:
      inside_max = tf.reduce_max(logits * box_masks, axis=axis)
      pred_max = gt_max * inside_max + (1.0 - gt_max) * pred_max
    length = tf.shape(pred_max)[2]
    flat_pred = tf.reshape(pred_max, tf.stack([shape[0] * shape[1], length]))
    flat_gt = tf.reshape(gt_max, tf.stack([shape[0] * shape[1], length]))
    total += tf.reshape(instance_loss(loss, flat_pred, flat_gt, normalize),
                        shape[:2])
  return total


def weighted_mask_loss(per_instance_loss, mask_weights):
  """The one place per-instance weights apply: sum(l w) / max(sum(w), 1),
  sums over the global batch under ``tf.distribute``.

  Partial supervision lives here as data: an instance whose class may not
  train masks, or that has no groundtruth mask, has weight 0 and contributes
  neither to the sum nor to the normalizer (nor to any gradient).

  Args:
    per_instance_loss: [B, N] losses.
    mask_weights: [B, N] weights (e.g. ``groundtruth_instance_mask_weights``
      for the mask loss, ``groundtruth_weights`` for weak losses).

  Returns:
    scalar float32, summed over the whole batch.
  """
  per_instance_loss, mask_weights = _float32(per_instance_loss, mask_weights)
  # where(), not a product: a weight-0 instance whose loss is inf/NaN (e.g.
  # an empty padding box) must not poison the sum or its gradient.
  weighted = tf.where(mask_weights > 0, per_instance_loss * mask_weights,
                      tf.zeros_like(per_instance_loss))
  # Under tf.distribute: the global batch's weight sum (see normalization).
  return tf.reduce_sum(weighted) / normalization.cross_replica_normalizer(
      tf.reduce_sum(mask_weights))
