"""Model Garden backbones + decoders for Deep-MARC, by type name.

``resnet{10,18,26,34,50,101,152}_fpn``: ``official.vision`` ResNet + FPN
(levels min_level..max_level, ``fpn_num_filters`` channels).
``spinenet{49,96,143,190}``: ``official.vision`` SpineNet, which makes its
own multi-scale features (levels 3..7, no decoder). The OD API names
``faster_rcnn_resnet{50,101}_fpn_keras`` map to ``resnet{50,101}_fpn``.
Registered in ``backbones.registry.DEEPMARC_BACKBONES``.
"""

import tf_keras
from official.vision.modeling.backbones import resnet as resnet_lib
from official.vision.modeling.backbones import spinenet as spinenet_lib
from official.vision.modeling.decoders import fpn as fpn_lib

from deepmac_tf.backbones import registry
from deepmac_tf.errors import ArgumentError

RESNET_DEPTHS = (10, 18, 26, 34, 50, 101, 152)
SPINENET_IDS = ('49', '96', '143', '190')
SPINENET_LEVELS = (3, 7)


def _check_resnet_levels(min_level, max_level):
  if not 2 <= min_level <= 5 or max_level < max(min_level, 5):
    raise ArgumentError(
        'ResNet-FPN needs 2 <= min_level <= 5 <= max_level, got '
        f'{min_level}..{max_level}.', 'levels')


def _check_spinenet_levels(min_level, max_level):
  if (min_level, max_level) != SPINENET_LEVELS:
    raise ArgumentError(
        f'SpineNet gives levels 3..7, got min_level {min_level}, max_level '
        f'{max_level}.', 'levels')


def _resnet_fpn(depth):
  def build(min_level, max_level, fpn_num_filters, image_size,
            use_sync_batch_norm, norm_momentum, norm_epsilon):
    del image_size
    backbone = resnet_lib.ResNet(
        model_id=depth,
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
        use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
    decoder = fpn_lib.FPN(
        input_specs=backbone.output_specs, min_level=min_level,
        max_level=max_level, num_filters=fpn_num_filters,
        use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
    return backbone, decoder
  return build


def _spinenet(model_id):
  def build(min_level, max_level, fpn_num_filters, image_size,
            use_sync_batch_norm, norm_momentum, norm_epsilon):
    del fpn_num_filters
    height, width = image_size
    backbone = spinenet_lib.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, height, width, 3]),
        min_level=min_level, max_level=max_level,
        **spinenet_lib.SCALING_MAP[model_id],
        use_sync_bn=use_sync_batch_norm, norm_momentum=norm_momentum,
        norm_epsilon=norm_epsilon)
    return backbone, None
  return build


for _depth in RESNET_DEPTHS:
  for _alias in (f'resnet{_depth}_fpn', f'faster_rcnn_resnet{_depth}_fpn',
                 f'resnet{_depth}_fpn_keras',
                 f'faster_rcnn_resnet{_depth}_fpn_keras'):
    registry.DEEPMARC_BACKBONES.register(
        _alias, _resnet_fpn(_depth), listed=_alias == f'resnet{_depth}_fpn',
        check_levels=_check_resnet_levels, default_levels=(2, 6))
for _model_id in SPINENET_IDS:
  registry.DEEPMARC_BACKBONES.register(
      f'spinenet{_model_id}', _spinenet(_model_id),
      check_levels=_check_spinenet_levels, default_levels=SPINENET_LEVELS)


# OD API Keras Faster R-CNN feature extractors Deep-MARC does not build
# (its heads read FPN levels).
ODAPI_ONLY_BACKBONES = (
    'faster_rcnn_resnet50_keras', 'faster_rcnn_resnet101_keras',
    'faster_rcnn_resnet152_keras', 'faster_rcnn_inception_resnet_v2_keras')


def _refuse_odapi_only(type_name):
  if type_name in ODAPI_ONLY_BACKBONES:
    raise ArgumentError(
        f'supported by the OD API, not by deepmac_tf: {type_name} (Deep-MARC '
        'builds FPN backbones: faster_rcnn_resnet{50,101,152}_fpn_keras, '
        'resnet*_fpn, spinenet*).', 'type')


def backbone_names():
  """Every accepted type name (OD API aliases not listed)."""
  return registry.DEEPMARC_BACKBONES.names()


def default_levels(type_name):
  """(min_level, max_level) the backbone gives without an ``fpn`` block."""
  _refuse_odapi_only(type_name)
  return registry.DEEPMARC_BACKBONES.metadata(type_name)['default_levels']


def check_backbone(type_name, min_level, max_level):
  """Raises ArgumentError ('type' or 'levels') for an unknown type or
  levels it cannot give."""
  _refuse_odapi_only(type_name)
  registry.DEEPMARC_BACKBONES.metadata(type_name)['check_levels'](
      min_level, max_level)


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

  Raises:
    ArgumentError: an unknown type or levels it cannot give.
  """
  check_backbone(type_name, min_level, max_level)
  return registry.DEEPMARC_BACKBONES.build(
      type_name, min_level, max_level, fpn_num_filters, image_size,
      use_sync_batch_norm, norm_momentum, norm_epsilon)
