"""Small plain-conv CenterNet feature extractors at output stride 1 or 2.

Not an OD API extractor: a CPU-cheap backbone for the toy-scale
reproductions (``scripts/reproduce.py``), where the detector-free mask
experiments need a fine pixel embedding (``../shared/spec/reproduction.md``:
the strong mask generalization effect showed with a stride-1 feature map and
did not with Deep-MAC's stride-4 Hourglass-10 at 64 px) and thousands of
cheap steps.

| type                  | stem                    | then                        | stride |
|-----------------------|-------------------------|-----------------------------|--------|
| small_conv_stride1    | 3x3 conv (16)           | 3 residual blocks (16, 3x3) | 1      |
| small_conv_stride1_b1 | 3x3 conv (16)           | 1 residual block (16, 3x3)  | 1      |
| small_conv_stride2    | 3x3 conv, stride 2 (16) | 3 residual blocks (16, 3x3) | 2      |

A residual block is conv-BN-ReLU-conv-BN + identity, ReLU; the receptive field
is 15 input pixels at stride 1 (7 with one block) and 27 at stride 2.
One [batch, H / s, W / s, 16] output; input sides must be multiples of the
stride. CenterNet's heads (object center, box, the Deep-MAC embeddings) work
on it as on any extractor, the meta-architecture reads ``out_stride``.

``small_conv_stride1_b1`` is the ``mask_heads`` experiment's backbone: the
full-resolution map with 3 convs instead of 7, and a shallow shared backbone
leaves the segmentation to the mask head, whose architecture the experiment
compares (WORKSPACE_NOTES.md, issue 12).
"""

import tf_keras

from deepmac_tf import errors
from deepmac_tf.backbones import base
from deepmac_tf.backbones import registry

# type -> (stem stride, channels, residual blocks)
SMALL_CONV_TYPES = {
    'small_conv_stride1': (1, 16, 3),
    'small_conv_stride1_b1': (1, 16, 1),
    'small_conv_stride2': (2, 16, 3),
}


def _conv_bn(filters, strides, name, use_sync_batch_norm):
  return [
      tf_keras.layers.Conv2D(filters, 3, strides=strides, padding='same',
                             use_bias=False, name=f'{name}_conv'),
      tf_keras.layers.BatchNormalization(synchronized=use_sync_batch_norm,
                                         name=f'{name}_bn')]


@tf_keras.utils.register_keras_serializable(package='deepmac_tf')
class SmallConvFeatureExtractor(base.CenterNetFeatureExtractor):
  """Stem conv (stride 1 or 2) + residual blocks: one feature map."""

  def __init__(self, stride=2, channels=16, num_blocks=3,
               channel_means=(), channel_stds=(), bgr_ordering=False,
               use_sync_batch_norm=False, **kwargs):
    """Args:
      stride: 1 or 2, the stem's (= the output's) stride.
      channels: width of every conv (and of the output).
      num_blocks: residual blocks after the stem.
      channel_means, channel_stds, bgr_ordering: see the base class.
      use_sync_batch_norm: synchronized batch norm across replicas.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.

    Raises:
      ArgumentError: a stride other than 1 or 2, or a non-positive width or
        block count.
    """
    super().__init__(channel_means=channel_means, channel_stds=channel_stds,
                     bgr_ordering=bgr_ordering, **kwargs)
    if stride not in (1, 2):
      raise errors.ArgumentError(f'expected 1 or 2, got {stride!r}.',
                                 'stride')
    if channels < 1 or num_blocks < 0:
      raise errors.ArgumentError(
          f'expected channels >= 1 and num_blocks >= 0, got {channels}, '
          f'{num_blocks}.', 'channels' if channels < 1 else 'num_blocks')
    self._stride = int(stride)
    self._channels = int(channels)
    self._num_blocks = int(num_blocks)
    self._use_sync_batch_norm = bool(use_sync_batch_norm)
    self._stem = _conv_bn(channels, stride, 'stem', use_sync_batch_norm)
    self._blocks = [
        (_conv_bn(channels, 1, f'block{i}_a', use_sync_batch_norm) +
         _conv_bn(channels, 1, f'block{i}_b', use_sync_batch_norm))
        for i in range(num_blocks)]

  def call(self, inputs, training=None):
    """[batch, H, W, 3] preprocessed images -> [[batch, H/s, W/s, C]]."""
    conv, norm = self._stem
    net = tf_keras.activations.relu(norm(conv(inputs), training=training))
    for conv_a, norm_a, conv_b, norm_b in self._blocks:
      inner = tf_keras.activations.relu(norm_a(conv_a(net),
                                               training=training))
      inner = norm_b(conv_b(inner), training=training)
      net = tf_keras.activations.relu(net + inner)
    return [net]

  @property
  def num_feature_outputs(self):
    return 1

  @property
  def out_stride(self):
    return self._stride

  def get_config(self):
    config = super().get_config()
    config.update(stride=self._stride, channels=self._channels,
                  num_blocks=self._num_blocks,
                  use_sync_batch_norm=self._use_sync_batch_norm)
    return config


def _register(type_name, stride, channels, num_blocks):
  def factory(channel_means=(), channel_stds=(), bgr_ordering=False,
              use_sync_batch_norm=False, **kwargs):
    if kwargs:
      raise errors.ArgumentError(
          f'option(s) {", ".join(sorted(kwargs))} are not supported by '
          f'{type_name!r} (supported: use_sync_batch_norm).',
          sorted(kwargs)[0])
    return SmallConvFeatureExtractor(
        stride=stride, channels=channels, num_blocks=num_blocks,
        channel_means=channel_means, channel_stds=channel_stds,
        bgr_ordering=bgr_ordering, use_sync_batch_norm=use_sync_batch_norm,
        name=type_name)

  factory.__name__ = factory.__qualname__ = type_name
  factory.__doc__ = (f'{num_blocks} residual blocks of {channels} channels '
                     f'at stride {stride} (CPU reproduction backbone).')
  registry.register_feature_extractor(type_name)(factory)
  return factory


small_conv_stride1 = _register('small_conv_stride1',
                               *SMALL_CONV_TYPES['small_conv_stride1'])
small_conv_stride1_b1 = _register(
    'small_conv_stride1_b1', *SMALL_CONV_TYPES['small_conv_stride1_b1'])
small_conv_stride2 = _register('small_conv_stride2',
                               *SMALL_CONV_TYPES['small_conv_stride2'])
