"""Model Garden backbones + decoders for Deep-MARC, by type name.

``resnet{10,18,26,34,50,101,152}_fpn``: ``official.vision`` ResNet + FPN
(levels min_level..max_level, ``fpn_num_filters`` channels).
``spinenet{49,96,143,190}``: ``official.vision`` SpineNet, which makes its
own multi-scale features (levels 3..7, no decoder). The OD API names
``faster_rcnn_resnet{50,101}_fpn_keras`` map to ``resnet{50,101}_fpn``.
"""

import re

import tf_keras
from official.vision.modeling.backbones import resnet as resnet_lib
from official.vision.modeling.backbones import spinenet as spinenet_lib
from official.vision.modeling.decoders import fpn as fpn_lib

from deepmac_tf.errors import ConfigError

_TYPE_FIELD = 'model.faster_rcnn.feature_extractor.type'
_RESNET = re.compile(r'^(?:faster_rcnn_)?resnet(\d+)_fpn(?:_keras)?$')
_SPINENET = re.compile(r'^spinenet(\d+)$')
RESNET_DEPTHS = (10, 18, 26, 34, 50, 101, 152)
SPINENET_IDS = ('49', '96', '143', '190')
SPINENET_LEVELS = (3, 7)


def backbone_names():
  """Every accepted type name (OD API aliases not listed)."""
  return tuple(f'resnet{d}_fpn' for d in RESNET_DEPTHS) + tuple(
      f'spinenet{i}' for i in SPINENET_IDS)


def check_backbone(type_name, min_level, max_level):
  """Raises ConfigError for an unknown type or levels it cannot give."""
  resnet, spinenet = _RESNET.match(type_name), _SPINENET.match(type_name)
  if resnet and int(resnet.group(1)) in RESNET_DEPTHS:
    if not 2 <= min_level <= 5 or max_level < max(min_level, 5):
      raise ConfigError(
          'model.faster_rcnn.feature_extractor.fpn: ResNet-FPN needs '
          f'2 <= min_level <= 5 <= max_level, got {min_level}..{max_level}.')
    return
  if spinenet and spinenet.group(1) in SPINENET_IDS:
    if (min_level, max_level) != SPINENET_LEVELS:
      raise ConfigError(
          'model.faster_rcnn.feature_extractor.fpn: SpineNet gives levels '
          f'3..7, got min_level {min_level}, max_level {max_level}.')
    return
  raise ConfigError(f'{_TYPE_FIELD}: unknown Deep-MARC backbone '
                    f'{type_name!r}; known: {", ".join(backbone_names())}.')


def build_backbone_and_decoder(type_name, min_level, max_level,
                               fpn_num_filters=256, image_size=None,
                               use_sync_batch_norm=False,
                               norm_momentum=0.997, norm_epsilon=1e-4):
  """Builds (backbone, decoder or None).

  Args:
    type_name: see the module docstring.
    min_level, max_level: pyramid levels the heads read.
    fpn_num_filters: FPN width (ResNet only).
    image_size: (height, width); SpineNet needs it, ResNet ignores it.
    use_sync_batch_norm: synchronized batch norm across replicas.
    norm_momentum / norm_epsilon: batch norm settings (Model Garden's Mask
      R-CNN defaults).

  Returns:
    backbone: maps [B, H, W, 3] to {str(level): [B, H/2^l, W/2^l, C_l]}.
    decoder: FPN mapping that dict to {str(level): [.., fpn_num_filters]}
      for levels min..max_level, or None (SpineNet).
  """
  check_backbone(type_name, min_level, max_level)
  resnet = _RESNET.match(type_name)
  if resnet:
    backbone = resnet_lib.ResNet(
        model_id=int(resnet.group(1)),
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
        use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
    decoder = fpn_lib.FPN(
        input_specs=backbone.output_specs, min_level=min_level,
        max_level=max_level, num_filters=fpn_num_filters,
        use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
    return backbone, decoder
  height, width = image_size
  backbone = spinenet_lib.SpineNet(
      input_specs=tf_keras.layers.InputSpec(shape=[None, height, width, 3]),
      min_level=min_level, max_level=max_level,
      **spinenet_lib.SCALING_MAP[_SPINENET.match(type_name).group(1)],
      use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
  return backbone, None
