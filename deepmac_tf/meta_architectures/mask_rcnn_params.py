"""Settings of the Deep-MARC / Mask R-CNN meta-architecture, as plain data.

The builder (``builders/mask_rcnn_builder.py``) fills ``MaskRCNNParams`` from
the pipeline config's ``faster_rcnn`` message; defaults are Model Garden's
Mask R-CNN defaults (FPN levels 2-6, 3 aspect ratios, 512 sampled ROIs, ...)
so a config that names only the paper's choices trains the paper's model.
"""

import dataclasses

from deepmac_tf.layers.layer_hyperparams import LayerHyperparams
from deepmac_tf.meta_architectures.teacher_student_params import TeacherStudentParams

# Which boxes train the mask head (FasterRcnn.DeepMarcMaskHead.BoxSource).
GROUNDTRUTH = 'groundtruth'
PROPOSALS = 'proposals'
PROPOSALS_AND_GROUNDTRUTH = 'proposals_and_groundtruth'
BOX_SOURCES = (GROUNDTRUTH, PROPOSALS, PROPOSALS_AND_GROUNDTRUTH)

# Parts of the model an L2 weight decay can apply to (l2_weight_decay keys).
PART_BACKBONE = 'backbone'  # backbone + FPN
PART_RPN = 'rpn'
PART_BOX_HEAD = 'box_head'
PART_MASK_HEAD = 'mask_head'

# First-stage anchors (FasterRcnn.first_stage_anchor_generator).
MULTISCALE_ANCHORS = 'multiscale'  # Model Garden's, one size per level
GRID_ANCHORS = 'grid'  # the OD API's grid_anchor_generator, one level


@dataclasses.dataclass(frozen=True)
class GridAnchorParams:
  """The OD API's ``grid_anchor_generator`` (single-level backbones).

  Anchor (scale s, aspect ratio a) at feature cell (i, j): center
  (i * stride_y + offset_y, j * stride_x + offset_x) pixels, height
  base_h * s / sqrt(a), width base_w * s * sqrt(a); per cell the order is
  aspect-ratio major, scale minor (the OD API's).
  """
  scales: tuple = (0.5, 1.0, 2.0)
  aspect_ratios: tuple = (0.5, 1.0, 2.0)
  base_size: tuple = (256, 256)
  stride: tuple = (16, 16)
  offset: tuple = (0, 0)

  def __post_init__(self):
    if not self.scales or not self.aspect_ratios:
      raise ValueError('scales and aspect_ratios must not be empty.')
    if min(self.scales) <= 0 or min(self.aspect_ratios) <= 0:
      raise ValueError('scales and aspect_ratios must be positive.')
    if self.stride[0] != self.stride[1] or self.stride[0] not in (8, 16, 32):
      raise ValueError(f'height and width strides must be equal and the '
                       f'feature stride, got {self.stride}.')

  @property
  def num_anchors_per_location(self):
    return len(self.scales) * len(self.aspect_ratios)


# ImageNet statistics (0..255 RGB), what Model Garden's backbones expect.
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


# MaskX R-CNN: what T reads (FasterRcnn.DeepMarcMaskHead.WeightTransfer.Input).
TRANSFER_CLS = 'cls'
TRANSFER_BOX = 'box'
TRANSFER_CLS_AND_BOX = 'cls+box'
TRANSFER_RANDOM = 'random'
TRANSFER_INPUTS = (TRANSFER_CLS, TRANSFER_BOX, TRANSFER_CLS_AND_BOX,
                   TRANSFER_RANDOM)
# Training modes (FasterRcnn.DeepMarcMaskHead.TrainingMode).
END_TO_END = 'end_to_end'
STAGE_WISE = 'stage_wise'
TRAINING_MODES = (END_TO_END, STAGE_WISE)


@dataclasses.dataclass(frozen=True)
class WeightTransferParams:
  """MaskX R-CNN: the class's last mask layer is T(w_det(c)).

  Attributes:
    input: one of TRANSFER_INPUTS (w_det(c); 'random' = fixed Gaussian).
    num_layers: layers of T (1 = affine).
    activation: 'leaky_relu' or 'relu' (``mask_heads.weight_transfer``).
    hidden_dim: width of T's hidden layers.
    stop_gradient: no gradient from T into the box head.
  """
  input: str = TRANSFER_CLS_AND_BOX
  num_layers: int = 2
  activation: str = 'leaky_relu'
  hidden_dim: int = 1024
  stop_gradient: bool = True

  def __post_init__(self):
    if self.input not in TRANSFER_INPUTS:
      raise ValueError(f'input must be one of {TRANSFER_INPUTS}, got '
                       f'{self.input!r}.')


@dataclasses.dataclass(frozen=True)
class MlpMaskBranchParams:
  """MaskX R-CNN's class-agnostic MLP mask branch (fused by addition)."""
  num_fc_layers: int = 2
  fc_dim: int = 1024


@dataclasses.dataclass(frozen=True)
class MaskHeadParams:
  """The mask branch.

  Attributes:
    network_type: catalogue name (``mask_heads.mask_head_names()``).
    num_init_channels: width of the head and of its upsampling layer.
    crop_size: ROIAlign crop S of the FPN features.
    mask_size: output mask size (a multiple of crop_size).
    class_agnostic: one mask per box, else one per class.
    box_source: one of BOX_SOURCES (training only; inference uses the
      detected boxes).
    num_sampled_masks: foreground proposals per image for PROPOSALS*.
    allowed_masked_classes_ids: 1-based ids whose masks train the head when
      the groundtruth has no ``groundtruth_instance_mask_weights``.
    weight_transfer: MaskX weight transfer (class-specific only) or None.
    mlp_mask_branch: fused class-agnostic MLP branch or None.
    training_mode: END_TO_END or STAGE_WISE (detector frozen).
    teacher_student: teacher-student heads (``network_type`` is then the
      class-specific student's) or None.
  """
  network_type: str = 'mask_rcnn_fcn'
  num_init_channels: int = 256
  crop_size: int = 14
  mask_size: int = 28
  class_agnostic: bool = True
  box_source: str = GROUNDTRUTH
  num_sampled_masks: int = 128
  allowed_masked_classes_ids: tuple = ()
  weight_transfer: WeightTransferParams | None = None
  mlp_mask_branch: MlpMaskBranchParams | None = None
  training_mode: str = END_TO_END
  teacher_student: TeacherStudentParams | None = None

  def __post_init__(self):
    if self.teacher_student is not None and (
        self.class_agnostic or self.weight_transfer is not None or
        self.mlp_mask_branch is not None):
      raise ValueError('teacher_student needs a class-specific student '
                       '(class_agnostic=False) without MaskX parts.')
    if self.weight_transfer is not None and self.class_agnostic:
      raise ValueError('weight_transfer needs class-specific masks '
                       '(class_agnostic=False).')
    if self.training_mode not in TRAINING_MODES:
      raise ValueError(f'training_mode must be one of {TRAINING_MODES}, got '
                       f'{self.training_mode!r}.')
    if self.box_source not in BOX_SOURCES:
      raise ValueError(f'box_source must be one of {BOX_SOURCES}, got '
                       f'{self.box_source!r}.')
    if self.mask_size % self.crop_size:
      raise ValueError(f'mask_size {self.mask_size} must be a multiple of '
                       f'crop_size {self.crop_size}.')

  @property
  def upsample_factor(self):
    return self.mask_size // self.crop_size

  @property
  def stage_wise(self):
    return self.training_mode == STAGE_WISE


@dataclasses.dataclass(frozen=True)
class MaskRCNNParams:
  """Everything but the mask branch (Model Garden's defaults).

  Class ids: ``num_classes`` object classes, 1-based in groundtruth; the
  detection head has num_classes + 1 outputs (0 = background).
  """
  num_classes: int
  backbone: str = 'resnet50_fpn'
  min_level: int = 2
  max_level: int = 6
  fpn_num_filters: int = 256
  anchor_num_scales: int = 1
  anchor_aspect_ratios: tuple = (0.5, 1.0, 2.0)
  anchor_size: float = 8.0
  rpn_num_convs: int = 1
  rpn_num_filters: int = 256
  rpn_match_threshold: float = 0.7
  rpn_unmatched_threshold: float = 0.3
  rpn_batch_size_per_im: int = 256
  rpn_fg_fraction: float = 0.5
  rpn_pre_nms_top_k: int = 2000
  rpn_nms_iou_threshold: float = 0.7
  rpn_num_proposals: int = 1000
  rpn_test_pre_nms_top_k: int = 1000
  rpn_test_num_proposals: int = 1000
  num_sampled_rois: int = 512
  foreground_fraction: float = 0.25
  foreground_iou_threshold: float = 0.5
  background_iou_high_threshold: float = 0.5
  background_iou_low_threshold: float = 0.0
  roi_crop_size: int = 7
  box_head_num_convs: int = 4
  box_head_num_filters: int = 256
  box_head_num_fcs: int = 1
  box_head_fc_dims: int = 1024
  box_regression_weights: tuple = (10.0, 10.0, 5.0, 5.0)
  detection_pre_nms_top_k: int = 5000
  detection_score_threshold: float = 0.05
  detection_nms_iou_threshold: float = 0.5
  max_num_detections: int = 100
  # At most this many detections per class (the OD API's
  # max_detections_per_class); None = max_num_detections.
  max_detections_per_class: int | None = None
  # Detection NMS: True = the fused tf.image.combined_non_max_suppression
  # kernel (CPU / GPU), False = Model Garden's padded sorted NMS (the one
  # with a TPU kernel), None = pick (see mask_rcnn.use_combined_nms).
  use_combined_nms: bool | None = None
  rpn_huber_loss_delta: float = 1.0 / 9.0
  frcnn_huber_loss_delta: float = 1.0
  rpn_score_loss_weight: float = 1.0
  rpn_box_loss_weight: float = 1.0
  frcnn_class_loss_weight: float = 1.0
  frcnn_box_loss_weight: float = 1.0
  mask_loss_weight: float = 1.0
  # Grid anchors (single-level backbones); None = multiscale anchors.
  grid_anchors: GridAnchorParams | None = None
  clip_anchors_to_image: bool = False
  rpn_score_threshold: float = 0.0
  # Single-level backbones: max pooling of the ROI crops before the box
  # classifier (the OD API's maxpool_kernel_size / maxpool_stride).
  roi_maxpool_kernel: int = 1
  roi_maxpool_stride: int = 1
  share_box_across_classes: bool = False
  box_head_dropout_keep_probability: float = 1.0
  # Layer settings per part (None: the part's defaults).
  backbone_hyperparams: LayerHyperparams | None = None
  decoder_hyperparams: LayerHyperparams | None = None
  rpn_hyperparams: LayerHyperparams | None = None
  box_head_hyperparams: LayerHyperparams | None = None
  mask_head_hyperparams: LayerHyperparams | None = None
  channel_means: tuple = IMAGENET_MEAN_RGB
  channel_stds: tuple = IMAGENET_STDDEV_RGB
  use_sync_batch_norm: bool = False
  # Batch norm of the Model Garden parts (backbone, FPN, RPN, box head):
  # Model Garden's Mask R-CNN defaults (norm_activation).
  norm_momentum: float = 0.997
  norm_epsilon: float = 1e-4
  # ((part, weight), ...): weight * sum(kernel^2) / 2 per part, PART_* keys.
  l2_weight_decay: tuple = ()
  mask_head: MaskHeadParams | None = dataclasses.field(
      default_factory=MaskHeadParams)

  @property
  def num_anchors_per_location(self):
    if self.grid_anchors is not None:
      return self.grid_anchors.num_anchors_per_location
    return self.anchor_num_scales * len(self.anchor_aspect_ratios)
