"""What an evaluation needs from the pipeline config.

Categories (from the eval input reader's label map), the seen classes of
partial supervision, the metrics sets, and the default metric for keeping
the best checkpoint.
"""

from deepmac_tf.config import config_util
from deepmac_tf.data import label_map_util
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.evaluation import coco_metrics
from deepmac_tf.evaluation import miou

BOXES_MAP = coco_metrics.BOXES + '_Precision/mAP'
MASKS_MAP = coco_metrics.MASKS + '_Precision/mAP'
UNSEEN_MASKS_MAP = coco_metrics.MASKS + '_' + coco_metrics.UNSEEN + '/mAP'
SEEN_MASKS_MAP = coco_metrics.MASKS + '_' + coco_metrics.SEEN + '/mAP'
_ALLOWED = 'allowed_masked_classes_ids'


def _model_message(configs):
  try:
    return config_util.get_model_message(configs['model'])
  except (ConfigError, KeyError, ValueError):
    return None, None


def num_classes(configs):
  """``model.<arch>.num_classes`` (0 when unknown)."""
  _, message = _model_message(configs)
  return int(getattr(message, 'num_classes', 0) or 0)


def deepmac_config(configs):
  """The ``deepmac_mask_estimation`` message, or None."""
  arch, message = _model_message(configs)
  if arch == 'center_net' and message.HasField('deepmac_mask_estimation'):
    return message.deepmac_mask_estimation
  return None


def seen_class_ids(configs):
  """1-based class ids allowed masks in training (empty: all classes)."""
  _, message = _model_message(configs)
  if message is None:
    return ()
  deepmac = deepmac_config(configs)
  if deepmac is not None:
    return tuple(int(i) for i in deepmac.allowed_masked_classes_ids)
  # Other architectures (Mask R-CNN): the field on the model message or on
  # one of its set sub-messages (e.g. its mask-head block).
  candidates = [message] + [value for field, value in message.ListFields()
                            if field.message_type is not None and
                            not field.is_repeated]
  for candidate in candidates:
    if _ALLOWED in candidate.DESCRIPTOR.fields_by_name:
      ids = tuple(int(i) for i in getattr(candidate, _ALLOWED))
      if ids:
        return ids
  return ()


def is_partially_supervised(configs):
  """True when some classes train no masks (a seen / unseen split exists)."""
  seen = set(seen_class_ids(configs))
  total = num_classes(configs)
  return bool(seen) and (total == 0 or not
                         set(range(1, total + 1)) <= seen)


def is_detector_free(configs):
  deepmac = deepmac_config(configs)
  return bool(deepmac is not None and deepmac.detector_free)


def predicts_masks(configs):
  """Whether the configured model outputs instance masks."""
  if deepmac_config(configs) is not None:
    return True
  arch, message = _model_message(configs)
  return arch == 'faster_rcnn' and message.number_of_stages == 3


def metrics_sets(configs):
  """``eval_config.metrics_set``, checked.

  Empty means ``coco_detection_metrics`` plus ``coco_mask_metrics`` for a
  model that predicts masks (the OD API's default is detection only; a mask
  model evaluated without mask metrics is rarely what anyone wants).

  Raises:
    ConfigError: an unknown set, naming ``eval_config.metrics_set``.
  """
  eval_config = configs.get('eval_config')
  requested = tuple(eval_config.metrics_set) if eval_config else ()
  if requested:
    return coco_metrics.check_metrics_set(requested)
  if predicts_masks(configs):
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
    return [{'id': i, 'name': str(i)}
            for i in range(1, num_classes(configs) + 1)]
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
  partial = is_partially_supervised(configs)
  if is_detector_free(configs):
    return miou.MIOU_UNSEEN if partial else miou.MIOU
  try:
    sets = metrics_sets(configs)
  except ConfigError:
    sets = coco_metrics.METRICS_SETS
  if not predicts_masks(configs) or coco_metrics.MASK_METRICS not in sets:
    return BOXES_MAP
  return UNSEEN_MASKS_MAP if partial else MASKS_MAP
