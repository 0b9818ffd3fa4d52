"""Builds a model from the pipeline config's ``model`` block, as the OD API's
``model_builder.build(model_config, is_training)`` does.

``center_net { ... }`` gives a ``CenterNetMetaArch``; with a
``deepmac_mask_estimation { ... }`` block a ``DeepMACMetaArch``.
``faster_rcnn { ... }`` gives a Deep-MARC ``MaskRCNNMetaArch``
(``mask_rcnn_builder.py``). Every
semantic problem (an unknown backbone or mask head, a mask size the head
cannot take, an unsupported option) raises one ``ConfigError`` naming the
field, here, before any training step.
"""

from deepmac_tf.backbones import registry as backbone_registry
from deepmac_tf.builders import center_net_builder
from deepmac_tf.builders import deepmac_builder
from deepmac_tf.builders import faster_rcnn_options
from deepmac_tf.data import image_resizer
from deepmac_tf.errors import config_field_errors
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import center_net

_CENTER_NET = 'model.center_net'

# CenterNet tasks of the OD API schema this project does not implement.
_UNSUPPORTED_CENTER_NET_TASKS = ('mask_estimation_task',)
# OD API CenterNet fields that parse (so its configs load) but are refused.
_ODAPI_ONLY_CENTER_NET_FIELDS = (
    'keypoint_label_map_path', 'keypoint_estimation_task',
    'densepose_estimation_task', 'track_estimation_task',
    'temporal_offset_task', 'post_processing', 'output_prediction_dict')
# CenterNetFeatureExtractor fields only some extractors take.
_EXTRACTOR_OPTIONS = ('depth_multiplier', 'use_separable_conv',
                      'upsampling_interpolation')


def _check_center_net_options(config):
  for field in _UNSUPPORTED_CENTER_NET_TASKS:
    if config.HasField(field):
      raise ConfigError(
          f'{_CENTER_NET}.{field}: not supported by deepmac_tf (use '
          'deepmac_mask_estimation for instance masks); remove it.')
  set_fields = {f.name: v for f, v in config.ListFields()}
  for field in _ODAPI_ONLY_CENTER_NET_FIELDS:
    if field in set_fields and set_fields[field] not in (False, ''):
      raise ConfigError(
          f'{_CENTER_NET}.{field}: supported by the OD API, not by deepmac_tf '
          '(no keypoint, DensePose or tracking tasks, no CenterNet NMS '
          'post-processing); remove it.')
  if not config.HasField('feature_extractor'):
    raise ConfigError(f'{_CENTER_NET}.feature_extractor: must be set.')
  if not config.HasField('object_center_params'):
    raise ConfigError(f'{_CENTER_NET}.object_center_params: must be set.')
  if not config.HasField('num_classes') or config.num_classes < 1:
    raise ConfigError(f'{_CENTER_NET}.num_classes: must be set to a positive '
                      'number.')


def build_feature_extractor(feature_extractor_config, use_sync_batch_norm=False):
  """Builds the backbone of a ``CenterNetFeatureExtractor`` message.

  ``depth_multiplier``, ``use_separable_conv`` and ``upsampling_interpolation``
  go to the extractors that declare them (``registry.extractor_options``);
  set on another extractor they are a ConfigError naming the field.
  ``use_depthwise`` (no extractor here takes it) is refused when true.
  """
  fe = feature_extractor_config
  prefix = f'{_CENTER_NET}.feature_extractor'
  with config_field_errors(prefix):
    options = backbone_registry.extractor_options(fe.type)
  if fe.use_depthwise:
    raise ConfigError(f'{prefix}.use_depthwise: no feature extractor here '
                      'has depthwise convolutions (model.center_net.'
                      'use_depthwise sets depthwise heads); remove it.')
  kwargs = {}
  if use_sync_batch_norm:
    kwargs['use_sync_batch_norm'] = True
  for name in _EXTRACTOR_OPTIONS:
    if name in options:
      if fe.HasField(name) or name != 'use_separable_conv':
        kwargs[name] = getattr(fe, name)
    elif fe.HasField(name):
      takes = [t for t in backbone_registry.feature_extractor_names()
               if name in backbone_registry.extractor_options(t)]
      raise ConfigError(f'{prefix}.{name}: {fe.type} does not take it (only '
                        f'{", ".join(takes)}); remove it.')
  with config_field_errors(prefix):
    return backbone_registry.build_feature_extractor(
        fe.type, channel_means=fe.channel_means, channel_stds=fe.channel_stds,
        bgr_ordering=fe.bgr_ordering, **kwargs)


def _build_center_net(config, is_training, use_sync_batch_norm):
  _check_center_net_options(config)
  faster_rcnn_options.check_fields(config, _CENTER_NET)
  if config.HasField('deepmac_mask_estimation'):
    faster_rcnn_options.check_fields(config.deepmac_mask_estimation,
                                     f'{_CENTER_NET}.deepmac_mask_estimation')
    loss = config.deepmac_mask_estimation.classification_loss
    if loss.HasField('weighted_sigmoid'):
      faster_rcnn_options.check_fields(
          loss.weighted_sigmoid, f'{_CENTER_NET}.deepmac_mask_estimation.'
          'classification_loss.weighted_sigmoid')
  feature_extractor = build_feature_extractor(config.feature_extractor,
                                              use_sync_batch_norm)
  center_params = center_net_builder.object_center_params_from_proto(
      config.object_center_params)
  detection_params = None
  if config.HasField('object_detection_task'):
    detection_params = center_net_builder.object_detection_params_from_proto(
        config.object_detection_task)
  if not config.HasField('deepmac_mask_estimation'):
    return center_net.CenterNetMetaArch(
        is_training=is_training, num_classes=config.num_classes,
        feature_extractor=feature_extractor,
        object_center_params=center_params,
        object_detection_params=detection_params,
        use_depthwise=config.use_depthwise)
  from deepmac_tf.meta_architectures import deepmac  # pylint: disable=g-import-not-at-top
  deepmac_params = deepmac_builder.deepmac_params_from_proto(
      config.deepmac_mask_estimation, num_classes=config.num_classes,
      use_sync_batch_norm=use_sync_batch_norm)
  with config_field_errors(deepmac_builder.FIELD,
                           deepmac_builder.HEAD_FIELDS):
    return deepmac.DeepMACMetaArch(
        is_training=is_training, num_classes=config.num_classes,
        feature_extractor=feature_extractor,
        object_center_params=center_params,
        object_detection_params=detection_params,
        deepmac_params=deepmac_params, use_depthwise=config.use_depthwise)


def build(model_config, is_training, use_sync_batch_norm=False):
  """Builds the model of a ``DetectionModel`` message.

  Args:
    model_config: ``DetectionModel`` proto (``configs['model']``).
    is_training: build for training (the OD API's flag; layers follow the
      ``training`` argument of each call).
    use_sync_batch_norm: synchronized batch norm across replicas (the
      training driver sets it under a multi-replica strategy).

  Returns:
    A meta-architecture with our ``normalize_images / predict / loss /
    postprocess`` and the OD API's ``preprocess`` (which resizes with the
    config's ``image_resizer``), ``provide_groundtruth`` and friends.

  Raises:
    ConfigError: naming the field that cannot be built.
  """
  arch = model_config.WhichOneof('model')
  if arch == 'center_net':
    model = _build_center_net(model_config.center_net, is_training,
                              use_sync_batch_norm)
  elif arch == 'faster_rcnn':
    from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
    model = mask_rcnn_builder.build(model_config.faster_rcnn, is_training,
                                    use_sync_batch_norm)
  else:
    raise ConfigError('model: no architecture set; expected center_net { } '
                      'or faster_rcnn { }.')
  arch_config = getattr(model_config, arch)
  if arch_config.HasField('image_resizer'):
    model.set_image_resizer(image_resizer.build(
        arch_config.image_resizer, f'model.{arch}.image_resizer'))
  return model


def check_train_config(model_config, train_config):
  """Checks the train_config settings a model's options need (MaskX
  STAGE_WISE needs ``fine_tune_checkpoint``); raises ConfigError."""
  if model_config.WhichOneof('model') == 'faster_rcnn':
    from deepmac_tf.builders import maskx_builder  # pylint: disable=g-import-not-at-top
    maskx_builder.check_train_config(model_config.faster_rcnn, train_config)
