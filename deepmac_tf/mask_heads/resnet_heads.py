"""ResNet mask heads: the OD API's `resnet4..20` and dilated ResNet-20s.

Structure (OD API `ResNetMaskNetwork`, spec section 3.3):
  `input_layer`: Conv2D(nc, 1x1, with bias) on the [N, S, S, C_in] crop, then
  `model`: a functional Keras model on [None, None, nc] made of stacks of
  pre-activation basic blocks named `resnet_mask_block_{i}_block{j}_*`.

| network_type       | stacks (channels x blocks) | dilated (rate 2) 3x3 convs |
|--------------------|----------------------------|----------------------------|
| resnet4            | 2nc x 2                    | none                       |
| resnet8            | 2nc x 4                    | none                       |
| resnet12           | 2nc x 6                    | none                       |
| resnet16           | 2nc x 8                    | none                       |
| resnet20           | 2nc x 8, 3nc x 2           | none                       |
| resnet20_dilated10 | 2nc x 8, 3nc x 2           | the last 10 (last 5 blocks)|
| resnet20_dilated20 | 2nc x 8, 3nc x 2           | all 20                     |

The dilated variants are the paper's "ResNet-20 with 10 / 20 dilated (rate 2)
convolutions". A basic block has two 3x3 convs, so ResNet-20 has 20 of them,
counted in network order (block 1 conv 1, block 1 conv 2, block 2 conv 1, ...).
`resnet20_dilated10` dilates the deepest 10: both convs of stack 0 blocks 6-8
and of stack 1 blocks 1-2. Dilated convs pad by their rate, so the output
resolution always equals the input resolution.

The layer graph (layer kinds, names, and the order of every connection)
mirrors the OD API so its checkpoints map onto `input_layer` and
`model/layer_with_weights-{j}` unchanged.
"""

import tf_keras

from deepmac_tf.layers import empty_batch
from deepmac_tf import errors

# Keras-applications ResNet epsilon, which the OD API's resnet_v1 blocks use.
BN_EPSILON = 1.001e-5

# network_type -> (stacks as (channel multiple of nc, blocks), dilated convs).
RESNET_HEAD_SPECS = {
    'resnet4': (((2, 2),), 0),
    'resnet8': (((2, 4),), 0),
    'resnet12': (((2, 6),), 0),
    'resnet16': (((2, 8),), 0),
    'resnet20': (((2, 8), (3, 2)), 0),
    'resnet20_dilated10': (((2, 8), (3, 2)), 10),
    'resnet20_dilated20': (((2, 8), (3, 2)), 20),
}

RESNET_HEAD_NAMES = tuple(RESNET_HEAD_SPECS)


def batch_norm(name, use_sync_batch_norm=False, epsilon=BN_EPSILON):
  """The batch norm of the ResNet-style heads (default Keras momentum 0.99)."""
  return tf_keras.layers.BatchNormalization(
      axis=-1, epsilon=epsilon, synchronized=use_sync_batch_norm, name=name)


def _basic_block(x, filters, conv_shortcut, dilation_rates, name,
                 use_sync_batch_norm):
  """One pre-activation basic block (OD API `block_basic`, stride 1).

  Args:
    x: [batch, height, width, channels] symbolic tensor.
    filters: output channels of both 3x3 convs (and of the block).
    conv_shortcut: whether the shortcut is a 1x1 conv (with bias) on the
      pre-activation; otherwise it is the identity on `x`.
    dilation_rates: (rate of conv 1, rate of conv 2).
    name: layer-name prefix, `resnet_mask_block_{i}_block{j}`.
    use_sync_batch_norm: synchronized batch norm across replicas.

  Returns:
    [batch, height, width, filters] symbolic tensor.
  """
  preact = batch_norm(name + '_preact_bn', use_sync_batch_norm)(x)
  preact = tf_keras.layers.Activation('relu', name=name + '_preact_relu')(
      preact)
  if conv_shortcut:
    shortcut = tf_keras.layers.Conv2D(filters, 1, name=name + '_0_conv')(preact)
  else:
    shortcut = x
  y = preact
  for index, rate in enumerate(dilation_rates, start=1):
    prefix = '{}_{}'.format(name, index)
    y = tf_keras.layers.ZeroPadding2D(padding=rate, name=prefix + '_pad')(y)
    y = tf_keras.layers.Conv2D(
        filters, 3, dilation_rate=rate, use_bias=False,
        name=prefix + '_conv')(y)
    y = batch_norm(prefix + '_bn', use_sync_batch_norm)(y)
    y = tf_keras.layers.Activation('relu', name=prefix + '_relu')(y)
  return tf_keras.layers.Add(name=name + '_out')([shortcut, y])


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class ResNetMaskNetwork(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """Stacks of pre-activation basic blocks behind a 1x1 input projection.

  Maps [N, S, S, C_in] to [N, S, S, stack_channels[-1]] (resolution kept).
  Checkpoint children: `input_layer` (Conv2D) and `model` (functional).
  """

  def __init__(self, num_init_channels, stack_channels=(16,),
               stack_blocks=(2,), num_dilated_convs=0, dilation_rate=2,
               use_sync_batch_norm=False, **kwargs):
    """Builds the network.

    Args:
      num_init_channels: nc, output channels of the 1x1 `input_layer`.
      stack_channels: channels of each stack (absolute, e.g. (2nc, 3nc)).
      stack_blocks: blocks of each stack; each must be >= 2 (OD API stacks:
        first block with conv shortcut, the others identity).
      num_dilated_convs: how many of the deepest 3x3 convs are dilated.
      dilation_rate: dilation of those convs.
      use_sync_batch_norm: synchronized batch norm across replicas.
      **kwargs: base Layer arguments (name, dtype, ...).
    """
    super().__init__(**kwargs)
    stack_channels = tuple(int(c) for c in stack_channels)
    stack_blocks = tuple(int(b) for b in stack_blocks)
    if len(stack_channels) != len(stack_blocks) or not stack_channels:
      raise ValueError('stack_channels {} and stack_blocks {} must be '
                       'non-empty and of equal length.'.format(
                           stack_channels, stack_blocks))
    if min(stack_blocks) < 2:
      raise ValueError('Every ResNet stack needs >= 2 blocks, got {}.'.format(
          stack_blocks))
    num_convs = 2 * sum(stack_blocks)
    if not 0 <= num_dilated_convs <= num_convs:
      raise ValueError('num_dilated_convs must be in [0, {}], got {}.'.format(
          num_convs, num_dilated_convs))
    self._num_init_channels = int(num_init_channels)
    self._stack_channels = stack_channels
    self._stack_blocks = stack_blocks
    self._num_dilated_convs = int(num_dilated_convs)
    self._dilation_rate = int(dilation_rate)
    self._use_sync_batch_norm = bool(use_sync_batch_norm)

    self.input_layer = tf_keras.layers.Conv2D(
        self._num_init_channels, 1, name='input_layer')
    self.model = self._build_model()

  def conv_dilation_rates(self):
    """Dilation rate of every 3x3 conv, in network order (a list of ints)."""
    num_convs = 2 * sum(self._stack_blocks)
    first_dilated = num_convs - self._num_dilated_convs
    return [self._dilation_rate if i >= first_dilated else 1
            for i in range(num_convs)]

  def _build_model(self):
    rates = iter(self.conv_dilation_rates())
    inputs = tf_keras.Input(shape=(None, None, self._num_init_channels))
    x = inputs
    for i, (channels, blocks) in enumerate(
        zip(self._stack_channels, self._stack_blocks)):
      for j in range(1, blocks + 1):
        x = _basic_block(
            x, channels, conv_shortcut=(j == 1),
            dilation_rates=(next(rates), next(rates)),
            name='resnet_mask_block_{}_block{}'.format(i, j),
            use_sync_batch_norm=self._use_sync_batch_norm)
    return tf_keras.Model(inputs=inputs, outputs=x)

  @property
  def output_channels(self):
    return self._stack_channels[-1]

  def call(self, inputs, training=None):
    """[N, S, S, C_in] -> [N, S, S, stack_channels[-1]]."""
    return self.model(self.input_layer(inputs), training=training)

  def get_config(self):
    config = super().get_config()
    config.update({
        'num_init_channels': self._num_init_channels,
        'stack_channels': list(self._stack_channels),
        'stack_blocks': list(self._stack_blocks),
        'num_dilated_convs': self._num_dilated_convs,
        'dilation_rate': self._dilation_rate,
        'use_sync_batch_norm': self._use_sync_batch_norm,
    })
    return config


def build_resnet_head(network_type, num_init_channels,
                      use_sync_batch_norm=False):
  """Builds a ResNet head by its registry name (see the module table).

  Args:
    network_type: one of RESNET_HEAD_NAMES.
    num_init_channels: nc.
    use_sync_batch_norm: synchronized batch norm across replicas.

  Returns:
    A ResNetMaskNetwork mapping [N, S, S, C_in] to [N, S, S, 2nc or 3nc].
  """
  if network_type not in RESNET_HEAD_SPECS:
    raise errors.ArgumentError('unknown ResNet mask head {!r}; expected one '
                               'of {}.'.format(network_type, RESNET_HEAD_NAMES),
                               'network_type')
  stacks, num_dilated = RESNET_HEAD_SPECS[network_type]
  return ResNetMaskNetwork(
      num_init_channels,
      stack_channels=[m * num_init_channels for m, _ in stacks],
      stack_blocks=[b for _, b in stacks],
      num_dilated_convs=num_dilated,
      use_sync_batch_norm=use_sync_batch_norm,
      name=network_type)

__all__ = ['BN_EPSILON', 'RESNET_HEAD_NAMES', 'RESNET_HEAD_SPECS',
           'ResNetMaskNetwork', 'batch_norm', 'build_resnet_head']
