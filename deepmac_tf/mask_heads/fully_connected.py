"""Fully connected mask heads: the OD API's `fully_connected`, paper FC-2/FC-4.

All three reduce the [N, S, S, C_in] crop with `input_layer` (Conv2D nc, 1x1,
with bias), flatten it to [N, S*S*nc] and run dense layers `fc1`..`fcK`; the
last one has S*S units (one logit per pixel) and the output is reshaped to
[N, S, S, 1]. The dense layers live in a functional `model` (OD API layout).

| network_type     | dense layers (units)         | kernel init    | source    |
|------------------|------------------------------|----------------|-----------|
| fully_connected  | 1024 (ReLU), S*S             | Glorot-uniform | OD API    |
| fully_connected2 | 1024 (ReLU), S*S             | Glorot-normal  | paper FC-2|
| fully_connected4 | 1024, 1024, 1024 (ReLU), S*S | Glorot-normal  | paper FC-4|

The input crop must be S x S with S = mask_size, since the dense layers have
a fixed size.
"""

import tensorflow as tf
import tf_keras

from deepmac_tf.layers import empty_batch
from deepmac_tf import errors

# network_type -> (hidden units of fc1..fc{K-1}, dense kernel initializer).
FULLY_CONNECTED_HEAD_SPECS = {
    'fully_connected': ((1024,), 'glorot_uniform'),
    'fully_connected2': ((1024,), 'glorot_normal'),
    'fully_connected4': ((1024, 1024, 1024), 'glorot_normal'),
}

FULLY_CONNECTED_HEAD_NAMES = tuple(FULLY_CONNECTED_HEAD_SPECS)


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class FullyConnectedMaskHead(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """1x1 conv, flatten, dense layers: [N, S, S, C_in] -> [N, S, S, 1].

  Checkpoint children: `input_layer`, `fc1`..`fcK` and `model` (which holds
  the same dense layers; OD API object names).
  """

  def __init__(self, num_init_channels, mask_size, hidden_units=(1024,),
               kernel_initializer='glorot_uniform', **kwargs):
    """Builds the head.

    Args:
      num_init_channels: nc, channels kept by the 1x1 `input_layer`.
      mask_size: S, the input and output crop size.
      hidden_units: units of the hidden (ReLU) dense layers, in order.
      kernel_initializer: Keras initializer name of the dense kernels.
      **kwargs: base Layer arguments (name, dtype, ...).
    """
    super().__init__(**kwargs)
    if mask_size is None or int(mask_size) < 1:
      raise errors.ArgumentError(
          'must be set to a positive crop size for a fully connected mask '
          'head, got {!r}.'.format(mask_size), 'mask_size')
    self._num_init_channels = int(num_init_channels)
    self._mask_size = int(mask_size)
    self._hidden_units = tuple(int(u) for u in hidden_units)
    self._kernel_initializer = kernel_initializer

    self.input_layer = tf_keras.layers.Conv2D(
        self._num_init_channels, 1, name='input_layer')
    flat_size = self._mask_size * self._mask_size * self._num_init_channels
    inputs = tf_keras.Input(shape=(flat_size,))
    x = inputs
    all_units = self._hidden_units + (self._mask_size * self._mask_size,)
    for index, units in enumerate(all_units, start=1):
      last = index == len(all_units)
      dense = tf_keras.layers.Dense(
          units, activation=None if last else 'relu',
          kernel_initializer=tf_keras.initializers.get(kernel_initializer),
          name='fc{}'.format(index))
      # Tracked as `fc1`, `fc2`, ... (stable checkpoint names).
      setattr(self, 'fc{}'.format(index), dense)
      x = dense(x)
    self._num_dense = len(all_units)
    self.model = tf_keras.Model(inputs=inputs, outputs=x)

  @property
  def dense_layers(self):
    """[fc1, ..., fcK]."""
    return [getattr(self, 'fc{}'.format(i))
            for i in range(1, self._num_dense + 1)]

  @property
  def output_channels(self):
    return 1

  def call(self, inputs, training=None):
    """[N, S, S, C_in] -> [N, S, S, 1] logits."""
    height, width = inputs.shape[1], inputs.shape[2]
    if ((height is not None and height != self._mask_size) or
        (width is not None and width != self._mask_size)):
      raise errors.ArgumentError(
          'a fully connected mask head built for mask_size {} got a {}x{} '
          'crop; mask_size must equal the crop size.'.format(
              self._mask_size, height, width), 'mask_size')
    x = self.input_layer(inputs)
    x = tf.reshape(x, [-1, self._mask_size * self._mask_size *
                       self._num_init_channels])
    x = self.model(x, training=training)
    return tf.reshape(x, [-1, self._mask_size, self._mask_size, 1])

  def get_config(self):
    config = super().get_config()
    config.update({
        'num_init_channels': self._num_init_channels,
        'mask_size': self._mask_size,
        'hidden_units': list(self._hidden_units),
        'kernel_initializer': self._kernel_initializer,
    })
    return config


def build_fully_connected_head(network_type, num_init_channels, mask_size):
  """Builds a fully connected head by its registry name (see the module table).

  Args:
    network_type: one of FULLY_CONNECTED_HEAD_NAMES.
    num_init_channels: nc.
    mask_size: S, required.

  Returns:
    A FullyConnectedMaskHead mapping [N, S, S, C_in] to [N, S, S, 1].
  """
  if network_type not in FULLY_CONNECTED_HEAD_SPECS:
    raise errors.ArgumentError(
        'unknown fully connected mask head {!r}; expected one of {}.'.format(
            network_type, FULLY_CONNECTED_HEAD_NAMES), 'network_type')
  hidden_units, initializer = FULLY_CONNECTED_HEAD_SPECS[network_type]
  return FullyConnectedMaskHead(num_init_channels, mask_size,
                                hidden_units=hidden_units,
                                kernel_initializer=initializer,
                                name=network_type)


__all__ = ['FULLY_CONNECTED_HEAD_NAMES', 'FULLY_CONNECTED_HEAD_SPECS',
           'FullyConnectedMaskHead', 'build_fully_connected_head']
