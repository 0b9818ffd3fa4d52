"""Deep-MAC parameters: ``DeepMACParams``, plain data (spec section 2.2).
Read from the ``CenterNet.DeepMACMaskEstimation`` proto and checked by
``builders/deepmac_builder.py``.

Field names equal the proto's (``jitter_mode`` is ``roi_jitter_mode``, as in
the OD API), enums are their lower-cased names ('normalize_auto',
'expand_symmetric_xy', ...), and ``classification_loss`` is a
``mask_losses.MaskClassificationLoss``. Two fields are ours, not the proto's:
``detector_free`` and ``use_sync_batch_norm``.

Supported weak loss: box consistency. The builder refuses the others
(feature consistency, augmented self-supervision, pointly supervised) when
their weight is > 0.
"""

import dataclasses

from deepmac_tf.losses import mask_losses
from deepmac_tf.meta_architectures.mask_rcnn_params import WeightTransferParams
from deepmac_tf.meta_architectures.teacher_student_params import TeacherStudentParams


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
  # Ours (proto field 1210): filters of the embedding heads' first conv.
  embedding_head_num_filters: int = 256
  # Ours (proto field 1002): detections scoring below it get zero masks
  # without a mask-head run; 0.0 = every detection slot gets a mask.
  mask_detection_score_threshold: float = 0.0
  # Ours (proto field 1003): one of MASK_HEAD_SLOTS (see
  # ``mask_head_on_all_slots``).
  mask_head_slots: str = 'slots_auto'
  # Ours (proto field 1300): teacher-student heads; the Deep-MAC head
  # (network_type, num_init_channels) is the teacher, a class-specific
  # ``student_network_type`` head beside it the deployed one.
  teacher_student: TeacherStudentParams | None = None
  # Ours (proto field 1500): MaskX weight transfer on Deep-MAC
  # (``meta_architectures/deepmac_weight_transfer.py``); None = class-agnostic.
  weight_transfer: WeightTransferParams | None = None
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
