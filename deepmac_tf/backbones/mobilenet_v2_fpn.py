"""MobileNetV2 + FPN feature extractors for CenterNet (OD API type names
``mobilenet_v2_fpn`` and ``mobilenet_v2_fpn_sep_conv``).

The base network is ``tf_keras.applications.MobileNetV2``'s layer graph
(``include_top=False``, no weights downloaded; ``alpha`` =
``feature_extractor.depth_multiplier``). A top-down path reads four of its
layers, as the OD API's CenterNet MobileNetV2-FPN extractor does:

  block_2_add (stride 4), block_5_add (8), block_9_add (16), out_relu (32)

  out_relu -> 1x1 conv (64) -> for filters in (64, 32, 24):
      upsample x2 + 1x1 lateral conv (filters) of block_9 / 5 / 2
      -> 3x3 conv (next filters; 24 after the last) -> BN -> ReLU

so the extractor returns one [batch, height / 4, width / 4, 24] map (input
sides must be multiples of 32). ``use_separable_conv`` (set by the
``_sep_conv`` type) makes the 3x3 convs separable; the FPN widths do not
depend on ``depth_multiplier`` (only the base network's do).

``preprocess`` normalizes with the config's channel means / stds, then
maps [0, 255] to [-1, 1] (MobileNetV2's input range), as the OD API.
``classification_backbone`` is the whole base network, so an OD API
classification checkpoint (``tf.train.Checkpoint(feature_extractor=
mobilenet_v2)``) restores into it.
"""

import tf_keras

from deepmac_tf import errors
from deepmac_tf.backbones import base
from deepmac_tf.backbones import registry
from deepmac_tf.backbones import resnet_fpn

SKIP_LAYERS = ('block_2_add', 'block_5_add', 'block_9_add', 'out_relu')
_TOP_DOWN_FILTERS = (64, 32, 24)
OUTPUT_CHANNELS = 24


class MobileNetV2FpnFeatureExtractor(base.SingleOutputStride4Extractor):
  """MobileNetV2 with a top-down path to stride 4 (one output)."""

  def __init__(self, channel_means=(), channel_stds=(), bgr_ordering=False,
               use_sync_batch_norm=False, depth_multiplier=1.0,
               use_separable_conv=False, upsampling_interpolation='nearest',
               **kwargs):
    super().__init__(channel_means=channel_means, channel_stds=channel_stds,
                     bgr_ordering=bgr_ordering, **kwargs)
    self._use_sync_batch_norm = use_sync_batch_norm
    self._depth_multiplier = float(depth_multiplier)
    self._use_separable_conv = bool(use_separable_conv)
    self._upsampling_interpolation = upsampling_interpolation
    self._base_model = tf_keras.applications.MobileNetV2(
        include_top=False, weights=None, alpha=self._depth_multiplier,
        input_shape=(None, None, 3))
    self._skip_model = tf_keras.Model(
        self._base_model.inputs,
        [self._base_model.get_layer(n).output for n in SKIP_LAYERS],
        name='mobilenet_v2_skips')
    conv = (tf_keras.layers.SeparableConv2D if self._use_separable_conv
            else tf_keras.layers.Conv2D)
    self._top_conv = tf_keras.layers.Conv2D(_TOP_DOWN_FILTERS[0], 1,
                                            name='top_conv')
    self._stages = []
    for i, filters in enumerate(_TOP_DOWN_FILTERS):
      next_filters = (_TOP_DOWN_FILTERS[i + 1]
                      if i + 1 < len(_TOP_DOWN_FILTERS) else OUTPUT_CHANNELS)
      self._stages.append([
          resnet_fpn.upsampling_layer(upsampling_interpolation,
                                      f'upsample_{i}'),
          tf_keras.layers.Conv2D(filters, 1, name=f'lateral_conv_{i}'),
          conv(next_filters, 3, padding='same', name=f'smoothing_conv_{i}'),
          tf_keras.layers.BatchNormalization(
              synchronized=use_sync_batch_norm, name=f'smoothing_norm_{i}'),
          tf_keras.layers.ReLU(name=f'smoothing_relu_{i}')])

  @property
  def classification_backbone(self):
    """The base network (what the OD API's 'classification' restores)."""
    return self._base_model

  def preprocess(self, images):
    """Channel means / stds, then [0, 255] -> [-1, 1]."""
    return super().preprocess(images) / 127.5 - 1.0

  def call(self, inputs, training=None):
    """[batch, H, W, 3] preprocessed images -> [[batch, H/4, W/4, 24]]."""
    skips = self._skip_model(inputs, training=training)
    top_down = self._top_conv(skips[-1])
    for i, (upsample, lateral, smooth, norm, relu) in enumerate(self._stages):
      top_down = upsample(top_down) + lateral(skips[-2 - i])
      top_down = relu(norm(smooth(top_down), training=training))
    return [top_down]

  def get_config(self):
    config = super().get_config()
    config.update({
        'use_sync_batch_norm': self._use_sync_batch_norm,
        'depth_multiplier': self._depth_multiplier,
        'use_separable_conv': self._use_separable_conv,
        'upsampling_interpolation': self._upsampling_interpolation,
    })
    return config


_OPTIONS = ('depth_multiplier', 'use_separable_conv',
            'upsampling_interpolation')


@registry.register_feature_extractor('mobilenet_v2_fpn', options=_OPTIONS)
def mobilenet_v2_fpn(**kwargs):
  """MobileNetV2 + top-down path, stride 4, 24 channels."""
  return MobileNetV2FpnFeatureExtractor(**kwargs)


@registry.register_feature_extractor('mobilenet_v2_fpn_sep_conv',
                                     options=_OPTIONS)
def mobilenet_v2_fpn_sep_conv(use_separable_conv=True, **kwargs):
  """``mobilenet_v2_fpn`` with separable 3x3 convs in the top-down path."""
  if not use_separable_conv:
    raise errors.ArgumentError(
        'mobilenet_v2_fpn_sep_conv always uses separable convs; use type '
        'mobilenet_v2_fpn for regular ones.', 'use_separable_conv')
  return MobileNetV2FpnFeatureExtractor(use_separable_conv=True, **kwargs)
