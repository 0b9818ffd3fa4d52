"""Label steps of the OD API preprocessor (1-based label-map ids)."""

import tensorflow as tf

from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_CLASSES = InputFields.CLASSES


def drop_label_probabilistically(tensors, label, drop_probability=1.0,
                                 seed=None):
  """Drops each instance of ``label`` (with its box, mask and other fields)
  independently with ``drop_probability`` (OD API)."""
  classes = tensors[_CLASSES]
  keep = tf.logical_or(
      tf.random.uniform(tf.shape(classes), seed=seed) > drop_probability,
      tf.not_equal(classes, label))
  return instances.gather_instances(tensors,
                                    tf.reshape(tf.where(keep), [-1]))


def remap_labels(tensors, original_labels, new_label):
  """Gives every instance whose label is in ``original_labels`` the label
  ``new_label``."""
  classes = tensors[_CLASSES]
  hit = tf.reduce_any(tf.equal(classes[:, tf.newaxis],
                               tf.constant(list(original_labels),
                                           classes.dtype)), axis=1)
  result = dict(tensors)
  result[_CLASSES] = tf.where(hit, tf.cast(new_label, classes.dtype), classes)
  return result
