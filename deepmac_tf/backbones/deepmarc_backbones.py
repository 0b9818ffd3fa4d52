"""Model Garden backbones + decoders for Deep-MARC, by type name.

``resnet{10,18,26,34,50,101,152}_fpn``: ``official.vision`` ResNet + FPN
(levels min_level..max_level, ``fpn_num_filters`` channels).
``spinenet{49,96,143,190}``: ``official.vision`` SpineNet, which makes its
own multi-scale features (levels 3..7, no decoder). The OD API names
``faster_rcnn_resnet{50,101}_fpn_keras`` map to ``resnet{50,101}_fpn``.
``faster_rcnn_resnet{50,101,152}_keras`` and
``faster_rcnn_inception_resnet_v2_keras``: single-level (stride 16)
backbones whose network tail is the box classifier
(``faster_rcnn_keras.py``; metadata ``single_level=True``).
Registered in ``backbones.registry.DEEPMARC_BACKBONES``.

Hyperparameters (``LayerHyperparams``): ``decoder_hyperparams`` reach the
FPN, ``backbone_hyperparams`` the backbone (the OD API's
``override_base_feature_extractor_hyperparams``); None = the network's own
defaults (Model Garden's with ``norm_momentum`` / ``norm_epsilon``, Keras
applications' for the single-level ones).
"""

import dataclasses

import tf_keras
from official.vision.modeling.backbones import resnet as resnet_lib
from official.vision.modeling.backbones import spinenet as spinenet_lib
from official.vision.modeling.decoders import fpn as fpn_lib

from deepmac_tf.backbones import faster_rcnn_keras
from deepmac_tf.backbones import registry
from deepmac_tf.errors import ArgumentError
from deepmac_tf.layers import layer_hyperparams

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
            use_sync_batch_norm, norm_momentum, norm_epsilon,
            backbone_hyperparams, decoder_hyperparams):
    del image_size
    backbone_kwargs = layer_hyperparams.model_garden_kwargs(
        backbone_hyperparams, use_sync_batch_norm, norm_momentum,
        norm_epsilon)
    if backbone_hyperparams is not None:
      backbone_kwargs['bn_trainable'] = (
          backbone_hyperparams.batch_norm_trainable)
    backbone = layer_hyperparams.configured(resnet_lib.ResNet(
        model_id=depth,
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
        **backbone_kwargs), backbone_hyperparams)
    decoder = layer_hyperparams.configured(fpn_lib.FPN(
        input_specs=backbone.output_specs, min_level=min_level,
        max_level=max_level, num_filters=fpn_num_filters,
        **layer_hyperparams.model_garden_kwargs(
            decoder_hyperparams, use_sync_batch_norm, norm_momentum,
            norm_epsilon)), decoder_hyperparams)
    return backbone, decoder
  return build


def _spinenet(model_id):
  def build(min_level, max_level, fpn_num_filters, image_size,
            use_sync_batch_norm, norm_momentum, norm_epsilon,
            backbone_hyperparams, decoder_hyperparams):
    del fpn_num_filters, decoder_hyperparams
    height, width = image_size
    backbone = spinenet_lib.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, height, width, 3]),
        min_level=min_level, max_level=max_level,
        **spinenet_lib.SCALING_MAP[model_id],
        **layer_hyperparams.model_garden_kwargs(
            backbone_hyperparams, use_sync_batch_norm, norm_momentum,
            norm_epsilon))
    return layer_hyperparams.configured(backbone, backbone_hyperparams), None
  return build


def _single_level(make_networks, defaults):
  """Factory of a ``SingleLevelBackbone`` (no decoder)."""
  def build(min_level, max_level, fpn_num_filters, image_size,
            use_sync_batch_norm, norm_momentum, norm_epsilon,
            backbone_hyperparams, decoder_hyperparams):
    del (min_level, max_level, fpn_num_filters, image_size, norm_momentum,
         norm_epsilon, decoder_hyperparams)
    hyperparams = backbone_hyperparams or defaults
    if use_sync_batch_norm and not hyperparams.sync_batch_norm:
      hyperparams = dataclasses.replace(hyperparams, sync_batch_norm=True)
    first_stage, box_classifier = make_networks(hyperparams)
    return faster_rcnn_keras.SingleLevelBackbone(
        first_stage, box_classifier, name='single_level_backbone'), None
  return build


def _check_single_level(min_level, max_level):
  level = faster_rcnn_keras.FEATURE_LEVEL
  if (min_level, max_level) != (level, level):
    raise ArgumentError(
        f'this backbone gives one feature map at stride 16 (level {level}); '
        f'got levels {min_level}..{max_level} (it takes no fpn block).',
        'levels')


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

for _depth in faster_rcnn_keras.RESNET_BLOCKS:
  registry.DEEPMARC_BACKBONES.register(
      f'faster_rcnn_resnet{_depth}_keras',
      _single_level(
          lambda hp, depth=_depth: faster_rcnn_keras.resnet_v1(depth, hp),
          faster_rcnn_keras.RESNET_DEFAULTS),
      check_levels=_check_single_level, single_level=True,
      default_levels=(faster_rcnn_keras.FEATURE_LEVEL,) * 2)
registry.DEEPMARC_BACKBONES.register(
    'faster_rcnn_inception_resnet_v2_keras',
    _single_level(faster_rcnn_keras.inception_resnet_v2,
                  faster_rcnn_keras.INCEPTION_RESNET_DEFAULTS),
    check_levels=_check_single_level, single_level=True,
    default_levels=(faster_rcnn_keras.FEATURE_LEVEL,) * 2)


def backbone_names():
  """Every accepted type name (OD API aliases not listed)."""
  return registry.DEEPMARC_BACKBONES.names()


def default_levels(type_name):
  """(min_level, max_level) the backbone gives without an ``fpn`` block."""
  return registry.DEEPMARC_BACKBONES.metadata(type_name)['default_levels']


def check_backbone(type_name, min_level, max_level):
  """Raises ArgumentError ('type' or 'levels') for an unknown type or
  levels it cannot give."""
  registry.DEEPMARC_BACKBONES.metadata(type_name)['check_levels'](
      min_level, max_level)


def is_single_level(type_name):
  """Whether the backbone gives one stride-16 map and a box classifier."""
  return bool(registry.DEEPMARC_BACKBONES.metadata(type_name).get(
      'single_level', False))


def build_backbone_and_decoder(type_name, min_level, max_level,
                               fpn_num_filters=256, image_size=None,
                               use_sync_batch_norm=False,
                               norm_momentum=0.997, norm_epsilon=1e-4,
                               backbone_hyperparams=None,
                               decoder_hyperparams=None):
  """Builds (backbone, decoder or None).

  Args:
    type_name: see the module docstring.
    min_level, max_level: pyramid levels the heads read.
    fpn_num_filters: FPN width (ResNet only).
    image_size: (height, width); SpineNet needs it, ResNet ignores it.
    use_sync_batch_norm: synchronized batch norm across replicas.
    norm_momentum / norm_epsilon: batch norm settings (Model Garden's Mask
      R-CNN defaults) of Model Garden parts without hyperparameters.
    backbone_hyperparams / decoder_hyperparams: ``LayerHyperparams`` of the
      backbone / the FPN, or None (defaults).

  Returns:
    backbone: maps [B, H, W, 3] to {str(level): [B, H/2^l, W/2^l, C_l]}.
    decoder: FPN mapping that dict to {str(level): [.., fpn_num_filters]}
      for levels min..max_level, or None (SpineNet, single-level backbones:
      a ``faster_rcnn_keras.SingleLevelBackbone`` giving {'4': ...} with a
      ``box_classifier``).

  Raises:
    ArgumentError: an unknown type or levels it cannot give.
  """
  check_backbone(type_name, min_level, max_level)
  return registry.DEEPMARC_BACKBONES.build(
      type_name, min_level, max_level, fpn_num_filters, image_size,
      use_sync_batch_norm, norm_momentum, norm_epsilon, backbone_hyperparams,
      decoder_hyperparams)
