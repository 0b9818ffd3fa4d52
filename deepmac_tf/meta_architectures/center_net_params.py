"""CenterNet task parameters (frozen dataclasses), plain data.

Read from ``CenterNet.ObjectCenterParams`` / ``CenterNet.ObjectDetection``
messages by ``builders/center_net_builder.py``.
"""

import dataclasses

from deepmac_tf.errors import ConfigError

DEFAULT_HEAD_NUM_FILTERS = (256,)
DEFAULT_HEAD_KERNEL_SIZES = (3,)

CENTER_FIELD = 'center_net.object_center_params'
DETECTION_FIELD = 'center_net.object_detection_task'


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
    check_head(self.center_head_num_filters, self.center_head_kernel_sizes,
                f'{CENTER_FIELD}.center_head_params')
    if self.max_box_predictions < 1:
      raise ConfigError(f'{CENTER_FIELD}.max_box_predictions: must be >= 1, '
                        f'got {self.max_box_predictions}.')
    if self.peak_max_pool_kernel_size < 1:
      raise ConfigError(f'{CENTER_FIELD}.peak_max_pool_kernel_size: must be '
                        f'>= 1, got {self.peak_max_pool_kernel_size}.')
    if not 0.0 < self.min_box_overlap_iou < 1.0:
      raise ConfigError(f'{CENTER_FIELD}.min_box_overlap_iou: must be in '
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
    check_head(self.scale_head_num_filters, self.scale_head_kernel_sizes,
                f'{DETECTION_FIELD}.scale_head_params')
    check_head(self.offset_head_num_filters, self.offset_head_kernel_sizes,
                f'{DETECTION_FIELD}.offset_head_params')


def check_head(num_filters, kernel_sizes, field):
  if len(num_filters) != len(kernel_sizes):
    raise ConfigError(
        f'{field}: num_filters and kernel_sizes must have the same length, '
        f'got {list(num_filters)} and {list(kernel_sizes)}.')
  if any(n < 1 for n in num_filters) or any(k < 1 for k in kernel_sizes):
    raise ConfigError(f'{field}: num_filters and kernel_sizes must be >= 1, '
                      f'got {list(num_filters)} and {list(kernel_sizes)}.')
