"""Reshapes between the [batch, num_instances, ...] layout of per-instance
tensors and the flat [batch * num_instances, ...] one the mask heads take,
and resizing of per-instance logits. Pure functions, XLA-friendly."""

import tensorflow as tf


def flatten_instances(tensor):
  """[B, N, ...] -> [B * N, ...]."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))


def unflatten_instances(tensor, batch, num_instances):
  """[B * N, ...] -> [B, N, ...]."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor,
                    tf.concat([[batch, num_instances], shape[1:]], 0))


def resize_logits(logits, height, width):
  """Bilinearly resizes [B, N, h, w] logits to [B, N, height, width]."""
  batch = tf.shape(logits)[0]
  num_instances = tf.shape(logits)[1]
  flat = flatten_instances(logits)[..., None]
  resized = tf.image.resize(flat, tf.stack([height, width]),
                            method=tf.image.ResizeMethod.BILINEAR)
  return unflatten_instances(resized[..., 0], batch, num_instances)
