"""Photometric augmentations (OD API semantics): image only.

Images are float32 [height, width, 3] in [0, 255]; each op works on
image / 255 with the ``tf.image`` adjustment and clips the result back to
[0, 255]. As in the OD API these are applied to every image (no probability).
"""

import tensorflow as tf

from deepmac_tf.data.fields import InputFields


def _adjust(tensors, adjust_fn):
  result = dict(tensors)
  image = adjust_fn(tensors[InputFields.IMAGE] / 255.0) * 255.0
  result[InputFields.IMAGE] = tf.clip_by_value(image, 0.0, 255.0)
  return result


def random_adjust_brightness(tensors, max_delta=0.2, seed=None):
  """Adds delta ~ U(-max_delta, max_delta) (in [0, 1] units) to all pixels."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return _adjust(tensors, lambda x: tf.image.adjust_brightness(x, delta))


def random_adjust_contrast(tensors, min_delta=0.8, max_delta=1.25, seed=None):
  """Scales contrast by a factor ~ U(min_delta, max_delta)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return _adjust(tensors, lambda x: tf.image.adjust_contrast(x, factor))


def random_adjust_hue(tensors, max_delta=0.02, seed=None):
  """Rotates hue by delta ~ U(-max_delta, max_delta) (fraction of a turn)."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return _adjust(tensors, lambda x: tf.image.adjust_hue(x, delta))


def random_adjust_saturation(tensors, min_delta=0.8, max_delta=1.25,
                             seed=None):
  """Scales saturation by a factor ~ U(min_delta, max_delta)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return _adjust(tensors, lambda x: tf.image.adjust_saturation(x, factor))
