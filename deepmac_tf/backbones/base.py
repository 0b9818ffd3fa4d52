"""Base class of CenterNet feature extractors (backbones).

A feature extractor turns images into one or more stride-`out_stride` feature
maps; CenterNet puts its prediction heads on each of them (one output per
hourglass stack for Hourglass-104). As in the OD API, the extractor owns the
input normalization: `preprocess` subtracts per-channel means and divides by
per-channel standard deviations, after reversing RGB to BGR if asked.
"""

import abc

import tensorflow as tf
import tf_keras

from deepmac_tf import errors

DEFAULT_CHANNEL_MEANS = (0.0, 0.0, 0.0)
DEFAULT_CHANNEL_STDS = (1.0, 1.0, 1.0)


def normalize_channel_stats(channel_means=(), channel_stds=()):
  """Validates channel means / stds; empty sequences select the defaults.

  Args:
    channel_means: sequence of 0 or 3 floats (the config's repeated field).
    channel_stds: sequence of 0 or 3 non-zero floats.

  Returns:
    (means, stds), two tuples of 3 floats.

  Raises:
    ArgumentError: naming the argument, on a wrong length or a zero std.
  """
  means = tuple(float(v) for v in channel_means) or DEFAULT_CHANNEL_MEANS
  stds = tuple(float(v) for v in channel_stds) or DEFAULT_CHANNEL_STDS
  for field, values in (('channel_means', means), ('channel_stds', stds)):
    if len(values) != 3:
      raise errors.ArgumentError(
          f'expected 3 values (one per image channel) or none, got '
          f'{len(values)}: {list(values)}.', field)
  if any(v == 0.0 for v in stds):
    raise errors.ArgumentError(
        f'values must be non-zero, got {list(stds)}.', 'channel_stds')
  return means, stds


class CenterNetFeatureExtractor(tf_keras.layers.Layer, metaclass=abc.ABCMeta):
  """Images [batch, height, width, 3] -> list of stride-4 feature maps.

  Subclasses implement `call` and the `num_feature_outputs` / `out_stride`
  properties; they store their network under a stable attribute name (the OD
  API's, e.g. `_network`) so that checkpoints map 1:1.
  """

  def __init__(self, channel_means=DEFAULT_CHANNEL_MEANS,
               channel_stds=DEFAULT_CHANNEL_STDS, bgr_ordering=False,
               **kwargs):
    """Initializes the preprocessing parameters.

    Args:
      channel_means: 3 floats subtracted from the (reordered) channels; an
        empty sequence means zeros.
      channel_stds: 3 non-zero floats dividing the centred channels; an empty
        sequence means ones.
      bgr_ordering: bool, reverse the channels (RGB -> BGR) before
        normalizing; the means and stds are then in BGR order.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    # Tuples of floats: not tracked, so no extra checkpoint nodes.
    self._channel_means, self._channel_stds = normalize_channel_stats(
        channel_means, channel_stds)
    self._bgr_ordering = bool(bgr_ordering)

  @property
  def channel_means(self):
    return self._channel_means

  @property
  def channel_stds(self):
    return self._channel_stds

  @property
  def bgr_ordering(self):
    return self._bgr_ordering

  def preprocess(self, images):
    """Normalizes images for the network.

    Args:
      images: [batch, height, width, 3] RGB images, float (or int) 0..255.

    Returns:
      [batch, height, width, 3] float32 (x - mean) / std, channels reversed
      first when `bgr_ordering`.
    """
    images = tf.cast(images, tf.float32)
    if self._bgr_ordering:
      images = tf.reverse(images, axis=[-1])
    means = tf.constant(self._channel_means, tf.float32)
    stds = tf.constant(self._channel_stds, tf.float32)
    return (images - means) / stds

  @abc.abstractmethod
  def call(self, inputs, training=None):
    """Computes the feature maps.

    Args:
      inputs: [batch, height, width, 3] preprocessed images.
      training: bool or None, batch-norm mode (None: Keras learning phase).

    Returns:
      A list of `num_feature_outputs` tensors
      [batch, height / out_stride, width / out_stride, channels].
    """

  @property
  @abc.abstractmethod
  def num_feature_outputs(self):
    """Number of feature maps `call` returns."""

  @property
  @abc.abstractmethod
  def out_stride(self):
    """Stride of the feature maps with respect to the input image."""

  @property
  def classification_backbone(self):
    """What an OD API 'classification' fine-tune checkpoint restores: the
    ``tf_keras.applications`` network the OD API saves as
    ``feature_extractor`` (layer graph identical to its own), or None when
    this extractor has none."""
    return None

  def get_config(self):
    config = super().get_config()
    config.update(channel_means=list(self._channel_means),
                  channel_stds=list(self._channel_stds),
                  bgr_ordering=self._bgr_ordering)
    return config


class SingleOutputStride4Extractor(CenterNetFeatureExtractor):
  """A feature extractor returning one stride-4 map (the ResNet and
  MobileNetV2 extractors; Hourglass returns one map per stack)."""

  @property
  def num_feature_outputs(self):
    return 1

  @property
  def out_stride(self):
    return 4
