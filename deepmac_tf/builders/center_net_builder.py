"""Readers of the CenterNet task messages: ``CenterNet.ObjectCenterParams``
and ``CenterNet.ObjectDetection`` -> ``center_net_params`` dataclasses.

They apply the OD API's defaults: a head whose ``*_head_params`` is unset
gets ``num_filters=[256]``, ``kernel_sizes=[3]``. Options this
implementation does not support raise ``ConfigError`` naming the field
(never a silent ignore).
"""

from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import center_net_params as params_lib

_CENTER_FIELD = 'model.center_net.object_center_params'
_DETECTION_FIELD = 'model.center_net.object_detection_task'


def check_head(num_filters, kernel_sizes, field):
  """Raises ConfigError naming ``field`` unless the hidden convs of a
  prediction head are well formed."""
  if len(num_filters) != len(kernel_sizes):
    raise ConfigError(
        f'{field}: num_filters and kernel_sizes must have the same length, '
        f'got {list(num_filters)} and {list(kernel_sizes)}.')
  if any(n < 1 for n in num_filters) or any(k < 1 for k in kernel_sizes):
    raise ConfigError(f'{field}: num_filters and kernel_sizes must be >= 1, '
                      f'got {list(num_filters)} and {list(kernel_sizes)}.')


def validate_object_center_params(p):
  """The one check of ``ObjectCenterParams`` (ConfigError naming the field)."""
  check_head(p.center_head_num_filters, p.center_head_kernel_sizes,
             f'{_CENTER_FIELD}.center_head_params')
  if p.max_box_predictions < 1:
    raise ConfigError(f'{_CENTER_FIELD}.max_box_predictions: must be >= 1, '
                      f'got {p.max_box_predictions}.')
  if p.peak_max_pool_kernel_size < 1:
    raise ConfigError(f'{_CENTER_FIELD}.peak_max_pool_kernel_size: must be '
                      f'>= 1, got {p.peak_max_pool_kernel_size}.')
  if not 0.0 < p.min_box_overlap_iou < 1.0:
    raise ConfigError(f'{_CENTER_FIELD}.min_box_overlap_iou: must be in '
                      f'(0, 1), got {p.min_box_overlap_iou}.')


def validate_object_detection_params(p):
  """The one check of ``ObjectDetectionParams`` (ConfigError naming the
  field)."""
  check_head(p.scale_head_num_filters, p.scale_head_kernel_sizes,
             f'{_DETECTION_FIELD}.scale_head_params')
  check_head(p.offset_head_num_filters, p.offset_head_kernel_sizes,
             f'{_DETECTION_FIELD}.offset_head_params')


def _decimal(value):
  """A proto float32 as the decimal a config writes (0.1, not 0.100000001)."""
  return float(f'{value:.7g}')


def _head_params(message, field_name, field):
  """(num_filters, kernel_sizes) of a PredictionHeadParams, with defaults."""
  if not message.HasField(field_name):
    return params_lib.DEFAULT_HEAD_NUM_FILTERS, params_lib.DEFAULT_HEAD_KERNEL_SIZES
  head = getattr(message, field_name)
  num_filters = tuple(head.num_filters) or params_lib.DEFAULT_HEAD_NUM_FILTERS
  kernel_sizes = tuple(head.kernel_sizes) or params_lib.DEFAULT_HEAD_KERNEL_SIZES
  check_head(num_filters, kernel_sizes, f'{field}.{field_name}')
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
  params = params_lib.ObjectCenterParams(
      object_center_loss_weight=_decimal(proto.object_center_loss_weight),
      focal_loss_alpha=alpha,
      focal_loss_beta=beta,
      heatmap_bias_init=_decimal(proto.heatmap_bias_init),
      min_box_overlap_iou=_decimal(proto.min_box_overlap_iou),
      max_box_predictions=proto.max_box_predictions,
      peak_max_pool_kernel_size=proto.peak_max_pool_kernel_size,
      center_head_num_filters=num_filters,
      center_head_kernel_sizes=kernel_sizes)
  validate_object_center_params(params)
  return params


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
  params = params_lib.ObjectDetectionParams(
      task_loss_weight=_decimal(proto.task_loss_weight),
      offset_loss_weight=_decimal(proto.offset_loss_weight),
      scale_loss_weight=_decimal(proto.scale_loss_weight),
      scale_head_num_filters=scale_filters,
      scale_head_kernel_sizes=scale_kernels,
      offset_head_num_filters=offset_filters,
      offset_head_kernel_sizes=offset_kernels)
  validate_object_detection_params(params)
  return params
