"""``model.faster_rcnn { ... }`` -> ``MaskRCNNMetaArch`` (Deep-MARC).

OD API fields keep their meaning where Model Garden has the same knob
(``first_stage_*`` = RPN, ``second_stage_*`` = Fast R-CNN, loss weights,
``second_stage_post_processing``); the mask branch is
``deepmarc_mask_head { ... }`` and needs ``number_of_stages: 3``.
Unsupported options raise one ``ConfigError`` naming the field.
"""

from deepmac_tf.backbones import deepmarc_backbones
from deepmac_tf.builders import faster_rcnn_options
from deepmac_tf.builders import maskx_builder
from deepmac_tf.builders import teacher_student_builder
from deepmac_tf.errors import config_field_errors
from deepmac_tf.errors import ConfigError
from deepmac_tf.mask_heads import registry as mask_head_registry
from deepmac_tf.meta_architectures import mask_rcnn
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.protos import faster_rcnn_pb2
from deepmac_tf.protos import post_processing_pb2

_F = 'model.faster_rcnn'
_M = f'{_F}.deepmarc_mask_head'
# Mask-head arguments -> their deepmarc_mask_head fields.
_HEAD_FIELDS = {'mask_size': 'crop_size'}
# Arguments of the backbone and mask head -> fields under model.faster_rcnn.
_MODEL_FIELDS = {
    'network_type': 'deepmarc_mask_head.network_type',
    'num_init_channels': 'deepmarc_mask_head.num_init_channels',
    'mask_size': 'deepmarc_mask_head.crop_size',
    'upsample_factor': 'deepmarc_mask_head.mask_size',
    'num_outputs': 'num_classes',
    'num_layers': 'deepmarc_mask_head.weight_transfer.num_layers',
    'hidden_dim': 'deepmarc_mask_head.weight_transfer.hidden_dim',
    'activation': 'deepmarc_mask_head.weight_transfer.activation',
    'num_fc_layers': 'deepmarc_mask_head.mlp_mask_branch.num_fc_layers',
    'fc_dim': 'deepmarc_mask_head.mlp_mask_branch.fc_dim',
    'type': 'feature_extractor.type',
    'levels': 'feature_extractor.fpn',
}
_BOX_SOURCES = {
    faster_rcnn_pb2.DeepMarcMaskHead.GROUNDTRUTH: params_lib.GROUNDTRUTH,
    faster_rcnn_pb2.DeepMarcMaskHead.PROPOSALS: params_lib.PROPOSALS,
    faster_rcnn_pb2.DeepMarcMaskHead.PROPOSALS_AND_GROUNDTRUTH:
        params_lib.PROPOSALS_AND_GROUNDTRUTH,
}


def mask_head_params_from_proto(config, num_classes):
  """``DeepMarcMaskHead`` -> ``MaskHeadParams`` (checked)."""
  teacher_student = teacher_student_builder.params_from_proto(
      config, _M, config.crop_size)
  name = teacher_student_builder.student_network_type(config)
  # The head's own argument checks; its mask_size argument is our crop_size.
  with config_field_errors(_M, _HEAD_FIELDS):
    mask_head_registry.check_arguments(name, config.num_init_channels,
                                       mask_size=config.crop_size)
  if mask_head_registry.is_parameter_free(name):
    raise ConfigError(f'{_M}.network_type: {name!r} is parameter-free (it '
                      'needs Deep-MAC instance embeddings); pick a head with '
                      'weights.')
  if config.mask_size < config.crop_size or config.mask_size % config.crop_size:
    raise ConfigError(f'{_M}.mask_size: {config.mask_size} must be a multiple '
                      f'of crop_size {config.crop_size}.')
  if config.num_sampled_masks < 1:
    raise ConfigError(f'{_M}.num_sampled_masks: must be positive, got '
                      f'{config.num_sampled_masks}.')
  bad = [i for i in config.allowed_masked_classes_ids
         if not 1 <= i <= num_classes]
  if bad:
    raise ConfigError(f'{_M}.allowed_masked_classes_ids: {bad[0]} is not a '
                      f'class id in 1..{num_classes}.')
  return params_lib.MaskHeadParams(
      network_type=name, num_init_channels=config.num_init_channels,
      crop_size=config.crop_size, mask_size=config.mask_size,
      class_agnostic=config.class_agnostic and teacher_student is None,
      box_source=_BOX_SOURCES[config.box_source],
      num_sampled_masks=config.num_sampled_masks,
      allowed_masked_classes_ids=tuple(config.allowed_masked_classes_ids),
      teacher_student=teacher_student,
      **maskx_builder.maskx_kwargs_from_proto(config))


def _anchor_kwargs(config, min_level, max_level, single_level):
  generator = config.first_stage_anchor_generator
  kind = (generator.WhichOneof('anchor_generator_oneof')
          if config.HasField('first_stage_anchor_generator') else None)
  field = f'{_F}.first_stage_anchor_generator'
  if kind == 'grid_anchor_generator' or (kind is None and single_level):
    if not single_level:
      raise ConfigError(f'{field}.grid_anchor_generator: grid anchors need a '
                        'single-level backbone (faster_rcnn_resnet*_keras, '
                        'faster_rcnn_inception_resnet_v2_keras); FPN '
                        'backbones take multiscale_anchor_generator.')
    g = generator.grid_anchor_generator
    stride = (g.height_stride, g.width_stride)
    if stride != (2 ** min_level,) * 2:
      raise ConfigError(
          f'{field}.grid_anchor_generator.height_stride / width_stride: must '
          f'equal the feature stride {2 ** min_level}, got {stride}.')
    try:
      grid = params_lib.GridAnchorParams(
          scales=tuple(g.scales) or (0.5, 1.0, 2.0),
          aspect_ratios=tuple(g.aspect_ratios) or (0.5, 1.0, 2.0),
          base_size=(g.height, g.width), stride=stride,
          offset=(g.height_offset, g.width_offset))
    except ValueError as e:
      raise ConfigError(f'{field}.grid_anchor_generator: {e}') from None
    return {'grid_anchors': grid}
  if kind is None:
    return {}
  if single_level:
    raise ConfigError(f'{field}.{kind}: single-level backbones take '
                      'grid_anchor_generator.')
  a = generator.multiscale_anchor_generator
  if (a.min_level, a.max_level) != (min_level, max_level):
    raise ConfigError(
        f'{field}.multiscale_anchor_generator: '
        f'levels {a.min_level}..{a.max_level} must equal the feature levels '
        f'{min_level}..{max_level}.')
  faster_rcnn_options.check_fields(a, f'{field}.multiscale_anchor_generator')
  kwargs = {'anchor_size': a.anchor_scale,
            'anchor_num_scales': a.scales_per_octave}
  if a.aspect_ratios:
    kwargs['anchor_aspect_ratios'] = tuple(a.aspect_ratios)
  return kwargs


def _post_processing_kwargs(config):
  if not config.HasField('second_stage_post_processing'):
    return {}
  post = config.second_stage_post_processing
  if post.score_converter != post_processing_pb2.PostProcessing.SOFTMAX:
    raise ConfigError(f'{_F}.second_stage_post_processing.score_converter: '
                      'Deep-MARC scores with SOFTMAX; set it.')
  field = f'{_F}.second_stage_post_processing'
  if post.HasField('calibration_config'):
    raise ConfigError(f'{field}.calibration_config: supported by the OD API, '
                      'not by deepmac_tf (scores are not calibrated); remove '
                      'it.')
  nms = post.batch_non_max_suppression
  # logit_scale, the NMS variants and options: faster_rcnn_options.
  faster_rcnn_options.check_fields(post, field)
  faster_rcnn_options.check_fields(nms, f'{field}.batch_non_max_suppression')
  for name in ('max_detections_per_class', 'max_total_detections'):
    if getattr(nms, name) < 1:
      raise ConfigError(f'{field}.batch_non_max_suppression.{name}: must be '
                        f'>= 1, got {getattr(nms, name)}.')
  # Unset max_detections_per_class = its proto default (100), as in the OD
  # API: a class keeps at most that many of the max_total_detections.
  return {'detection_score_threshold': nms.score_threshold,
          'detection_nms_iou_threshold': nms.iou_threshold,
          'max_num_detections': nms.max_total_detections,
          'max_detections_per_class': nms.max_detections_per_class}


# Hyperparams fields whose regularizer maps to a part of the model.
_REGULARIZED_PARTS = (
    ('feature_extractor.conv_hyperparams', params_lib.PART_BACKBONE),
    ('first_stage_box_predictor_conv_hyperparams', params_lib.PART_RPN),
    ('second_stage_box_predictor.mask_rcnn_box_predictor.fc_hyperparams',
     params_lib.PART_BOX_HEAD),
    ('second_stage_box_predictor.mask_rcnn_box_predictor.conv_hyperparams',
     params_lib.PART_MASK_HEAD),
)


def _field(message, dotted):
  """The sub-message at a dotted path, or None when any step is unset."""
  for name in dotted.split('.'):
    if not message.HasField(name):
      return None
    message = getattr(message, name)
  return message


def _l2_weight_decay(config):
  """{part: L2 weight} from the ``regularizer`` of the Hyperparams fields.

  ``l2_regularizer { weight: w }`` adds w * sum(kernel^2) / 2 of that part's
  convolution / dense kernels (the OD API's Keras convention, = Model
  Garden's ``l2_weight_decay``); L1 raises a ConfigError naming the field.
  A single-level backbone's ``conv_hyperparams`` without
  ``override_base_feature_extractor_hyperparams`` configures nothing (as in
  the OD API; ``faster_rcnn_options.hyperparams_kwargs`` logs it), so its
  regularizer does not apply either.
  """
  fe = config.feature_extractor
  unused = (deepmarc_backbones.is_single_level(fe.type) and
            not fe.override_base_feature_extractor_hyperparams)
  decay = {}
  for dotted, part in _REGULARIZED_PARTS:
    if unused and dotted == 'feature_extractor.conv_hyperparams':
      continue
    hyperparams = _field(config, dotted)
    if hyperparams is None or not hyperparams.HasField('regularizer'):
      continue
    kind = hyperparams.regularizer.WhichOneof('regularizer_oneof')
    if kind == 'l1_regularizer':
      raise ConfigError(f'{_F}.{dotted}.regularizer.l1_regularizer: '
                        'Deep-MARC supports l2_regularizer only.')
    if kind == 'l2_regularizer':
      weight = hyperparams.regularizer.l2_regularizer.weight
      if weight < 0:
        raise ConfigError(f'{_F}.{dotted}.regularizer.l2_regularizer.weight: '
                          f'must be >= 0, got {weight}.')
      if weight > 0:
        decay[part] = float(weight)
  return tuple(sorted(decay.items()))


def params_from_proto(config, use_sync_batch_norm=False):
  """``FasterRcnn`` message -> ``MaskRCNNParams`` (every field honoured,
  logged as having no effect, or a ConfigError: ``faster_rcnn_options``)."""
  if not config.HasField('num_classes') or config.num_classes < 1:
    raise ConfigError(f'{_F}.num_classes: must be set to a positive number.')
  if config.number_of_stages not in (2, 3):
    raise ConfigError(f'{_F}.number_of_stages: {config.number_of_stages} is '
                      'not supported; use 2 (boxes) or 3 (boxes and masks).')
  if config.HasField('deepmarc_mask_head') and config.number_of_stages != 3:
    raise ConfigError(f'{_M}: set number_of_stages: 3 to predict masks.')
  faster_rcnn_options.check_options(config)
  fe = config.feature_extractor
  if not fe.type:
    raise ConfigError(f'{_F}.feature_extractor.type: must be set.')
  with config_field_errors(f'{_F}.feature_extractor', {'levels': 'fpn'}):
    min_level, max_level = (
        (fe.fpn.min_level, fe.fpn.max_level) if fe.HasField('fpn')
        else deepmarc_backbones.default_levels(fe.type))
    deepmarc_backbones.check_backbone(fe.type, min_level, max_level)
  single_level = deepmarc_backbones.is_single_level(fe.type)
  if single_level and fe.first_stage_features_stride != 16:
    raise ConfigError(f'{_F}.feature_extractor.first_stage_features_stride: '
                      f'{fe.type} gives stride 16, got '
                      f'{fe.first_stage_features_stride}.')
  if config.first_stage_nms_score_threshold < 0:
    raise ConfigError(f'{_F}.first_stage_nms_score_threshold: must be >= 0.')
  stride = max(config.maxpool_stride, 1)
  if single_level:
    crop_kwargs = dict(
        roi_crop_size=config.initial_crop_size or 14,
        roi_maxpool_kernel=max(config.maxpool_kernel_size, 1),
        roi_maxpool_stride=stride)
  else:
    crop_kwargs = dict(roi_crop_size=(config.initial_crop_size // stride
                                      if config.initial_crop_size else 7))
  mask_config = config.deepmarc_mask_head
  if not config.HasField('deepmarc_mask_head'):
    mask_config = (faster_rcnn_options.mask_head_from_box_predictor(config)
                   or mask_config)
  norm = dict(norm_momentum=0.997, norm_epsilon=1e-4)
  kwargs = dict(
      num_classes=config.num_classes, backbone=fe.type, min_level=min_level,
      max_level=max_level,
      fpn_num_filters=(fe.fpn.additional_layer_depth if fe.HasField('fpn')
                       else 256),
      rpn_num_filters=config.first_stage_box_predictor_depth,
      rpn_batch_size_per_im=config.first_stage_minibatch_size,
      rpn_fg_fraction=config.first_stage_positive_balance_fraction,
      rpn_nms_iou_threshold=config.first_stage_nms_iou_threshold,
      rpn_score_threshold=config.first_stage_nms_score_threshold,
      rpn_num_proposals=config.first_stage_max_proposals,
      # Unset: the OD API's one number for training and inference.
      rpn_test_num_proposals=(
          config.first_stage_max_proposals_eval
          if config.HasField('first_stage_max_proposals_eval')
          else config.first_stage_max_proposals),
      num_sampled_rois=config.second_stage_batch_size,
      foreground_fraction=config.second_stage_balance_fraction,
      box_head_num_convs=config.box_head_num_convs,
      box_head_num_filters=config.box_head_num_filters,
      box_head_num_fcs=config.box_head_num_fcs,
      box_head_fc_dims=config.box_head_fc_dims,
      rpn_score_loss_weight=config.first_stage_objectness_loss_weight,
      rpn_box_loss_weight=config.first_stage_localization_loss_weight,
      frcnn_class_loss_weight=config.second_stage_classification_loss_weight,
      frcnn_box_loss_weight=config.second_stage_localization_loss_weight,
      mask_loss_weight=config.second_stage_mask_prediction_loss_weight,
      clip_anchors_to_image=config.clip_anchors_to_image,
      use_sync_batch_norm=use_sync_batch_norm,
      l2_weight_decay=_l2_weight_decay(config),
      mask_head=(mask_head_params_from_proto(mask_config, config.num_classes)
                 if config.number_of_stages == 3 else None),
      **norm, **crop_kwargs)
  kwargs.update(faster_rcnn_options.hyperparams_kwargs(
      config, use_sync_batch_norm, **norm))
  kwargs.update(faster_rcnn_options.box_predictor_kwargs(config,
                                                         single_level))
  kwargs.update(_anchor_kwargs(config, min_level, max_level, single_level))
  kwargs.update(_post_processing_kwargs(config))
  return params_lib.MaskRCNNParams(**kwargs)


def build(config, is_training, use_sync_batch_norm=False):
  """Builds ``MaskRCNNMetaArch`` from a ``FasterRcnn`` message.

  Raises:
    ConfigError: naming the ``model.faster_rcnn`` field at fault (argument
      errors of the backbone and the mask head included).
  """
  params = params_from_proto(config, use_sync_batch_norm)
  with config_field_errors(_F, _MODEL_FIELDS):
    return mask_rcnn.MaskRCNNMetaArch(is_training, params)
