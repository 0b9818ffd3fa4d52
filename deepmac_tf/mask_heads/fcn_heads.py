"""The Mask R-CNN default mask head: a plain stack of 3x3 convolutions.

``mask_rcnn_fcn`` is the head of Mask R-CNN (He et al.) used by Deep-MARC's
"default" setting (spec section 1, "14x14 crop -> 28x28 mask (4 convs)"):
four [Conv2D(nc, 3x3, with bias) -> BatchNorm -> ReLU] layers at the crop's
resolution. The upsampling to the mask size and the projection to logits are
not part of the core network (see ``upsampling_mask_head.py``), as for every
catalogue head.

| network_type  | layers                                     |
|---------------|--------------------------------------------|
| mask_rcnn_fcn | 4 x (conv 3x3, nc channels, BN, ReLU)      |
| mask_rcnn_fcn12 | 12 x (the same): the deeper teacher of the  |
|               | teacher-student heads (Zhao et al.)        |
"""

import tensorflow as tf
import tf_keras

from deepmac_tf.layers import empty_batch

# network_type -> number of conv layers.
FCN_HEAD_SPECS = {'mask_rcnn_fcn': 4, 'mask_rcnn_fcn12': 12}
FCN_HEAD_NAMES = tuple(FCN_HEAD_SPECS)


def _he_fan_out():
  return tf_keras.initializers.VarianceScaling(
      scale=2.0, mode='fan_out', distribution='untruncated_normal')


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class ConvStackMaskNetwork(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """[N, S, S, C_in] -> [N, S, S, nc]: ``num_convs`` conv-BN-ReLU layers."""

  def __init__(self, num_convs=4, num_filters=256, use_sync_batch_norm=False,
               **kwargs):
    """Builds the layers.

    Args:
      num_convs: number of 3x3 conv layers.
      num_filters: nc, the width of every layer.
      use_sync_batch_norm: synchronized batch norm across replicas.
      **kwargs: base Layer arguments (name, dtype, ...).
    """
    super().__init__(**kwargs)
    self._num_convs = int(num_convs)
    self._num_filters = int(num_filters)
    self._use_sync_batch_norm = bool(use_sync_batch_norm)
    self._convs = [
        tf_keras.layers.Conv2D(
            self._num_filters, 3, padding='same',
            kernel_initializer=_he_fan_out(),
            bias_initializer=tf.zeros_initializer(), name=f'conv_{i}')
        for i in range(self._num_convs)]
    self._norms = [
        tf_keras.layers.BatchNormalization(
            synchronized=self._use_sync_batch_norm, name=f'bn_{i}')
        for i in range(self._num_convs)]

  def call(self, inputs, training=None):
    """Runs the stack.

    Args:
      inputs: [N, S, S, C_in] crop features (N may be 0).
      training: Keras training flag (batch norm).

    Returns:
      [N, S, S, nc] features in the compute dtype.
    """
    x = inputs
    for conv, norm in zip(self._convs, self._norms):
      x = tf.nn.relu(norm(conv(x), training=training))
    return x

  def get_config(self):
    config = super().get_config()
    config.update({'num_convs': self._num_convs,
                   'num_filters': self._num_filters,
                   'use_sync_batch_norm': self._use_sync_batch_norm})
    return config


def build_fcn_head(network_type, num_init_channels, use_sync_batch_norm=False):
  """Builds ``network_type`` (a name in FCN_HEAD_NAMES) with width nc."""
  return ConvStackMaskNetwork(
      num_convs=FCN_HEAD_SPECS[network_type], num_filters=num_init_channels,
      use_sync_batch_norm=use_sync_batch_norm, name=network_type)
