"""Class-specific mask logits without an [N, C, M, M] tensor.

A class-specific mask head ends in a per-class 1x1 projection: class c has a
weight vector w_c [D] and a bias b_c over the head's last features
[M, M, D]. Only one channel per instance is ever used (the channel of its
class: the groundtruth / matched class in training, the detected class at
inference), so instead of projecting to all C channels and gathering one,
the weights of each instance's class are gathered first and only that
channel is computed: O(N M^2 D) instead of O(N M^2 D C) work and no
[N, M, M, C] tensor (1,203 LVIS classes at 28x28 would be 3.8 MB per
instance).

Used by Mask R-CNN's class-specific heads (learned per-class projection),
MaskX R-CNN (projection predicted by the weight transfer function) and any
head that needs "the channel of each instance's class".
"""

import tensorflow as tf


def gather_class_rows(table, classes):
  """Rows of a per-class table for each instance's class.

  Args:
    table: [C, ...] one row per class (0-based class index).
    classes: int [N] 0-based class of each instance.

  Returns:
    [N, ...] ``table[classes]``.
  """
  return tf.gather(table, tf.cast(classes, tf.int32), axis=0)


def per_instance_projection(features, weights, biases):
  """One output channel per instance: a 1x1 projection with its own weights.

  Args:
    features: [N, M, M, D] the head's last features.
    weights: [N, D] projection weights of each instance (its class's).
    biases: [N] projection bias of each instance.

  Returns:
    [N, M, M] float32 logits: features[n] . weights[n] + biases[n].
  """
  features = tf.cast(features, tf.float32)
  logits = tf.einsum('nhwd,nd->nhw', features, tf.cast(weights, tf.float32))
  return logits + tf.cast(biases, tf.float32)[:, None, None]


def class_channel_logits(features, class_weights, class_biases, classes):
  """The logits of each instance's class channel of a per-class projection.

  Equals ``conv1x1(features, class_weights^T) + class_biases`` then picking
  channel ``classes[n]`` for instance n, without computing other channels.

  Args:
    features: [N, M, M, D] the head's last features.
    class_weights: [C, D] weights of each class's output channel.
    class_biases: [C] bias of each class's output channel.
    classes: int [N] 0-based class of each instance.

  Returns:
    [N, M, M] float32 logits.
  """
  return per_instance_projection(
      features, gather_class_rows(class_weights, classes),
      gather_class_rows(class_biases, classes))
