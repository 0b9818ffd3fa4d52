"""The stacked hourglass network and its named configurations.

`HourglassNetwork` and `EncoderDecoderBlock` mirror the OD API's hourglass
network (`models/keras_models/hourglass_network.py`) attribute for attribute
(`conv_input` / `downsample_input`, `hourglass_network`, `output_conv`,
`intermediate_conv1/2`, `intermediate_relu`, `intermediate_residual`;
`encoder_block1/2`, `inner_block`, `decoder_block`, `upsample`,
`merge_features`), so OD API checkpoints restore 1:1. It serves both as
the CenterNet backbone (initial 4x downsampling, two stacks for Hourglass-104)
and as Deep-MAC's mask head (no initial downsampling, one stack).
"""

import tf_keras

from deepmac_tf.layers import empty_batch
from deepmac_tf.layers import hourglass_blocks

# Depth -> (blocks_per_stage, channel multipliers of num_channels per stage) of
# the single-stack hourglasses hourglass_10 ... hourglass_100. Their stem
# (input conv block) has num_channels channels.
HOURGLASS_DEPTHS = {
    10: ((1, 1), (2, 2)),
    20: ((1, 2, 2), (2, 2, 3)),
    32: ((2, 2, 2, 2), (2, 2, 3, 3)),
    52: ((2, 2, 2, 2, 2, 4), (2, 2, 3, 3, 3, 4)),
    100: ((4, 4, 4, 4, 4, 8), (2, 2, 3, 3, 3, 4)),
}

# Hourglass-104 (CenterNet, Zhou et al. 2019).
_HOURGLASS_104 = dict(
    input_channel_dims=128,
    channel_dims_per_stage=(256, 256, 384, 384, 384, 512),
    blocks_per_stage=(2, 2, 2, 2, 2, 4),
    num_hourglasses=2,
    num_stages=5,
)

_STEM_STRIDE = 4


@tf_keras.utils.register_keras_serializable(package='deepmac_tf')
class EncoderDecoderBlock(hourglass_blocks.HourglassLayer):
  """One level of the hourglass, recursively holding the deeper levels.

  Output = encoder_block1(x) + upsample(decoder(inner(encoder_block2(x)))),
  or only the second term without the encoder-decoder shortcut. Maps
  [batch, height, width, channels] to [batch, height, width, channel_dims[0]];
  height and width must be divisible by 2**num_stages when downsampling.
  """

  def __init__(self, num_stages, channel_dims, blocks_per_stage,
               stagewise_downsample=True, encoder_decoder_shortcut=True,
               use_sync_batch_norm=False, **kwargs):
    """Initializes the block.

    Args:
      num_stages: int >= 1, number of levels below this one (inclusive).
      channel_dims: list of num_stages + 1 ints; channel_dims[0] is the width
        at this level, channel_dims[1:] the widths of the inner levels.
      blocks_per_stage: list of num_stages + 1 ints, residual blocks per level.
      stagewise_downsample: bool, halve the resolution at each level (else the
        whole hourglass works at the input resolution).
      encoder_decoder_shortcut: bool, add the long-range encoder_block1 skip.
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    channel_dims = tuple(int(c) for c in channel_dims)
    blocks_per_stage = tuple(int(b) for b in blocks_per_stage)
    if len(channel_dims) < num_stages + 1 or (
        len(blocks_per_stage) < num_stages + 1):
      raise ValueError(
          f'EncoderDecoderBlock with {num_stages} stages needs at least '
          f'{num_stages + 1} channel dims and blocks per stage, got '
          f'{list(channel_dims)} and {list(blocks_per_stage)}.')
    self._remember_args(num_stages=num_stages, channel_dims=channel_dims,
                        blocks_per_stage=blocks_per_stage,
                        stagewise_downsample=stagewise_downsample,
                        encoder_decoder_shortcut=encoder_decoder_shortcut,
                        use_sync_batch_norm=use_sync_batch_norm)
    self._use_shortcut = bool(encoder_decoder_shortcut)
    outer, inner = channel_dims[0], channel_dims[1]
    sync = use_sync_batch_norm
    stride = 2 if stagewise_downsample else 1

    if self._use_shortcut:
      self.merge_features = tf_keras.layers.Add()
      self.encoder_block1 = hourglass_blocks.make_repeated_residual_blocks(
          out_channels=outer, num_blocks=blocks_per_stage[0],
          initial_stride=1, use_sync_batch_norm=sync)
    self.encoder_block2 = hourglass_blocks.make_repeated_residual_blocks(
        out_channels=inner, num_blocks=blocks_per_stage[0],
        initial_stride=stride, initial_skip_conv=outer != inner,
        use_sync_batch_norm=sync)
    if num_stages > 1:
      self.inner_block = [
          EncoderDecoderBlock(
              num_stages - 1, channel_dims[1:], blocks_per_stage[1:],
              stagewise_downsample=stagewise_downsample,
              encoder_decoder_shortcut=encoder_decoder_shortcut,
              use_sync_batch_norm=sync)
      ]
    else:
      self.inner_block = hourglass_blocks.make_repeated_residual_blocks(
          out_channels=inner, num_blocks=blocks_per_stage[1],
          use_sync_batch_norm=sync)
    self.decoder_block = hourglass_blocks.make_repeated_residual_blocks(
        out_channels=outer, num_blocks=blocks_per_stage[0],
        residual_channels=inner, use_sync_batch_norm=sync)
    self.upsample = hourglass_blocks.NearestUpsampling2D(stride)

  def call(self, inputs, training=None):
    net = hourglass_blocks.apply_blocks(inputs, self.encoder_block2, training)
    net = hourglass_blocks.apply_blocks(net, self.inner_block, training)
    net = hourglass_blocks.apply_blocks(net, self.decoder_block, training)
    upsampled = self.upsample(net)
    if not self._use_shortcut:
      return upsampled
    encoded = hourglass_blocks.apply_blocks(inputs, self.encoder_block1,
                                            training)
    return self.merge_features([encoded, upsampled])


@tf_keras.utils.register_keras_serializable(package='deepmac_tf')
class HourglassNetwork(empty_batch.EmptyBatchSafe, tf_keras.Model):
  """Stacked hourglasses with intermediate supervision outputs.

  Maps images or features [batch, height, width, in_channels] to a list of
  `num_hourglasses` tensors [batch, height / s, width / s,
  channel_dims_per_stage[0]] (s = 4 with `initial_downsample`, else 1), or to
  the last of them only when `return_last_only`. Height and width must be
  divisible by s * 2**num_stages when `stagewise_downsample`.
  """

  def __init__(self, num_stages, input_channel_dims, channel_dims_per_stage,
               blocks_per_stage, num_hourglasses, initial_downsample=True,
               stagewise_downsample=True, encoder_decoder_shortcut=True,
               use_sync_batch_norm=False, return_last_only=False, **kwargs):
    """Initializes the network.

    Args:
      num_stages: int >= 1, resolution levels per hourglass (each level has
        two encoder blocks and one decoder block; the second encoder block
        downsamples by 2).
      input_channel_dims: int, channels of the stem's first convolution.
      channel_dims_per_stage: list of num_stages + 1 ints, channels per level;
        the outputs have channel_dims_per_stage[0] channels.
      blocks_per_stage: list of num_stages + 1 ints, residual blocks per level.
      num_hourglasses: int >= 1, number of stacked hourglasses.
      initial_downsample: bool, use the 7x7 stride-4 stem (backbone) instead
        of the 3x3 stride-1 stem (mask head).
      stagewise_downsample: bool, halve the resolution at each level.
      encoder_decoder_shortcut: bool, long-range skips inside each hourglass.
      use_sync_batch_norm: bool, synchronized batch norm across replicas.
      return_last_only: bool, return only the last stack's output tensor
        instead of the list of all stacks' outputs.
      **kwargs: keyword arguments of `tf_keras.Model`.
    """
    super().__init__(**kwargs)
    channel_dims_per_stage = tuple(int(c) for c in channel_dims_per_stage)
    blocks_per_stage = tuple(int(b) for b in blocks_per_stage)
    if num_hourglasses < 1:
      raise ValueError(f'num_hourglasses must be >= 1, got {num_hourglasses}.')
    self._hourglass_args = (
        ('num_stages', num_stages),
        ('input_channel_dims', input_channel_dims),
        ('channel_dims_per_stage', channel_dims_per_stage),
        ('blocks_per_stage', blocks_per_stage),
        ('num_hourglasses', num_hourglasses),
        ('initial_downsample', initial_downsample),
        ('stagewise_downsample', stagewise_downsample),
        ('encoder_decoder_shortcut', encoder_decoder_shortcut),
        ('use_sync_batch_norm', use_sync_batch_norm),
        ('return_last_only', return_last_only),
    )
    self.num_hourglasses = int(num_hourglasses)
    self.initial_downsample = bool(initial_downsample)
    self._num_stages = int(num_stages)
    self._stagewise_downsample = bool(stagewise_downsample)
    self._return_last_only = bool(return_last_only)
    sync = use_sync_batch_norm
    width = channel_dims_per_stage[0]

    stem_class = (hourglass_blocks.InputDownsampleBlock if initial_downsample
                  else hourglass_blocks.InputConvBlock)
    stem = stem_class(out_channels_initial_conv=input_channel_dims,
                      out_channels_residual_block=width,
                      use_sync_batch_norm=sync)
    if initial_downsample:
      self.downsample_input = stem
    else:
      self.conv_input = stem

    self.hourglass_network = []
    self.output_conv = []
    for _ in range(self.num_hourglasses):
      self.hourglass_network.append(EncoderDecoderBlock(
          num_stages=num_stages, channel_dims=channel_dims_per_stage,
          blocks_per_stage=blocks_per_stage,
          stagewise_downsample=stagewise_downsample,
          encoder_decoder_shortcut=encoder_decoder_shortcut,
          use_sync_batch_norm=sync))
      self.output_conv.append(hourglass_blocks.ConvolutionalBlock(
          kernel_size=3, out_channels=width, use_sync_batch_norm=sync))

    self.intermediate_conv1 = []
    self.intermediate_conv2 = []
    self.intermediate_residual = []
    for _ in range(self.num_hourglasses - 1):
      self.intermediate_conv1.append(hourglass_blocks.ConvolutionalBlock(
          kernel_size=1, out_channels=width, relu=False,
          use_sync_batch_norm=sync))
      self.intermediate_conv2.append(hourglass_blocks.ConvolutionalBlock(
          kernel_size=1, out_channels=width, relu=False,
          use_sync_batch_norm=sync))
      self.intermediate_residual.append(hourglass_blocks.ResidualBlock(
          out_channels=width, use_sync_batch_norm=sync))
    self.intermediate_relu = tf_keras.layers.ReLU()

  @property
  def required_input_multiple(self):
    """Height and width of the input must be multiples of this."""
    multiple = _STEM_STRIDE if self.initial_downsample else 1
    if self._stagewise_downsample:
      multiple *= 2 ** self._num_stages
    return multiple

  def _check_input_size(self, inputs):
    multiple = self.required_input_multiple
    for axis, size in (('height', inputs.shape[1]), ('width', inputs.shape[2])):
      if size is not None and size % multiple:
        raise ValueError(
            f'{self.name}: input {axis} {size} must be a multiple of '
            f'{multiple} (stem stride x 2**{self._num_stages} hourglass '
            f'levels); input shape {inputs.shape}.')

  def call(self, inputs, training=None):  # pytype: disable=signature-mismatch
    self._check_input_size(inputs)
    if self.initial_downsample:
      net = self.downsample_input(inputs, training=training)
    else:
      net = self.conv_input(inputs, training=training)

    outputs = []
    for index in range(self.num_hourglasses):
      hourglass_out = self.hourglass_network[index](net, training=training)
      output = self.output_conv[index](hourglass_out, training=training)
      outputs.append(output)
      if index < self.num_hourglasses - 1:
        merged = (self.intermediate_conv1[index](net, training=training) +
                  self.intermediate_conv2[index](output, training=training))
        net = self.intermediate_residual[index](
            self.intermediate_relu(merged), training=training)
    if self._return_last_only:
      return outputs[-1]
    return outputs

  @property
  def out_stride(self):
    """Stride of the outputs with respect to the input."""
    return _STEM_STRIDE if self.initial_downsample else 1

  @property
  def num_feature_outputs(self):
    """Number of feature maps returned (one per hourglass)."""
    return self.num_hourglasses

  def get_config(self):
    config = {'name': self.name, 'trainable': self.trainable}
    for key, value in self._hourglass_args:
      config[key] = list(value) if isinstance(value, tuple) else value
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects  # Unused: the network holds no custom objects.
    return cls(**config)


def hourglass_104(use_sync_batch_norm=False, **kwargs):
  """Returns the two-stack Hourglass-104 CenterNet backbone (stride 4).

  Args:
    use_sync_batch_norm: bool, synchronized batch norm across replicas.
    **kwargs: further `HourglassNetwork` keyword arguments.
  """
  return HourglassNetwork(use_sync_batch_norm=use_sync_batch_norm,
                          **_HOURGLASS_104, **kwargs)


def hourglass_by_depth(depth, num_channels, initial_downsample=True,
                       stagewise_downsample=True,
                       encoder_decoder_shortcut=True,
                       use_sync_batch_norm=False, return_last_only=False,
                       **kwargs):
  """Returns the single-stack hourglass `hourglass_<depth>`.

  Args:
    depth: one of the keys of HOURGLASS_DEPTHS (10, 20, 32, 52, 100).
    num_channels: int, nc; the stem has nc channels and the levels
      multiples of nc (the output has 2 * nc channels).
    initial_downsample: bool, backbone stem (stride 4) vs mask-head stem.
    stagewise_downsample: bool, halve the resolution at each level.
    encoder_decoder_shortcut: bool, long-range skips.
    use_sync_batch_norm: bool, synchronized batch norm across replicas.
    return_last_only: bool, return a tensor instead of a one-element list.
    **kwargs: further `HourglassNetwork` keyword arguments (e.g. name).
  """
  if depth not in HOURGLASS_DEPTHS:
    raise ValueError(f'Unknown hourglass depth {depth}; known: '
                     f'{sorted(HOURGLASS_DEPTHS)}.')
  blocks, multipliers = HOURGLASS_DEPTHS[depth]
  return HourglassNetwork(
      num_stages=len(blocks) - 1,
      input_channel_dims=num_channels,
      channel_dims_per_stage=[m * num_channels for m in multipliers],
      blocks_per_stage=blocks,
      num_hourglasses=1,
      initial_downsample=initial_downsample,
      stagewise_downsample=stagewise_downsample,
      encoder_decoder_shortcut=encoder_decoder_shortcut,
      use_sync_batch_norm=use_sync_batch_norm,
      return_last_only=return_last_only,
      **kwargs)
