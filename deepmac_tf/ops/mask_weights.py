"""Partial supervision: the one rule for per-instance mask weights.

An instance trains the mask head with weight w = base x [class is allowed],
where base is, in order of preference, the instance's mask weight
(``groundtruth_instance_mask_weights``: 1 when the record has its mask, 0
for padding), its instance weight, or [class > 0]; and a class is allowed
when ``allowed_class_ids`` (the config's ``allowed_masked_classes_ids``) is
empty or contains it. The input pipeline applies it once per example; the
meta-architectures apply it again to each batch they train on, which changes
nothing for pipeline batches and gives batches built elsewhere (tests,
benchmarks, user code) the same partial supervision.
"""

import tensorflow as tf


def instance_mask_weights(classes, allowed_class_ids=(), mask_weights=None,
                          weights=None):
  """Mask weights of a set of instances.

  Args:
    classes: [..., N] 1-based class ids (0 = padding).
    allowed_class_ids: 1-based ids whose masks may train; empty = all.
    mask_weights: optional [..., N] mask weights (0 = no mask).
    weights: optional [..., N] instance weights, used when mask_weights is
      None.

  Returns:
    [..., N] float32 weights; 0 for instances of classes not allowed.
  """
  classes = tf.cast(classes, tf.int32)
  if mask_weights is not None:
    base = tf.cast(mask_weights, tf.float32)
  elif weights is not None:
    base = tf.cast(weights, tf.float32)
  else:
    base = tf.cast(classes > 0, tf.float32)
  allowed = tuple(sorted({int(i) for i in allowed_class_ids}))
  if not allowed:
    return base
  is_allowed = tf.reduce_any(
      tf.equal(classes[..., tf.newaxis], tf.constant(allowed, tf.int32)),
      axis=-1)
  return base * tf.cast(is_allowed, tf.float32)
