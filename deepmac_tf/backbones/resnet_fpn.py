"""ResNet-v1 + FPN-style upsampling feature extractors for CenterNet.

OD API type names ``resnet_v1_50_fpn`` and ``resnet_v1_101_fpn``. The ResNet is
tf-models-official's (``official.vision.modeling.backbones.ResNet``); on top of
it a top-down path brings the stride-32 features back to stride 4:

  c5 -> 1x1 conv (256) -> for filters in (256, 128, 64):
      upsample x2 (nearest) + 1x1 lateral conv (filters) of c4 / c3 / c2
      -> 3x3 conv (next filters; 64 after the last) -> BN -> ReLU

so the extractor returns one [batch, height / 4, width / 4, 64] feature map.
"""

import tensorflow as tf
import tf_keras
from official.vision.modeling.backbones import resnet as resnet_lib

from deepmac_tf.backbones import base
from deepmac_tf.backbones import registry
from deepmac_tf.layers import hourglass_blocks

_TOP_DOWN_FILTERS = (256, 128, 64)
_OUTPUT_CHANNELS = 64


def upsampling_layer(interpolation, name):
  """The x2 upsampling of the FPN-style extractors (``feature_extractor.
  upsampling_interpolation``: 'nearest' or 'bilinear')."""
  if interpolation == 'nearest':
    # XLA-trainable on CPU (UpSampling2D's resize gradient is not).
    return hourglass_blocks.NearestUpsampling2D(2, name=name)
  return tf_keras.layers.UpSampling2D(2, interpolation=interpolation,
                                      name=name)


def _batch_norm(use_sync_batch_norm, name):
  return tf_keras.layers.BatchNormalization(
      synchronized=use_sync_batch_norm, name=name)


class ResNetV1FpnFeatureExtractor(base.SingleOutputStride4Extractor):
  """ResNet-v1 with a top-down upsampling path to stride 4 (one output)."""

  def __init__(self, resnet_depth, channel_means=(), channel_stds=(),
               bgr_ordering=False, use_sync_batch_norm=False,
               upsampling_interpolation='nearest', **kwargs):
    super().__init__(channel_means=channel_means, channel_stds=channel_stds,
                     bgr_ordering=bgr_ordering, **kwargs)
    self._resnet_depth = resnet_depth
    self._use_sync_batch_norm = use_sync_batch_norm
    self._upsampling_interpolation = upsampling_interpolation
    self._base_model = resnet_lib.ResNet(
        model_id=resnet_depth,
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
        use_sync_bn=use_sync_batch_norm)
    self._top_conv = tf_keras.layers.Conv2D(
        _TOP_DOWN_FILTERS[0], 1, name='top_conv')
    self._lateral_convs = []
    self._upsamples = []
    self._smoothing_convs = []
    self._smoothing_norms = []
    for i, filters in enumerate(_TOP_DOWN_FILTERS):
      next_filters = (_TOP_DOWN_FILTERS[i + 1]
                      if i + 1 < len(_TOP_DOWN_FILTERS) else _OUTPUT_CHANNELS)
      self._upsamples.append(upsampling_layer(upsampling_interpolation,
                                              f'upsample_{i}'))
      self._lateral_convs.append(tf_keras.layers.Conv2D(
          filters, 1, name=f'lateral_conv_{i}'))
      self._smoothing_convs.append(tf_keras.layers.Conv2D(
          next_filters, 3, padding='same', use_bias=False,
          name=f'smoothing_conv_{i}'))
      self._smoothing_norms.append(_batch_norm(use_sync_batch_norm,
                                               f'smoothing_norm_{i}'))

  def call(self, inputs, training=None):
    """[batch, H, W, 3] preprocessed images -> [[batch, H/4, W/4, 64]]."""
    endpoints = self._base_model(inputs, training=training)
    laterals = [endpoints['4'], endpoints['3'], endpoints['2']]
    top_down = self._top_conv(endpoints['5'])
    for i, lateral in enumerate(laterals):
      top_down = self._upsamples[i](top_down)
      lateral = self._lateral_convs[i](lateral)
      top_down = top_down + tf.cast(lateral, top_down.dtype)
      top_down = self._smoothing_convs[i](top_down)
      top_down = self._smoothing_norms[i](top_down, training=training)
      top_down = tf.nn.relu(top_down)
    return [top_down]

  def get_config(self):
    config = super().get_config()
    config.update({
        'resnet_depth': self._resnet_depth,
        'use_sync_batch_norm': self._use_sync_batch_norm,
        'upsampling_interpolation': self._upsampling_interpolation,
    })
    return config


@registry.register_feature_extractor('resnet_v1_50_fpn',
                                     options=('upsampling_interpolation',))
def resnet_v1_50_fpn(**kwargs):
  """ResNet-50 v1 + top-down path, stride 4, 64 channels."""
  return ResNetV1FpnFeatureExtractor(50, **kwargs)


@registry.register_feature_extractor('resnet_v1_101_fpn',
                                     options=('upsampling_interpolation',))
def resnet_v1_101_fpn(**kwargs):
  """ResNet-101 v1 + top-down path, stride 4, 64 channels."""
  return ResNetV1FpnFeatureExtractor(101, **kwargs)
