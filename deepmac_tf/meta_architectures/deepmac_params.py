"""Deep-MAC parameters: ``DeepMACParams`` and its reader from the
``CenterNet.DeepMACMaskEstimation`` proto (spec section 2.2).

Field names equal the proto's (``jitter_mode`` is ``roi_jitter_mode``, as in
the OD API), enums are their lower-cased names ('normalize_auto',
'expand_symmetric_xy', ...), and ``classification_loss`` is a
``mask_losses.MaskClassificationLoss``. Two fields are ours, not the proto's:
``detector_free`` and ``use_sync_batch_norm``.

Every setting the implementation cannot honour raises ``ConfigError`` naming
the field -- never a silent ignore. Supported weak loss: box consistency.
Not supported (raise when their weight is > 0): feature consistency,
augmented self-supervision, pointly supervised.
"""

import dataclasses
from google.protobuf import descriptor as proto_descriptor
import numpy as np

from deepmac_tf.errors import ConfigError
from deepmac_tf.losses import mask_losses
from deepmac_tf.mask_heads import registry
from deepmac_tf.ops import box_jitter

FIELD = 'model.center_net.deepmac_mask_estimation'

# Weak losses of the schema that this implementation does not train.
UNSUPPORTED_LOSS_WEIGHTS = (
    'feature_consistency_loss_weight',
    'augmented_self_supervision_loss_weight',
    'pointly_supervised_keypoint_loss_weight',
)


# embedding_head_kernel -> kernel (height, width) of the embedding heads'
# first conv: the OD API's 2021 release 3x3, its later code 1x3.
EMBEDDING_HEAD_KERNEL_SHAPES = {'auto': (3, 3), 'kernel_3x3': (3, 3),
                                'kernel_1x3': (1, 3)}

# mask_head_slots -> all_slots of mask_heads.selected_slots (None = by
# device: all slots when a TPU is visible).
MASK_HEAD_SLOTS = {'slots_auto': None, 'selected_slots': False,
                   'all_slots': True}


@dataclasses.dataclass(frozen=True)
class DeepMACParams:
  """Deep-MAC mask-branch settings (defaults = the proto's defaults).

  See spec section 2.2 for the meaning of each proto field. Ours:
    detector_free: train only the mask branch on groundtruth boxes (no
      CenterNet detection heads or losses); masks come from given boxes.
    use_sync_batch_norm: synchronized batch norm in the mask head.
  """
  classification_loss: mask_losses.MaskClassificationLoss = (
      dataclasses.field(default_factory=mask_losses.MaskClassificationLoss))
  dim: int = 256
  task_loss_weight: float = 1.0
  pixel_embedding_dim: int = 16
  allowed_masked_classes_ids: tuple[int, ...] = ()
  mask_size: int = 32
  mask_num_subsamples: int = -1
  use_xy: bool = True
  network_type: str = 'hourglass52'
  use_instance_embedding: bool = True
  num_init_channels: int = 64
  predict_full_resolution_masks: bool = False
  postprocess_crop_size: int = 256
  max_roi_jitter_ratio: float = 0.0
  roi_jitter_mode: str = 'default'
  box_consistency_loss_weight: float = 0.0
  feature_consistency_threshold: float = 0.4
  feature_consistency_dilation: int = 2
  feature_consistency_loss_weight: float = 0.0
  box_consistency_loss_normalize: str = mask_losses.NORMALIZE_AUTO
  box_consistency_tightness: bool = False
  feature_consistency_warmup_steps: int = 0
  feature_consistency_warmup_start: int = 0
  use_only_last_stage: bool = False
  augmented_self_supervision_max_translation: float = 0.0
  augmented_self_supervision_loss_weight: float = 0.0
  augmented_self_supervision_flip_probability: float = 0.0
  augmented_self_supervision_warmup_start: int = 0
  augmented_self_supervision_warmup_steps: int = 0
  augmented_self_supervision_loss: str = 'loss_dice'
  augmented_self_supervision_scale_min: float = 1.0
  augmented_self_supervision_scale_max: float = 1.0
  pointly_supervised_keypoint_loss_weight: float = 0.0
  ignore_per_class_box_overlap: bool = False
  feature_consistency_type: str = 'consistency_default_lab'
  feature_consistency_comparison: str = 'comparison_default_gaussian'
  # Ours (proto field 1001): 'auto' (3x3 unless a checkpoint says 1x3, see
  # builders/checkpoint_layout.py), 'kernel_3x3' or 'kernel_1x3'.
  embedding_head_kernel: str = 'auto'
  # Ours (proto field 1002): detections scoring below it get zero masks
  # without a mask-head run; 0.0 = every detection slot gets a mask.
  mask_detection_score_threshold: float = 0.0
  # Ours (proto field 1003): one of MASK_HEAD_SLOTS (see
  # ``mask_head_on_all_slots``).
  mask_head_slots: str = 'slots_auto'
  # Ours (not in the proto).
  detector_free: bool = False
  use_sync_batch_norm: bool = False

  @property
  def mask_head_on_all_slots(self) -> bool | None:
    """``selected_slots.apply_to_selected_slots``'s ``all_slots``: True =
    the head on every slot (static shapes), False = on the slots needing a
    mask, None = decide by device (all slots on TPU)."""
    return MASK_HEAD_SLOTS[self.mask_head_slots]

  @property
  def embedding_head_kernel_shape(self) -> tuple[int, int]:
    """(height, width) of the embedding heads' first conv."""
    return EMBEDDING_HEAD_KERNEL_SHAPES[self.embedding_head_kernel]

  def __post_init__(self):
    object.__setattr__(self, 'allowed_masked_classes_ids',
                       tuple(int(i) for i in self.allowed_masked_classes_ids))
    _validate(self)


def _validate(p):
  """Raises ConfigError for settings that cannot work."""
  for name in UNSUPPORTED_LOSS_WEIGHTS:
    if getattr(p, name) > 0:
      raise ConfigError(
          f'{FIELD}.{name}: {getattr(p, name)} > 0 asks for a weak loss that '
          'is not supported by deepmac_tf (supported weak loss: '
          'box_consistency_loss_weight); remove the field or set it to 0.')
  for name in ('dim', 'pixel_embedding_dim', 'num_init_channels'):
    if getattr(p, name) <= 0:
      raise ConfigError(f'{FIELD}.{name}: must be positive, got '
                        f'{getattr(p, name)}.')
  if p.embedding_head_kernel not in EMBEDDING_HEAD_KERNEL_SHAPES:
    raise ConfigError(f'{FIELD}.embedding_head_kernel: must be one of '
                      f'{sorted(EMBEDDING_HEAD_KERNEL_SHAPES)}, got '
                      f'{p.embedding_head_kernel!r}.')
  if p.mask_head_slots not in MASK_HEAD_SLOTS:
    raise ConfigError(f'{FIELD}.mask_head_slots: must be one of '
                      f'{sorted(MASK_HEAD_SLOTS)}, got {p.mask_head_slots!r}.')
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
  registry.is_parameter_free(p.network_type)  # ConfigError if unknown.
  if not p.predict_full_resolution_masks:
    registry.check_mask_size(p.network_type, p.mask_size)
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
  for class_id in p.allowed_masked_classes_ids:
    if class_id < 1:
      raise ConfigError(f'{FIELD}.allowed_masked_classes_ids: ids are '
                        f'1-based, got {class_id}.')


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


def deepmac_params_from_proto(proto, **overrides):
  """Reads a ``CenterNet.DeepMACMaskEstimation`` message.

  Args:
    proto: the message (unset fields take their proto defaults).
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
    if field.name == 'classification_loss':
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
  known = {f.name for f in dataclasses.fields(DeepMACParams)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise ConfigError(f'{FIELD}: fields {unknown} are not understood by this '
                      'version of deepmac_tf.')
  values.update(overrides)
  return DeepMACParams(**values)
