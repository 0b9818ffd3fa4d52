"""ResNet-v2 + upsampling feature extractors for CenterNet (OD API type
names ``resnet_v2_50`` and ``resnet_v2_101``).

The ResNet is ``tf_keras.applications.ResNet{50,101}V2``'s layer graph (no
weights downloaded) up to ``conv5_block3_out`` (stride 32, 2048 channels);
three upsampling stages bring it back to stride 4, as the OD API's CenterNet
ResNet extractor:

  for filters in (256, 128, 64):
    conv 3x3 (filters, no bias) -> BN -> ReLU
    -> transposed conv 3x3 stride 2 (filters) -> BN -> ReLU

so the extractor returns one [batch, height / 4, width / 4, 64] map.
"""

import tf_keras

from deepmac_tf.backbones import base
from deepmac_tf.backbones import registry

_UPSAMPLING_FILTERS = (256, 128, 64)
_APPLICATIONS = {50: tf_keras.applications.ResNet50V2,
                 101: tf_keras.applications.ResNet101V2}


class ResNetV2FeatureExtractor(base.SingleOutputStride4Extractor):
  """ResNet-v2 to stride 32, then three x2 upsampling stages (one output)."""

  def __init__(self, resnet_depth, channel_means=(), channel_stds=(),
               bgr_ordering=False, use_sync_batch_norm=False, **kwargs):
    super().__init__(channel_means=channel_means, channel_stds=channel_stds,
                     bgr_ordering=bgr_ordering, **kwargs)
    self._resnet_depth = resnet_depth
    self._use_sync_batch_norm = use_sync_batch_norm
    full = _APPLICATIONS[resnet_depth](include_top=False, weights=None,
                                       input_shape=(None, None, 3))
    self._base_model = tf_keras.Model(
        full.inputs, full.get_layer('conv5_block3_out').output,
        name=f'resnet{resnet_depth}_v2')
    self._upsampling = []
    for i, filters in enumerate(_UPSAMPLING_FILTERS):
      self._upsampling.append([
          tf_keras.layers.Conv2D(filters, 3, padding='same', use_bias=False,
                                 name=f'conv_{i}'),
          tf_keras.layers.BatchNormalization(synchronized=use_sync_batch_norm,
                                             name=f'conv_norm_{i}'),
          tf_keras.layers.ReLU(name=f'conv_relu_{i}'),
          tf_keras.layers.Conv2DTranspose(filters, 3, strides=2,
                                          padding='same', name=f'up_{i}'),
          tf_keras.layers.BatchNormalization(synchronized=use_sync_batch_norm,
                                             name=f'up_norm_{i}'),
          tf_keras.layers.ReLU(name=f'up_relu_{i}')])

  @property
  def classification_backbone(self):
    """ResNet-v2 up to conv5_block3_out: the layers of the OD API's
    classification backbone (tf_keras.applications.ResNet*V2) in the same
    order, so its checkpoint restores (its post_bn is not used here)."""
    return self._base_model

  def call(self, inputs, training=None):
    """[batch, H, W, 3] preprocessed images -> [[batch, H/4, W/4, 64]]."""
    x = self._base_model(inputs, training=training)
    for stage in self._upsampling:
      for layer in stage:
        x = layer(x, training=training)
    return [x]

  def get_config(self):
    config = super().get_config()
    config.update({'resnet_depth': self._resnet_depth,
                   'use_sync_batch_norm': self._use_sync_batch_norm})
    return config


@registry.register_feature_extractor('resnet_v2_50')
def resnet_v2_50(**kwargs):
  """ResNet-50 v2 + upsampling, stride 4, 64 channels."""
  return ResNetV2FeatureExtractor(50, **kwargs)


@registry.register_feature_extractor('resnet_v2_101')
def resnet_v2_101(**kwargs):
  """ResNet-101 v2 + upsampling, stride 4, 64 channels."""
  return ResNetV2FeatureExtractor(101, **kwargs)
