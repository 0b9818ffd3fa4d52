"""The paper's ResNet bottleneck mask heads (Tables 14-15), full and 1/4 width.

Every head is `input_layer` (Conv2D 1x1 with bias, the table's "first layer")
followed by a functional `model` of pre-activation bottleneck stacks and a
final `post_bn` + ReLU. Depth counts the convs of the blocks (3 per block).

Table widths at num_init_channels (nc) = 64; "first" is the first layer and
a block is written (conv1, conv2, conv3):

| network_type                | first | stacks                              |
|-----------------------------|-------|-------------------------------------|
| resnet_bottleneck6          | 64    | 2x(128,512,128)                     |
| resnet_bottleneck9          | 64    | 3x(128,512,128)                     |
| resnet_bottleneck12         | 64    | 4x(128,512,128)                     |
| resnet_bottleneck15         | 64    | 5x(128,512,128)                     |
| resnet_bottleneck21         | 64    | 6x(128,512,128) + 1x(192,384,192)   |
| resnet_bottleneck_quarter6  | 16    | 2x(32,128,32)                       |
| resnet_bottleneck_quarter12 | 16    | 4x(32,128,32)                       |
| resnet_bottleneck_quarter21 | 16    | 6x(32,128,32) + 1x(48,192,48)       |
| resnet_bottleneck_quarter30 | 16    | 5x(32,128,32) + 5x(48,192,48)       |
| resnet_bottleneck_quarter51 | 16    | 6x(32,128,32) + 8x(48,192,48)       |
|                             |       |   + 3x(64,256,64)                   |

Reading of a table triple (a, b, c): the block's three convs output a, b and c
channels in order: conv1 1x1 -> a, conv2 3x3 -> b, conv3 1x1 -> c; c is the
block's (residual stream's) width.

Scaling rule: every width is table_width * nc / 64, so nc = 64 reproduces the
tables exactly (first layer 64, resp. 16 for the quarter family) and e.g.
nc = 16 gives a quarter of every width. The quarter family needs nc to be a
multiple of 4 (its first layer is nc / 4).

Block (pre-activation, as the ResNet heads' basic blocks):
  preact = ReLU(BN(x));
  shortcut = Conv2D(c, 1x1, bias)(preact) in the first block of a stack,
    identity on x otherwise;
  residual = Conv1x1(a, no bias) -> BN -> ReLU -> pad 1 -> Conv3x3(b, no bias)
    -> BN -> ReLU -> Conv1x1(c, bias);
  out = shortcut + residual.
BN epsilon 1.001e-5, momentum 0.99 (plain or synchronized).
"""

import tf_keras

from deepmac_tf.layers import empty_batch
from deepmac_tf import errors
from deepmac_tf.mask_heads import resnet_heads

_FULL = (128, 512, 128)
_FULL_WIDE = (192, 384, 192)
_QUARTER = (32, 128, 32)
_QUARTER_WIDE = (48, 192, 48)
_QUARTER_WIDEST = (64, 256, 64)

# network_type -> (first-layer width, ((block widths, blocks), ...)), both at
# nc = 64, i.e. exactly as in the paper's Tables 14 and 15.
BOTTLENECK_HEAD_SPECS = {
    'resnet_bottleneck6': (64, ((_FULL, 2),)),
    'resnet_bottleneck9': (64, ((_FULL, 3),)),
    'resnet_bottleneck12': (64, ((_FULL, 4),)),
    'resnet_bottleneck15': (64, ((_FULL, 5),)),
    'resnet_bottleneck21': (64, ((_FULL, 6), (_FULL_WIDE, 1))),
    'resnet_bottleneck_quarter6': (16, ((_QUARTER, 2),)),
    'resnet_bottleneck_quarter12': (16, ((_QUARTER, 4),)),
    'resnet_bottleneck_quarter21': (16, ((_QUARTER, 6), (_QUARTER_WIDE, 1))),
    'resnet_bottleneck_quarter30': (16, ((_QUARTER, 5), (_QUARTER_WIDE, 5))),
    'resnet_bottleneck_quarter51': (16, ((_QUARTER, 6), (_QUARTER_WIDE, 8),
                                         (_QUARTER_WIDEST, 3))),
}

BOTTLENECK_HEAD_NAMES = tuple(BOTTLENECK_HEAD_SPECS)

# Table widths are given for this num_init_channels.
TABLE_NUM_INIT_CHANNELS = 64


def _bottleneck_block(x, widths, conv_shortcut, name, use_sync_batch_norm):
  """One pre-activation bottleneck block.

  Args:
    x: [batch, height, width, channels] symbolic tensor.
    widths: (a, b, c) output channels of conv1 (1x1), conv2 (3x3), conv3 (1x1).
    conv_shortcut: whether the shortcut is a 1x1 conv on the pre-activation.
    name: layer-name prefix, `bottleneck_block_{i}_block{j}`.
    use_sync_batch_norm: synchronized batch norm across replicas.

  Returns:
    [batch, height, width, c] symbolic tensor.
  """
  a, b, c = widths
  relu = tf_keras.layers.Activation
  preact = resnet_heads.batch_norm(name + '_preact_bn', use_sync_batch_norm)(x)
  preact = relu('relu', name=name + '_preact_relu')(preact)
  if conv_shortcut:
    shortcut = tf_keras.layers.Conv2D(c, 1, name=name + '_0_conv')(preact)
  else:
    shortcut = x
  y = tf_keras.layers.Conv2D(a, 1, use_bias=False, name=name + '_1_conv')(
      preact)
  y = resnet_heads.batch_norm(name + '_1_bn', use_sync_batch_norm)(y)
  y = relu('relu', name=name + '_1_relu')(y)
  y = tf_keras.layers.ZeroPadding2D(padding=1, name=name + '_2_pad')(y)
  y = tf_keras.layers.Conv2D(b, 3, use_bias=False, name=name + '_2_conv')(y)
  y = resnet_heads.batch_norm(name + '_2_bn', use_sync_batch_norm)(y)
  y = relu('relu', name=name + '_2_relu')(y)
  y = tf_keras.layers.Conv2D(c, 1, name=name + '_3_conv')(y)
  return tf_keras.layers.Add(name=name + '_out')([shortcut, y])


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class BottleneckMaskNetwork(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """Pre-activation bottleneck stacks behind a 1x1 input projection.

  Maps [N, S, S, C_in] to [N, S, S, c of the last stack] (resolution kept).
  Checkpoint children: `input_layer` (Conv2D) and `model` (functional).
  """

  def __init__(self, first_layer_channels, stacks, use_sync_batch_norm=False,
               **kwargs):
    """Builds the network.

    Args:
      first_layer_channels: output channels of the 1x1 `input_layer`.
      stacks: sequence of ((a, b, c), num_blocks), absolute channel counts.
      use_sync_batch_norm: synchronized batch norm across replicas.
      **kwargs: base Layer arguments (name, dtype, ...).
    """
    super().__init__(**kwargs)
    self._first_layer_channels = int(first_layer_channels)
    self._stacks = tuple(
        (tuple(int(w) for w in widths), int(blocks))
        for widths, blocks in stacks)
    if not self._stacks:
      raise ValueError('A bottleneck mask head needs at least one stack.')
    for widths, blocks in self._stacks:
      if len(widths) != 3 or min(widths) < 1 or blocks < 1:
        raise ValueError('Bad bottleneck stack {}: expected ((a, b, c), '
                         'blocks >= 1) with positive widths.'.format(
                             (widths, blocks)))
    self._use_sync_batch_norm = bool(use_sync_batch_norm)

    self.input_layer = tf_keras.layers.Conv2D(
        self._first_layer_channels, 1, name='input_layer')
    self.model = self._build_model()

  @property
  def stacks(self):
    """((a, b, c), num_blocks) of every stack, absolute channel counts."""
    return self._stacks

  @property
  def output_channels(self):
    return self._stacks[-1][0][2]

  def _build_model(self):
    inputs = tf_keras.Input(shape=(None, None, self._first_layer_channels))
    x = inputs
    for i, (widths, blocks) in enumerate(self._stacks):
      for j in range(1, blocks + 1):
        x = _bottleneck_block(
            x, widths, conv_shortcut=(j == 1),
            name='bottleneck_block_{}_block{}'.format(i, j),
            use_sync_batch_norm=self._use_sync_batch_norm)
    x = resnet_heads.batch_norm('post_bn', self._use_sync_batch_norm)(x)
    x = tf_keras.layers.Activation('relu', name='post_relu')(x)
    return tf_keras.Model(inputs=inputs, outputs=x)

  def call(self, inputs, training=None):
    """[N, S, S, C_in] -> [N, S, S, output_channels]."""
    return self.model(self.input_layer(inputs), training=training)

  def get_config(self):
    config = super().get_config()
    config.update({
        'first_layer_channels': self._first_layer_channels,
        'stacks': [[list(widths), blocks] for widths, blocks in self._stacks],
        'use_sync_batch_norm': self._use_sync_batch_norm,
    })
    return config


def _scale(width, num_init_channels, network_type):
  scaled, remainder = divmod(width * num_init_channels,
                             TABLE_NUM_INIT_CHANNELS)
  if remainder or scaled < 1:
    raise errors.ArgumentError(
        '{} cannot scale {!r} (widths are table width * nc / 64; nc must make '
        'the table width {} a positive integer, e.g. a multiple of 4).'.format(
            num_init_channels, network_type, width), 'num_init_channels')
  return scaled


def scaled_spec(network_type, num_init_channels):
  """(first-layer width, stacks) of a head at `num_init_channels`."""
  first, stacks = BOTTLENECK_HEAD_SPECS[network_type]
  return (_scale(first, num_init_channels, network_type),
          tuple((tuple(_scale(w, num_init_channels, network_type)
                       for w in widths), blocks)
                for widths, blocks in stacks))


def build_bottleneck_head(network_type, num_init_channels,
                          use_sync_batch_norm=False):
  """Builds a Table 14-15 head by its registry name (see the module table).

  Args:
    network_type: one of BOTTLENECK_HEAD_NAMES.
    num_init_channels: nc; 64 gives the paper's widths exactly.
    use_sync_batch_norm: synchronized batch norm across replicas.

  Returns:
    A BottleneckMaskNetwork mapping [N, S, S, C_in] to [N, S, S, c_last].
  """
  if network_type not in BOTTLENECK_HEAD_SPECS:
    raise errors.ArgumentError('unknown bottleneck mask head {!r}; expected '
                               'one of {}.'.format(network_type,
                                                   BOTTLENECK_HEAD_NAMES),
                               'network_type')
  first, stacks = scaled_spec(network_type, num_init_channels)
  return BottleneckMaskNetwork(first, stacks,
                               use_sync_batch_norm=use_sync_batch_norm,
                               name=network_type)


__all__ = ['BOTTLENECK_HEAD_NAMES', 'BOTTLENECK_HEAD_SPECS',
           'BottleneckMaskNetwork', 'TABLE_NUM_INIT_CHANNELS',
           'build_bottleneck_head', 'scaled_spec']
