"""MaskX R-CNN's class-agnostic MLP mask branch ("Learning to Segment Every
Thing", Hu et al., section 3.4).

    crop [N, S, S, C] -> flatten -> (Dense(fc_dim) -> ReLU) x num_fc_layers
    -> Dense(M * M) -> [N, M, M] float32 logits

Its M x M logits are added to the FCN head's logits of the instance's class
(or of a class-agnostic head) before the sigmoid: one mask prediction per
box, fused with the class-specific one. It reads the mask ROI crop, so it
works with any catalogue head.
"""

import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf.layers import empty_batch


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class MlpMaskBranch(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """[N, S, S, C] crops -> [N, M, M] class-agnostic mask logits."""

  def __init__(self, mask_size, num_fc_layers=2, fc_dim=1024, **kwargs):
    """Builds the dense layers.

    Args:
      mask_size: M, the output mask size (the FCN head's).
      num_fc_layers: hidden fully connected layers (0 = one linear layer).
      fc_dim: width of the hidden layers.
      **kwargs: base Layer arguments.

    Raises:
      ArgumentError: bad ``num_fc_layers`` or ``fc_dim`` (the builder names
        its config field).
      ValueError: ``mask_size`` < 1 (the mask head's size, checked by the
        builder with that head).
    """
    super().__init__(**kwargs)
    if int(num_fc_layers) < 0:
      raise errors.ArgumentError(f'must be >= 0, got {num_fc_layers}.',
                                 'num_fc_layers')
    if int(fc_dim) < 1:
      raise errors.ArgumentError(f'must be >= 1, got {fc_dim}.', 'fc_dim')
    if int(mask_size) < 1:
      raise ValueError(f'mask_size must be >= 1, got {mask_size}.')
    self._mask_size = int(mask_size)
    self._num_fc_layers = int(num_fc_layers)
    self._fc_dim = int(fc_dim)
    self.flatten = tf_keras.layers.Flatten()
    self.fc_layers = [
        tf_keras.layers.Dense(self._fc_dim, activation='relu', name=f'fc_{i}')
        for i in range(self._num_fc_layers)]
    self.mask_logits = tf_keras.layers.Dense(self._mask_size ** 2,
                                             name='mask_logits')

  def call(self, crops, training=None):
    """[N, S, S, C] crops -> [N, M, M] float32 logits."""
    del training  # no batch norm / dropout
    x = self.flatten(tf.cast(crops, self.compute_dtype))
    for layer in self.fc_layers:
      x = layer(x)
    x = tf.cast(self.mask_logits(x), tf.float32)
    return tf.reshape(x, [-1, self._mask_size, self._mask_size])

  def get_config(self):
    config = super().get_config()
    config.update({'mask_size': self._mask_size,
                   'num_fc_layers': self._num_fc_layers,
                   'fc_dim': self._fc_dim})
    return config
