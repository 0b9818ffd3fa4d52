"""``center_net.deepmac_mask_estimation { ... }`` -> ``DeepMACParams``: the
reader and the one validator of Deep-MAC settings (spec section 2.2).

Field names equal the proto's (``jitter_mode`` is ``roi_jitter_mode``, as in
the OD API), enums are their lower-cased names ('normalize_auto',
'expand_symmetric_xy', ...), and ``classification_loss`` is a
``mask_losses.MaskClassificationLoss``. Every setting the implementation
cannot honour raises ``ConfigError`` naming the field -- never a silent
ignore; argument errors of the mask head are named by our fields too.
"""

import dataclasses

from google.protobuf import descriptor as proto_descriptor
import numpy as np

from deepmac_tf.builders import maskx_builder
from deepmac_tf.builders import teacher_student_builder
from deepmac_tf.errors import config_field_errors
from deepmac_tf.errors import ConfigError
from deepmac_tf.losses import mask_losses
from deepmac_tf.mask_heads import parameter_free
from deepmac_tf.mask_heads import registry as mask_head_registry
from deepmac_tf.meta_architectures import deepmac_params as params_lib
from deepmac_tf.ops import box_jitter

FIELD = 'model.center_net.deepmac_mask_estimation'
# Arguments of the mask-branch layers -> their fields under FIELD (the
# others have the field's name).
HEAD_FIELDS = {
    'num_layers': 'weight_transfer.num_layers',
    'hidden_dim': 'weight_transfer.hidden_dim',
    'activation': 'weight_transfer.activation',
}

# Weak losses of the schema that this implementation does not train.
UNSUPPORTED_LOSS_WEIGHTS = (
    'feature_consistency_loss_weight',
    'augmented_self_supervision_loss_weight',
    'pointly_supervised_keypoint_loss_weight',
)


def validate_deepmac_params(p, num_classes=None):
  """The one check of Deep-MAC settings: raises ConfigError naming the
  ``deepmac_mask_estimation`` field of any setting that cannot work.

  Args:
    p: ``DeepMACParams``.
    num_classes: the model's number of classes (None: ids not bounded).
  """
  for name in UNSUPPORTED_LOSS_WEIGHTS:
    if getattr(p, name) > 0:
      raise ConfigError(
          f'{FIELD}.{name}: {getattr(p, name)} > 0 asks for a weak loss that '
          'is not supported by deepmac_tf (supported weak loss: '
          'box_consistency_loss_weight); remove the field or set it to 0.')
  for name in ('dim', 'pixel_embedding_dim', 'num_init_channels',
               'embedding_head_num_filters'):
    if getattr(p, name) <= 0:
      raise ConfigError(f'{FIELD}.{name}: must be positive, got '
                        f'{getattr(p, name)}.')
  if p.embedding_head_kernel not in params_lib.EMBEDDING_HEAD_KERNEL_SHAPES:
    raise ConfigError(
        f'{FIELD}.embedding_head_kernel: must be one of '
        f'{sorted(params_lib.EMBEDDING_HEAD_KERNEL_SHAPES)}, got '
        f'{p.embedding_head_kernel!r}.')
  if p.mask_head_slots not in params_lib.MASK_HEAD_SLOTS:
    raise ConfigError(f'{FIELD}.mask_head_slots: must be one of '
                      f'{sorted(params_lib.MASK_HEAD_SLOTS)}, got '
                      f'{p.mask_head_slots!r}.')
  if not 0.0 <= p.mask_detection_score_threshold <= 1.0:
    raise ConfigError(f'{FIELD}.mask_detection_score_threshold: must be in '
                      f'[0, 1] (a detection score), got '
                      f'{p.mask_detection_score_threshold}.')
  if p.mask_num_subsamples > 0:
    raise ConfigError(f'{FIELD}.mask_num_subsamples: subsampling masks is '
                      f'not supported; use a value <= 0 (got '
                      f'{p.mask_num_subsamples}).')
  if p.predict_full_resolution_masks and p.max_roi_jitter_ratio > 0:
    raise ConfigError(f'{FIELD}.max_roi_jitter_ratio: box jitter is not '
                      'supported together with predict_full_resolution_masks.')
  if p.max_roi_jitter_ratio < 0:
    raise ConfigError(f'{FIELD}.max_roi_jitter_ratio: must be >= 0, got '
                      f'{p.max_roi_jitter_ratio}.')
  if p.roi_jitter_mode not in box_jitter.JITTER_MODES:
    raise ConfigError(f'{FIELD}.jitter_mode: must be one of '
                      f'{box_jitter.JITTER_MODES}, got {p.roi_jitter_mode!r}.')
  if p.mask_size <= 0 or p.postprocess_crop_size <= 0:
    raise ConfigError(f'{FIELD}.mask_size / postprocess_crop_size: must be '
                      f'positive, got {p.mask_size} / '
                      f'{p.postprocess_crop_size}.')
  # The head's own argument checks, named by our fields.
  with config_field_errors(FIELD):
    mask_head_registry.check_arguments(
        p.network_type, p.num_init_channels,
        None if p.predict_full_resolution_masks else p.mask_size)
  _check_parameter_free_head(p)
  if p.network_type == 'embedding_projection':
    if p.use_xy:
      raise ConfigError(f'{FIELD}.use_xy: must be false for network_type '
                        '"embedding_projection".')
    if p.pixel_embedding_dim != p.dim:
      raise ConfigError(
          f'{FIELD}.pixel_embedding_dim: must equal dim ({p.dim}) for '
          f'network_type "embedding_projection", got {p.pixel_embedding_dim}.')
  if p.box_consistency_loss_normalize not in mask_losses.NORMALIZATIONS:
    raise ConfigError(f'{FIELD}.box_consistency_loss_normalize: must be one '
                      f'of {mask_losses.NORMALIZATIONS}, got '
                      f'{p.box_consistency_loss_normalize!r}.')
  if (p.box_consistency_loss_weight > 0 and
      p.classification_loss.kind == mask_losses.DICE and
      p.box_consistency_loss_normalize != mask_losses.NORMALIZE_AUTO):
    raise ConfigError(
        f'{FIELD}.box_consistency_loss_normalize: the dice loss supports '
        f'only NORMALIZE_AUTO, got '
        f'{p.box_consistency_loss_normalize.upper()}.')
  if p.teacher_student is not None:
    teacher_student_builder.check_deepmac_student(FIELD, p)
  if p.weight_transfer is not None:
    maskx_builder.check_deepmac_weight_transfer(FIELD, p)
  for class_id in p.allowed_masked_classes_ids:
    if class_id < 1 or (num_classes and class_id > num_classes):
      raise ConfigError(
          f'{FIELD}.allowed_masked_classes_ids: {class_id} is not a class id '
          f'(ids are 1-based, from 1 to num_classes = {num_classes}).')


def _check_parameter_free_head(p):
  """Parameter-free heads: the instance embedding is their weights."""
  if not mask_head_registry.is_parameter_free(p.network_type):
    return
  if p.use_instance_embedding:
    raise ConfigError(
        f'{FIELD}.use_instance_embedding: must be false for the '
        f'parameter-free network_type "{p.network_type}".')
  depth = parameter_free.parse_cond_inst_depth(p.network_type)
  if depth is None:
    return
  input_channels = p.pixel_embedding_dim + (2 if p.use_xy else 0)
  if depth == 1 and input_channels != p.num_init_channels:
    raise ConfigError(
        f'{FIELD}.num_init_channels: cond_inst1 maps its {input_channels} '
        f'input channels (pixel_embedding_dim + 2 with use_xy) straight to '
        f'one logit, so num_init_channels must be {input_channels}, got '
        f'{p.num_init_channels}.')
  expected = parameter_free.conditional_conv_num_params(
      input_channels, p.num_init_channels, depth)
  if p.dim != expected:
    raise ConfigError(
        f'{FIELD}.dim: {p.network_type} on {input_channels} input channels '
        f'with num_init_channels {p.num_init_channels} needs an instance '
        f'embedding of exactly {expected} values; set dim: {expected} (got '
        f'{p.dim}).')


def classification_loss_from_proto(proto):
  """``ClassificationLoss`` message -> ``MaskClassificationLoss``.

  Raises:
    ConfigError: unset, or a loss other than weighted_sigmoid /
      weighted_dice_classification_loss.
  """
  kind = proto.WhichOneof('classification_loss')
  if kind == 'weighted_sigmoid':
    return mask_losses.MaskClassificationLoss(mask_losses.SIGMOID)
  if kind == 'weighted_dice_classification_loss':
    dice = proto.weighted_dice_classification_loss
    return mask_losses.MaskClassificationLoss(
        mask_losses.DICE,
        squared_normalization=dice.squared_normalization,
        is_prediction_probability=dice.is_prediction_probability)
  if kind is None:
    raise ConfigError(f'{FIELD}.classification_loss: must be set, e.g. '
                      'classification_loss { weighted_sigmoid { } }.')
  raise ConfigError(f'{FIELD}.classification_loss: {kind} is not supported '
                    'for Deep-MAC masks; use weighted_sigmoid or '
                    'weighted_dice_classification_loss.')


def deepmac_params_from_proto(proto, num_classes=None, **overrides):
  """Reads and checks a ``CenterNet.DeepMACMaskEstimation`` message.

  Args:
    proto: the message (unset fields take their proto defaults).
    num_classes: the model's number of classes, bounding
      ``allowed_masked_classes_ids`` (None: not bounded).
    **overrides: values for fields outside the proto (``detector_free``,
      ``use_sync_batch_norm``).

  Returns:
    DeepMACParams.

  Raises:
    ConfigError: an unsupported or inconsistent setting, naming the field.
  """
  values = {}
  for field in proto.DESCRIPTOR.fields:
    value = getattr(proto, field.name)
    if field.name == 'teacher_student':
      value = teacher_student_builder.deepmac_params_from_proto(proto, FIELD)
    elif field.name == 'weight_transfer':
      value = (maskx_builder.deepmac_weight_transfer_from_proto(
          proto.weight_transfer, f'{FIELD}.weight_transfer')
               if proto.HasField('weight_transfer') else None)
    elif field.name == 'classification_loss':
      value = classification_loss_from_proto(value)
    elif field.is_repeated:
      value = tuple(value)
    elif field.type == proto_descriptor.FieldDescriptor.TYPE_ENUM:
      value = field.enum_type.values_by_number[value].name.lower()
    elif field.type == proto_descriptor.FieldDescriptor.TYPE_FLOAT:
      # Shortest decimal of the float32 (0.4, not 0.4000000059604645).
      value = float(str(np.float32(value)))
    name = 'roi_jitter_mode' if field.name == 'jitter_mode' else field.name
    values[name] = value
  known = {f.name for f in dataclasses.fields(params_lib.DeepMACParams)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise ConfigError(f'{FIELD}: fields {unknown} are not understood by this '
                      'version of deepmac_tf.')
  if values['teacher_student'] is not None:
    # The teacher is the Deep-MAC head (its type / width may be given in
    # teacher_student).
    values['network_type'] = values['teacher_student'].teacher_network_type
    values['num_init_channels'] = (
        values['teacher_student'].teacher_num_init_channels)
  values.update(overrides)
  params = params_lib.DeepMACParams(**values)
  validate_deepmac_params(params, num_classes)
  return params
