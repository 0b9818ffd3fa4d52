"""CenterNet task parameters (frozen dataclasses) and their proto readers.

``object_center_params_from_proto`` / ``object_detection_params_from_proto``
take ``CenterNet.ObjectCenterParams`` / ``CenterNet.ObjectDetection`` messages
and apply the OD API's defaults: a head whose ``*_head_params`` is unset gets
``num_filters=[256]``, ``kernel_sizes=[3]``. Options this implementation does
not support raise ``ConfigError`` naming the field (never a silent ignore).
"""

import dataclasses

from deepmac_tf.errors import ConfigError

DEFAULT_HEAD_NUM_FILTERS = (256,)
DEFAULT_HEAD_KERNEL_SIZES = (3,)

_CENTER_FIELD = 'center_net.object_center_params'
_DETECTION_FIELD = 'center_net.object_detection_task'


@dataclasses.dataclass(frozen=True)
class ObjectCenterParams:
  """Center heatmap task.

  Attributes:
    object_center_loss_weight: weight of ``Loss/object_center``.
    focal_loss_alpha: alpha of the penalty-reduced logistic focal loss.
    focal_loss_beta: beta of the penalty-reduced logistic focal loss.
    heatmap_bias_init: bias of the center head's last conv (logit(0.1)).
    min_box_overlap_iou: IoU used by the CenterNet Gaussian radius.
    max_box_predictions: K of the top-K peak extraction.
    peak_max_pool_kernel_size: max-pool window of the peak extraction.
    center_head_num_filters: filters of the center head's hidden convs.
    center_head_kernel_sizes: kernel sizes of those convs.
  """
  object_center_loss_weight: float = 1.0
  focal_loss_alpha: float = 2.0
  focal_loss_beta: float = 4.0
  heatmap_bias_init: float = -2.19
  min_box_overlap_iou: float = 0.7
  max_box_predictions: int = 100
  peak_max_pool_kernel_size: int = 3
  center_head_num_filters: tuple[int, ...] = DEFAULT_HEAD_NUM_FILTERS
  center_head_kernel_sizes: tuple[int, ...] = DEFAULT_HEAD_KERNEL_SIZES

  def __post_init__(self):
    _check_head(self.center_head_num_filters, self.center_head_kernel_sizes,
                f'{_CENTER_FIELD}.center_head_params')
    if self.max_box_predictions < 1:
      raise ConfigError(f'{_CENTER_FIELD}.max_box_predictions: must be >= 1, '
                        f'got {self.max_box_predictions}.')
    if self.peak_max_pool_kernel_size < 1:
      raise ConfigError(f'{_CENTER_FIELD}.peak_max_pool_kernel_size: must be '
                        f'>= 1, got {self.peak_max_pool_kernel_size}.')
    if not 0.0 < self.min_box_overlap_iou < 1.0:
      raise ConfigError(f'{_CENTER_FIELD}.min_box_overlap_iou: must be in '
                        f'(0, 1), got {self.min_box_overlap_iou}.')


@dataclasses.dataclass(frozen=True)
class ObjectDetectionParams:
  """Box (scale + offset) task; the localization loss is L1.

  Attributes:
    task_loss_weight: multiplies both box losses.
    offset_loss_weight: weight of ``Loss/box/offset``.
    scale_loss_weight: weight of ``Loss/box/scale``.
    scale_head_num_filters / scale_head_kernel_sizes: the scale head.
    offset_head_num_filters / offset_head_kernel_sizes: the offset head.
  """
  task_loss_weight: float = 1.0
  offset_loss_weight: float = 1.0
  scale_loss_weight: float = 0.1
  scale_head_num_filters: tuple[int, ...] = DEFAULT_HEAD_NUM_FILTERS
  scale_head_kernel_sizes: tuple[int, ...] = DEFAULT_HEAD_KERNEL_SIZES
  offset_head_num_filters: tuple[int, ...] = DEFAULT_HEAD_NUM_FILTERS
  offset_head_kernel_sizes: tuple[int, ...] = DEFAULT_HEAD_KERNEL_SIZES

  def __post_init__(self):
    _check_head(self.scale_head_num_filters, self.scale_head_kernel_sizes,
                f'{_DETECTION_FIELD}.scale_head_params')
    _check_head(self.offset_head_num_filters, self.offset_head_kernel_sizes,
                f'{_DETECTION_FIELD}.offset_head_params')


def _check_head(num_filters, kernel_sizes, field):
  if len(num_filters) != len(kernel_sizes):
    raise ConfigError(
        f'{field}: num_filters and kernel_sizes must have the same length, '
        f'got {list(num_filters)} and {list(kernel_sizes)}.')
  if any(n < 1 for n in num_filters) or any(k < 1 for k in kernel_sizes):
    raise ConfigError(f'{field}: num_filters and kernel_sizes must be >= 1, '
                      f'got {list(num_filters)} and {list(kernel_sizes)}.')


def _decimal(value):
  """A proto float32 as the decimal a config writes (0.1, not 0.100000001)."""
  return float(f'{value:.7g}')


def _head_params(message, field_name, field):
  """(num_filters, kernel_sizes) of a PredictionHeadParams, with defaults."""
  if not message.HasField(field_name):
    return DEFAULT_HEAD_NUM_FILTERS, DEFAULT_HEAD_KERNEL_SIZES
  head = getattr(message, field_name)
  num_filters = tuple(head.num_filters) or DEFAULT_HEAD_NUM_FILTERS
  kernel_sizes = tuple(head.kernel_sizes) or DEFAULT_HEAD_KERNEL_SIZES
  _check_head(num_filters, kernel_sizes, f'{field}.{field_name}')
  return num_filters, kernel_sizes


def object_center_params_from_proto(proto):
  """Reads a ``CenterNet.ObjectCenterParams`` message.

  An unset ``classification_loss`` means the penalty-reduced logistic focal
  loss with alpha 2, beta 4 (what every CenterNet config uses).

  Args:
    proto: a ``center_net_pb2.CenterNet.ObjectCenterParams``.

  Returns:
    ObjectCenterParams.

  Raises:
    ConfigError: an unsupported option is set.
  """
  alpha, beta = 2.0, 4.0
  if proto.HasField('classification_loss'):
    kind = proto.classification_loss.WhichOneof('classification_loss')
    if kind is not None and kind != 'penalty_reduced_logistic_focal_loss':
      raise ConfigError(
          f'{_CENTER_FIELD}.classification_loss: only '
          f'penalty_reduced_logistic_focal_loss is supported for the center '
          f'heatmap, got {kind}.')
    if kind is not None:
      focal = proto.classification_loss.penalty_reduced_logistic_focal_loss
      alpha, beta = _decimal(focal.alpha), _decimal(focal.beta)
  if proto.use_labeled_classes:
    raise ConfigError(f'{_CENTER_FIELD}.use_labeled_classes: not supported '
                      '(needs groundtruth labeled classes); remove it.')
  if len(proto.keypoint_weights_for_center):
    raise ConfigError(f'{_CENTER_FIELD}.keypoint_weights_for_center: not '
                      'supported (no keypoint tasks); remove it.')
  num_filters, kernel_sizes = _head_params(proto, 'center_head_params',
                                           _CENTER_FIELD)
  return ObjectCenterParams(
      object_center_loss_weight=_decimal(proto.object_center_loss_weight),
      focal_loss_alpha=alpha,
      focal_loss_beta=beta,
      heatmap_bias_init=_decimal(proto.heatmap_bias_init),
      min_box_overlap_iou=_decimal(proto.min_box_overlap_iou),
      max_box_predictions=proto.max_box_predictions,
      peak_max_pool_kernel_size=proto.peak_max_pool_kernel_size,
      center_head_num_filters=num_filters,
      center_head_kernel_sizes=kernel_sizes)


def object_detection_params_from_proto(proto):
  """Reads a ``CenterNet.ObjectDetection`` message.

  Args:
    proto: a ``center_net_pb2.CenterNet.ObjectDetection``.

  Returns:
    ObjectDetectionParams.

  Raises:
    ConfigError: a localization loss other than L1 is set.
  """
  if proto.HasField('localization_loss'):
    kind = proto.localization_loss.WhichOneof('localization_loss')
    if kind is not None and kind != 'l1_localization_loss':
      raise ConfigError(
          f'{_DETECTION_FIELD}.localization_loss: only l1_localization_loss '
          f'is supported for CenterNet boxes, got {kind}.')
  scale_filters, scale_kernels = _head_params(proto, 'scale_head_params',
                                              _DETECTION_FIELD)
  offset_filters, offset_kernels = _head_params(proto, 'offset_head_params',
                                                _DETECTION_FIELD)
  return ObjectDetectionParams(
      task_loss_weight=_decimal(proto.task_loss_weight),
      offset_loss_weight=_decimal(proto.offset_loss_weight),
      scale_loss_weight=_decimal(proto.scale_loss_weight),
      scale_head_num_filters=scale_filters,
      scale_head_kernel_sizes=scale_kernels,
      offset_head_num_filters=offset_filters,
      offset_head_kernel_sizes=offset_kernels)
