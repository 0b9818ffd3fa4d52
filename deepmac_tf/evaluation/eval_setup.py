"""What an evaluation needs from the pipeline config.

Categories (from the eval input reader's label map), the seen classes of
partial supervision, the metrics sets, and the default metric for keeping
the best checkpoint.
"""

from deepmac_tf.config import model_spec
from deepmac_tf.data import label_map_util
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.evaluation import coco_metrics
from deepmac_tf.evaluation import miou

BOXES_MAP = coco_metrics.BOXES + '_Precision/mAP'
MASKS_MAP = coco_metrics.MASKS + '_Precision/mAP'
UNSEEN_MASKS_MAP = coco_metrics.MASKS + '_' + coco_metrics.UNSEEN + '/mAP'
SEEN_MASKS_MAP = coco_metrics.MASKS + '_' + coco_metrics.SEEN + '/mAP'


def metrics_sets(configs):
  """``eval_config.metrics_set``, checked.

  Empty means ``coco_detection_metrics`` plus ``coco_mask_metrics`` for a
  model that predicts masks (the OD API's default is detection only; a mask
  model evaluated without mask metrics is rarely what anyone wants).

  Raises:
    ConfigError: an unknown set, naming ``eval_config.metrics_set``, a
      keypoint ``parameterized_metric`` / ``keypoint_edge``, or a field of
      ``faster_rcnn_options.ONLY_DEFAULT`` with another value.
  """
  eval_config = configs.get('eval_config')
  for field in ('parameterized_metric', 'keypoint_edge'):
    if eval_config is not None and getattr(eval_config, field):
      raise ConfigError(f'eval_config.{field}: supported by the OD API (COCO '
                        'keypoint metrics), not by deepmac_tf (keypoints are '
                        'out of scope); remove it.')
  if eval_config is not None:
    # Fields with no effect here (one log line each) or that must keep a
    # value (ConfigError). Imported here: it pulls in the model builders.
    from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
    faster_rcnn_options.check_fields(eval_config, 'eval_config')
  requested = tuple(eval_config.metrics_set) if eval_config else ()
  if requested:
    return coco_metrics.check_metrics_set(requested)
  if model_spec.from_configs(configs).predicts_masks:
    return coco_metrics.METRICS_SETS
  return (coco_metrics.DETECTION_METRICS,)


def categories(configs, eval_input_index=0):
  """``[{'id', 'name'}]`` from the eval input reader's label map.

  Without a label map, classes 1..num_classes named by their id.

  Raises:
    ConfigError: an unreadable label map, naming the field.
  """
  inputs = configs.get('eval_input_configs') or []
  path = ''
  if eval_input_index < len(inputs):
    path = inputs[eval_input_index].label_map_path
  if not path:
    num_classes = model_spec.from_configs(configs).num_classes
    return [{'id': i, 'name': str(i)} for i in range(1, num_classes + 1)]
  try:
    index = label_map_util.create_category_index(path)
  except (LabelMapError, OSError) as e:
    raise ConfigError(f'eval_input_reader[{eval_input_index}].label_map_path: '
                      f'{e}') from None
  return [{'id': i, 'name': index[i]['name']} for i in sorted(index)]


def super_categories(configs):
  """``eval_config.super_categories`` as a plain dict."""
  eval_config = configs.get('eval_config')
  return dict(eval_config.super_categories) if eval_config else {}


def default_best_metric(configs):
  """The metric that picks the best checkpoint (higher is better).

  * detector-free Deep-MAC: ``DetectorFreeMasks/mIoU_unseen`` when some
    classes train no masks, else ``DetectorFreeMasks/mIoU``;
  * a mask model trained on masks of some classes only:
    ``DetectionMasks_UnseenClasses/mAP``;
  * other mask models: ``DetectionMasks_Precision/mAP``;
  * box-only models (or mask metrics not requested):
    ``DetectionBoxes_Precision/mAP``.
  """
  spec = model_spec.from_configs(configs)
  partial = spec.is_partially_supervised
  if spec.detector_free:
    return miou.MIOU_UNSEEN if partial else miou.MIOU
  try:
    sets = metrics_sets(configs)
  except ConfigError:
    sets = coco_metrics.METRICS_SETS
  if not spec.predicts_masks or coco_metrics.MASK_METRICS not in sets:
    return BOXES_MAP
  return UNSEEN_MASKS_MAP if partial else MASKS_MAP
