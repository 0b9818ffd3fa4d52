"""CenterNet task parameters (frozen dataclasses), plain data.

Read from ``CenterNet.ObjectCenterParams`` / ``CenterNet.ObjectDetection``
messages and checked by ``builders/center_net_builder.py`` (which names the
config fields; these classes know no config).
"""

import dataclasses

DEFAULT_HEAD_NUM_FILTERS = (256,)
DEFAULT_HEAD_KERNEL_SIZES = (3,)


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
