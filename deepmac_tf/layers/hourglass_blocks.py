"""Building blocks of the hourglass network (Newell et al. / CenterNet).

The attribute names of every layer here (`pad`, `conv`, `norm`, `relu`,
`conv_block`, `skip`, `residual_block`) are the ones the TF Object Detection
API uses, so that an OD API checkpoint restores into these
layers object by object (the checkpoint object graph is keyed by attribute
name). Do not rename them. The encoder-decoder level and the stacked network
are in hourglass_network.py.

All convolutions are bias-free; every convolution is followed by batch norm
with epsilon 1e-5 and Keras momentum 0.1 (the moving averages keep 10% of the
old value per update), as in the OD API.
"""

import tensorflow as tf
import tf_keras

BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.1

_PACKAGE = 'deepmac_tf'


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class HourglassBatchNorm(tf_keras.layers.BatchNormalization):
  """Batch norm that leaves its moving statistics alone on an empty batch.

  Mask heads may see 0 instances. Plain Keras batch norm in training mode then
  writes NaN into the moving statistics (or, synchronized, decays the moving
  variance towards 0). Keras already implements the guard for partial batches under some
  distribution strategies; this subclass enables it everywhere. Variables and
  checkpoint names are those of `tf_keras.layers.BatchNormalization`.
  """

  def _support_zero_size_input(self):
    return True


def make_batch_norm(use_sync_batch_norm=False):
  """Returns the hourglass batch norm layer (named 'batchnorm' like the OD API).

  The layer is never the fused kernel: the OD API's hourglass uses
  SyncBatchNormalization, which is not fused, and the unfused inference
  formula reproduces its outputs bit for bit from an OD API checkpoint (the
  fused kernel differs by float32 round-off that grows with depth). Measured
  on CPU (hourglass20 head, tf.function): same training step time, inference
  somewhat slower than fused.

  Args:
    use_sync_batch_norm: bool, whether to synchronize the batch statistics
      across replicas of a `tf.distribute` strategy.
  """
  return HourglassBatchNorm(
      name='batchnorm', epsilon=BATCH_NORM_EPSILON,
      momentum=BATCH_NORM_MOMENTUM, synchronized=use_sync_batch_norm,
      fused=False)


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class IdentityLayer(tf_keras.layers.Layer):
  """Returns its input; stands in for an absent pad / ReLU / skip layer."""

  def call(self, inputs):
    return inputs


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class NearestUpsampling2D(tf_keras.layers.Layer):
  """Nearest-neighbour upsampling by an integer factor, XLA-trainable.

  Same values as `tf_keras.layers.UpSampling2D(size)` (output pixel i copies
  input pixel i // size), but built from a broadcast and a reshape: the
  gradient of the resize op that UpSampling2D uses has no XLA CPU kernel, so a
  jit-compiled training step would fail. Maps [batch, height, width, channels]
  to [batch, height * size, width * size, channels].
  """

  def __init__(self, size=2, **kwargs):
    super().__init__(**kwargs)
    self.size = int(size)

  def call(self, inputs):
    if self.size == 1:
      return inputs
    shape = tf.shape(inputs)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    tiled = tf.broadcast_to(
        inputs[:, :, tf.newaxis, :, tf.newaxis, :],
        [batch, height, self.size, width, self.size, channels])
    outputs = tf.reshape(
        tiled, [batch, height * self.size, width * self.size, channels])
    static = inputs.shape
    return tf.ensure_shape(outputs, [
        static[0],
        None if static[1] is None else static[1] * self.size,
        None if static[2] is None else static[2] * self.size,
        static[3]])

  def get_config(self):
    config = super().get_config()
    config['size'] = self.size
    return config


def _explicit_padding(kernel_size):
  """Zero padding the OD API puts in front of a 'valid' k x k convolution."""
  if kernel_size % 2 == 0:
    raise ValueError(f'Hourglass convolutions need an odd kernel size, got '
                     f'{kernel_size}.')
  return (kernel_size // 2, kernel_size // 2)


class HourglassLayer(tf_keras.layers.Layer):
  """Base of the blocks: keeps the constructor arguments for `get_config`.

  Arguments are stored as a tuple of (name, value) pairs because Keras does not
  track tuples of plain values, so no extra nodes appear in checkpoints.
  """

  def _remember_args(self, **kwargs):
    self._hourglass_args = tuple(sorted(kwargs.items()))

  def get_config(self):
    config = super().get_config()
    for key, value in self._hourglass_args:
      config[key] = list(value) if isinstance(value, tuple) else value
    return config


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class ConvolutionalBlock(HourglassLayer):
  """Zero padding, a bias-free convolution, batch norm and an optional ReLU.

  Maps [batch, height, width, in_channels] to
  [batch, ceil(height / stride), ceil(width / stride), out_channels].
  """

  def __init__(self, kernel_size, out_channels, stride=1, relu=True,
               use_sync_batch_norm=False, **kwargs):
    """Initializes the block.

    Args:
      kernel_size: int, odd convolution kernel size. For kernel_size > 1 the
        input is zero padded by kernel_size // 2 and the convolution is 'valid'.
      out_channels: int, number of output channels.
      stride: int, convolution stride.
      relu: bool, whether a ReLU follows the batch norm.
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._remember_args(kernel_size=kernel_size, out_channels=out_channels,
                        stride=stride, relu=relu,
                        use_sync_batch_norm=use_sync_batch_norm)
    if kernel_size > 1:
      self.pad = tf_keras.layers.ZeroPadding2D(_explicit_padding(kernel_size))
      padding = 'valid'
    else:
      self.pad = IdentityLayer()
      padding = 'same'
    self.conv = tf_keras.layers.Conv2D(
        filters=out_channels, kernel_size=kernel_size, strides=stride,
        padding=padding, use_bias=False)
    self.norm = make_batch_norm(use_sync_batch_norm)
    self.relu = tf_keras.layers.ReLU() if relu else IdentityLayer()

  def call(self, inputs, training=None):
    net = self.pad(inputs)
    net = self.conv(net)
    net = self.norm(net, training=training)
    return self.relu(net)


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class SkipConvolution(ConvolutionalBlock):
  """The 1x1 convolution + batch norm (no ReLU) on a residual shortcut."""

  def __init__(self, out_channels, stride, use_sync_batch_norm=False,
               **kwargs):
    """Initializes the shortcut projection.

    Args:
      out_channels: int, number of output channels.
      stride: int, stride matching the residual branch.
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    for fixed in ('kernel_size', 'relu'):
      kwargs.pop(fixed, None)  # Present when rebuilt from get_config.
    super().__init__(kernel_size=1, out_channels=out_channels, stride=stride,
                     relu=False, use_sync_batch_norm=use_sync_batch_norm,
                     **kwargs)


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class ResidualBlock(HourglassLayer):
  """Basic residual block: ReLU(BN(conv(conv_block(x))) + skip(x)).

  Maps [batch, height, width, in_channels] to
  [batch, ceil(height / stride), ceil(width / stride), out_channels].
  """

  def __init__(self, out_channels, skip_conv=False, kernel_size=3, stride=1,
               use_sync_batch_norm=False, **kwargs):
    """Initializes the block.

    Args:
      out_channels: int, number of output channels.
      skip_conv: bool, whether the shortcut is a `SkipConvolution`; it must be
        when stride > 1 or in_channels != out_channels.
      kernel_size: int, kernel size of both convolutions.
      stride: int, stride of the first convolution (and of the shortcut).
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._remember_args(out_channels=out_channels, skip_conv=skip_conv,
                        kernel_size=kernel_size, stride=stride,
                        use_sync_batch_norm=use_sync_batch_norm)
    self.conv_block = ConvolutionalBlock(
        kernel_size=kernel_size, out_channels=out_channels, stride=stride,
        use_sync_batch_norm=use_sync_batch_norm)
    self.conv = tf_keras.layers.Conv2D(
        filters=out_channels, kernel_size=kernel_size, strides=1,
        padding='same', use_bias=False)
    self.norm = make_batch_norm(use_sync_batch_norm)
    if skip_conv:
      self.skip = SkipConvolution(out_channels=out_channels, stride=stride,
                                  use_sync_batch_norm=use_sync_batch_norm)
    else:
      self.skip = IdentityLayer()
    self.relu = tf_keras.layers.ReLU()

  def call(self, inputs, training=None):
    net = self.conv_block(inputs, training=training)
    net = self.norm(self.conv(net), training=training)
    # Keras drops `training` for layers whose call() does not take it.
    shortcut = self.skip(inputs, training=training)
    return self.relu(net + shortcut)


class _InputBlock(HourglassLayer):
  """A ConvolutionalBlock followed by a ResidualBlock with a skip conv."""

  _KERNEL_SIZE = None
  _STRIDE = None

  def __init__(self, out_channels_initial_conv, out_channels_residual_block,
               use_sync_batch_norm=False, **kwargs):
    """Initializes the block.

    Args:
      out_channels_initial_conv: int, output channels of the first conv.
      out_channels_residual_block: int, output channels of the block.
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._remember_args(
        out_channels_initial_conv=out_channels_initial_conv,
        out_channels_residual_block=out_channels_residual_block,
        use_sync_batch_norm=use_sync_batch_norm)
    self.conv_block = ConvolutionalBlock(
        kernel_size=self._KERNEL_SIZE, out_channels=out_channels_initial_conv,
        stride=self._STRIDE, use_sync_batch_norm=use_sync_batch_norm)
    self.residual_block = ResidualBlock(
        out_channels=out_channels_residual_block, stride=self._STRIDE,
        skip_conv=True, use_sync_batch_norm=use_sync_batch_norm)

  def call(self, inputs, training=None):
    net = self.conv_block(inputs, training=training)
    return self.residual_block(net, training=training)


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class InputDownsampleBlock(_InputBlock):
  """Backbone stem: 7x7 stride-2 conv block, then a stride-2 residual block.

  Maps [batch, height, width, in_channels] to
  [batch, height / 4, width / 4, out_channels_residual_block].
  """

  _KERNEL_SIZE = 7
  _STRIDE = 2


@tf_keras.utils.register_keras_serializable(package=_PACKAGE)
class InputConvBlock(_InputBlock):
  """Mask-head stem: 3x3 conv block, then a residual block, both stride 1.

  Maps [batch, height, width, in_channels] to
  [batch, height, width, out_channels_residual_block].
  """

  _KERNEL_SIZE = 3
  _STRIDE = 1


def make_repeated_residual_blocks(out_channels, num_blocks, initial_stride=1,
                                  residual_channels=None,
                                  initial_skip_conv=False,
                                  use_sync_batch_norm=False):
  """Returns a list of `num_blocks` residual blocks applied in sequence.

  Blocks 0 .. num_blocks - 2 output `residual_channels`; the first of them has
  stride `initial_stride` and a skip conv when it downsamples or when
  `initial_skip_conv`. The last block outputs `out_channels`: with a single
  block it takes the initial stride and a skip conv if that stride is > 1;
  otherwise it has stride 1 and a skip conv iff the channels change.

  The OD API gives a single block no skip conv when only the channels change,
  which fails at run time; here it gets one (when `initial_skip_conv` or
  residual_channels != out_channels). Every configuration the OD API can run
  builds the same layers.

  Args:
    out_channels: int, output channels of the last block.
    num_blocks: int >= 1, number of blocks.
    initial_stride: int, stride of the first block.
    residual_channels: int, output channels of all but the last block
      (default: out_channels).
    initial_skip_conv: bool, force a skip conv on the first of the leading
      blocks (when the input channels differ from residual_channels).
    use_sync_batch_norm: bool, synchronized batch norm across replicas.
  """
  if num_blocks < 1:
    raise ValueError(f'An hourglass stage needs >= 1 residual block, got '
                     f'{num_blocks}.')
  if residual_channels is None:
    residual_channels = out_channels
  blocks = []
  for index in range(num_blocks - 1):
    stride = initial_stride if index == 0 else 1
    skip_conv = stride > 1 or (index == 0 and initial_skip_conv)
    blocks.append(ResidualBlock(out_channels=residual_channels, stride=stride,
                                skip_conv=skip_conv,
                                use_sync_batch_norm=use_sync_batch_norm))
  if num_blocks == 1:
    last_stride = initial_stride
    last_skip_conv = (initial_stride > 1 or initial_skip_conv or
                      residual_channels != out_channels)
  else:
    last_stride = 1
    last_skip_conv = residual_channels != out_channels
  blocks.append(ResidualBlock(out_channels=out_channels, stride=last_stride,
                              skip_conv=last_skip_conv,
                              use_sync_batch_norm=use_sync_batch_norm))
  return blocks


def apply_blocks(inputs, blocks, training=None):
  """Applies a list of layers in sequence."""
  net = inputs
  for block in blocks:
    net = block(net, training=training)
  return net
