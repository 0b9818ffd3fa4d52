"""COCO box and mask metrics with pycocotools, under the OD API's names.

For each IoU type ('bbox' -> prefix ``DetectionBoxes``, 'segm' ->
``DetectionMasks``) one ``COCOeval`` runs over all categories; every number
below is read from its accumulated ``precision`` [T, R, K, A, M] and
``recall`` [T, K, A, M] arrays, exactly as ``COCOeval.summarize`` does:

* ``<P>_Precision/mAP``, ``/mAP@.50IOU``, ``/mAP@.75IOU``, ``/mAP (small)``,
  ``/mAP (medium)``, ``/mAP (large)``, ``<P>_Recall/AR@1``, ``/AR@10``,
  ``/AR@100``, ``/AR@100 (small)``, ``/AR@100 (medium)``, ``/AR@100 (large)``
  (= ``COCOeval.stats``).
* ``<P>_PerformanceByCategory/mAP/<name>`` (``include_metrics_per_category``);
  with ``all_metrics_per_category`` too, the 12 numbers of each category as
  ``<P>_Precision mAP ByCategory/<name>`` ... ``<P>_Recall AR@100 (large)
  ByCategory/<name>`` (the OD API's names).
* ``<P>_PerformanceBySuperCategory/<key>`` for ``super_categories``
  ``{key: 'name1,name2,...'}``: the mean AP of the listed categories.
* Masks only, partially supervised split: ``DetectionMasks_SeenClasses/mAP``
  (``/mAP@.50IOU``, ``/mAP@.75IOU``, ``/mAP (small|medium|large)``) over the
  classes allowed masks in training, ``DetectionMasks_UnseenClasses/...``
  over the rest.

Restricting the category axis of one evaluation gives exactly what a
``COCOeval`` with ``params.catIds`` set to the subset gives (COCO matches
per image and category, independently), without evaluating twice; the
tests check the equality. A category without groundtruth has no AP (-1 in
COCO) and is left out of every mean, so a super-category's value equals the
restricted mAP; this differs from the OD API, which divides the sum of the
per-category values (-1 included) by the list length. A mean over no
category at all is -1, COCO's "undefined".
"""

import contextlib
import copy
import io

import numpy as np
from absl import logging
from pycocotools import coco as coco_lib
from pycocotools import cocoeval as cocoeval_lib

from deepmac_tf.errors import ConfigError

BOXES = 'DetectionBoxes'
MASKS = 'DetectionMasks'
IOU_TYPES = {BOXES: 'bbox', MASKS: 'segm'}
DETECTION_METRICS = 'coco_detection_metrics'
MASK_METRICS = 'coco_mask_metrics'
METRICS_SETS = (DETECTION_METRICS, MASK_METRICS)
SEEN = 'SeenClasses'
UNSEEN = 'UnseenClasses'

# (name, is_precision, iou threshold or None, area range, max detections):
# the order of COCOeval.stats.
_STATS = (
    ('Precision/mAP', True, None, 'all', 100),
    ('Precision/mAP@.50IOU', True, 0.5, 'all', 100),
    ('Precision/mAP@.75IOU', True, 0.75, 'all', 100),
    ('Precision/mAP (small)', True, None, 'small', 100),
    ('Precision/mAP (medium)', True, None, 'medium', 100),
    ('Precision/mAP (large)', True, None, 'large', 100),
    ('Recall/AR@1', False, None, 'all', 1),
    ('Recall/AR@10', False, None, 'all', 10),
    ('Recall/AR@100', False, None, 'all', 100),
    ('Recall/AR@100 (small)', False, None, 'small', 100),
    ('Recall/AR@100 (medium)', False, None, 'medium', 100),
    ('Recall/AR@100 (large)', False, None, 'large', 100),
)
STAT_NAMES = tuple(s[0] for s in _STATS)
# The six AP numbers of the seen / unseen split, named without 'Precision/'.
SPLIT_NAMES = tuple(s[0].split('/', 1)[1] for s in _STATS[:6])


def check_metrics_set(metrics_set):
  """Returns the metrics sets as a tuple; raises ConfigError on unknown ones."""
  metrics_set = tuple(metrics_set)
  unknown = [m for m in metrics_set if m not in METRICS_SETS]
  if unknown:
    raise ConfigError(f'eval_config.metrics_set: {unknown} not supported; '
                      f'use {list(METRICS_SETS)}.')
  return metrics_set


def parse_super_categories(super_categories, categories):
  """Maps ``{key: 'name1,name2'}`` to ``{key: [category ids]}``.

  Args:
    super_categories: mapping from a key to comma-separated category names.
    categories: list of ``{'id', 'name'}`` (names as in the category index).

  Raises:
    ConfigError: a name that is not a category, naming the key.
  """
  by_name = {c['name']: c['id'] for c in categories}
  result = {}
  for key in sorted(super_categories):
    names = [n.strip() for n in super_categories[key].split(',') if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
      raise ConfigError(
          f'eval_config.super_categories[{key!r}]: {unknown} are not names '
          f'in the label map (known: {sorted(by_name)}).')
    result[key] = [by_name[n] for n in names]
  return result


def run_cocoeval(groundtruth_dataset, detection_results, iou_type,
                 cat_ids=None, verbose=False, prepare=None):
  """Runs pycocotools' COCOeval (evaluate + accumulate + summarize).

  Args:
    groundtruth_dataset: COCO groundtruth dict (images, annotations,
      categories).
    detection_results: list of COCO result dicts; for 'segm' their 'bbox'
      is dropped (areas then come from the masks, as for the OD API's mask
      export), for 'bbox' their 'segmentation'.
    iou_type: 'bbox' or 'segm'.
    cat_ids: optional category ids to restrict to (``params.catIds``).
    verbose: let pycocotools print its progress and summary table.
    prepare: optional ``prepare(evaluator)`` called before ``evaluate``
      (e.g. to score other area ranges, ``overlap_analysis``).

  Returns:
    The ``COCOeval`` (``.eval`` and ``.stats`` filled), or None when the
    dataset has no image.
  """
  if not groundtruth_dataset['images']:
    return None
  drop = 'bbox' if iou_type == 'segm' else 'segmentation'
  results = [{k: v for k, v in r.items() if k != drop}
             for r in detection_results]
  out = io.StringIO()
  with contextlib.ExitStack() as stack:
    if not verbose:
      stack.enter_context(contextlib.redirect_stdout(out))
    groundtruth = coco_lib.COCO()
    groundtruth.dataset = copy.deepcopy(groundtruth_dataset)
    groundtruth.createIndex()
    if results:
      detections = groundtruth.loadRes(results)
    else:  # loadRes cannot take an empty list.
      detections = coco_lib.COCO()
      detections.dataset = {'images': groundtruth.dataset['images'],
                            'categories': groundtruth.dataset['categories'],
                            'annotations': []}
      detections.createIndex()
    evaluator = cocoeval_lib.COCOeval(groundtruth, detections, iou_type)
    if cat_ids is not None:
      evaluator.params.catIds = sorted(int(c) for c in cat_ids)
    if prepare is not None:
      prepare(evaluator)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return evaluator


def _mean_valid(values):
  valid = values[values > -1]
  return float(np.mean(valid)) if valid.size else -1.0


def summarize(evaluator, cat_ids=None):
  """The 12 ``COCOeval.stats`` numbers over a subset of the categories.

  Args:
    evaluator: an accumulated ``COCOeval`` (None: everything -1).
    cat_ids: category ids to average over (None: all evaluated ones).

  Returns:
    float64 [12] in ``STAT_NAMES`` order; -1 where no category of the
    subset has groundtruth.
  """
  if evaluator is None or not evaluator.eval:
    return np.full([len(_STATS)], -1.0)
  params = evaluator.params
  if cat_ids is None:
    columns = list(range(len(params.catIds)))
  else:
    wanted = {int(c) for c in cat_ids}
    columns = [i for i, c in enumerate(params.catIds) if c in wanted]
  if not columns:
    return np.full([len(_STATS)], -1.0)
  precision = evaluator.eval['precision']  # [T, R, K, A, M]
  recall = evaluator.eval['recall']  # [T, K, A, M]
  stats = []
  for _, is_precision, iou, area, max_dets in _STATS:
    a = params.areaRngLbl.index(area)
    m = params.maxDets.index(max_dets)
    values = (precision[:, :, columns, a, m] if is_precision
              else recall[:, columns, a, m])
    if iou is not None:
      values = values[np.where(iou == params.iouThrs)[0]]
    stats.append(_mean_valid(values))
  return np.asarray(stats)


def category_ap(evaluator, cat_id):
  """AP (IoU .50:.95, all areas, 100 detections) of one category, or -1."""
  return float(summarize(evaluator, [cat_id])[0])


def compute_metrics(groundtruth_dataset, detection_results, prefix,
                    include_metrics_per_category=False, super_categories=None,
                    seen_class_ids=None, verbose=False,
                    all_metrics_per_category=False):
  """All metrics of one IoU type, keyed by their OD API names.

  Args:
    groundtruth_dataset / detection_results: see ``run_cocoeval``.
    prefix: ``BOXES`` or ``MASKS``.
    include_metrics_per_category: add ``<P>_PerformanceByCategory/mAP/<n>``.
    super_categories: optional ``{key: [category ids]}``.
    seen_class_ids: optional ids of the seen classes; when they are a
      non-empty proper subset of the categories (and prefix is ``MASKS``),
      the seen / unseen split is added.
    verbose: let pycocotools print.
    all_metrics_per_category: with include_metrics_per_category, add every
      ``STAT_NAMES`` number of each category (``<P>_Precision mAP
      ByCategory/<n>``, ...), as the OD API's COCO evaluators do.

  Returns:
    dict of Python floats.
  """
  evaluator = run_cocoeval(groundtruth_dataset, detection_results,
                           IOU_TYPES[prefix], verbose=verbose)
  categories = groundtruth_dataset['categories']
  metrics = {f'{prefix}_{n}': float(v)
             for n, v in zip(STAT_NAMES, summarize(evaluator))}
  if include_metrics_per_category:
    for category in categories:
      metrics[f'{prefix}_PerformanceByCategory/mAP/{category["name"]}'] = (
          category_ap(evaluator, category['id']))
      if all_metrics_per_category:
        stats = summarize(evaluator, [category['id']])
        for name, value in zip(STAT_NAMES, stats):
          metrics[f'{prefix}_{name.replace("/", " ", 1)} ByCategory/'
                  f'{category["name"]}'] = float(value)
  for key, ids in (super_categories or {}).items():
    metrics[f'{prefix}_PerformanceBySuperCategory/{key}'] = float(
        summarize(evaluator, ids)[0])
  all_ids = {c['id'] for c in categories}
  seen = set(seen_class_ids or ()) & all_ids
  if prefix == MASKS and seen and seen != all_ids:
    for split, ids in ((SEEN, seen), (UNSEEN, all_ids - seen)):
      stats = summarize(evaluator, ids)
      for name, value in zip(SPLIT_NAMES, stats):
        metrics[f'{prefix}_{split}/{name}'] = float(value)
  return metrics


def format_summary(metrics, title='Evaluation'):
  """A readable multi-line table of ``metrics`` (name: value)."""
  if not metrics:
    return f'{title}: no metrics.'
  width = max(len(k) for k in metrics)
  lines = [f'{title}:']
  for key in sorted(metrics):
    value = metrics[key]
    text = f'{value:.4f}' if isinstance(value, float) else str(value)
    lines.append(f'  {key:<{width}}  {text}')
  return '\n'.join(lines)


class CocoEvaluator:
  """COCO box / mask metrics of a dataset fed image by image.

  Usage::

    evaluator = CocoEvaluator(categories, seen_class_ids=[1, 2, 3])
    for each image:
      evaluator.add_groundtruth(image_id, boxes, classes, masks, is_crowd)
      evaluator.add_detections(image_id, boxes, scores, classes, masks)
    metrics = evaluator.evaluate()

  Shapes and conventions: see ``coco_accumulator.CocoAccumulator``.
  """

  def __init__(self, categories, metrics_set=METRICS_SETS,
               include_metrics_per_category=False, super_categories=None,
               seen_class_ids=(), verbose=False,
               all_metrics_per_category=False):
    """Args:
      categories: list of ``{'id': 1-based int, 'name': str}``.
      metrics_set: subset of ``METRICS_SETS``; mask metrics are computed
        only when both groundtruth and detections carry masks.
      include_metrics_per_category: per-category AP.
      super_categories: ``{key: 'name1,name2,...'}`` (eval_config's).
      seen_class_ids: 1-based ids allowed masks in training; empty = no
        seen / unseen split.
      verbose: let pycocotools print its tables.
      all_metrics_per_category: with include_metrics_per_category, every
        COCO number of each category (``compute_metrics``).

    Raises:
      ConfigError: unknown metrics set or super-category names.
    """
    from deepmac_tf.evaluation import coco_accumulator  # pylint: disable=g-import-not-at-top
    self._accumulator = coco_accumulator.CocoAccumulator(categories)
    self._metrics_set = check_metrics_set(metrics_set)
    self._per_category = include_metrics_per_category
    self._all_per_category = all_metrics_per_category
    self._super_categories = parse_super_categories(super_categories or {},
                                                    categories)
    self._seen = tuple(int(i) for i in seen_class_ids)
    self._verbose = verbose

  @property
  def num_images(self):
    return self._accumulator.num_images

  @property
  def accumulator(self):
    """The ``CocoAccumulator`` holding what was added."""
    return self._accumulator

  def add_groundtruth(self, image_id, boxes, classes, masks=None,
                      is_crowd=None, area=None, image_size=None):
    """See ``CocoAccumulator.add_groundtruth``; False for a repeated id."""
    return self._accumulator.add_groundtruth(image_id, boxes, classes, masks,
                                      is_crowd, area, image_size)

  def add_detections(self, image_id, boxes, scores, classes, masks=None):
    """See ``CocoAccumulator.add_detections``."""
    self._accumulator.add_detections(image_id, boxes, scores, classes, masks)

  def evaluate(self):
    """Runs COCOeval; returns ``{metric name: float}``."""
    acc = self._accumulator
    groundtruth = acc.groundtruth_dataset()
    detections = acc.detection_results()
    metrics = {}
    options = dict(include_metrics_per_category=self._per_category,
                   all_metrics_per_category=self._all_per_category,
                   super_categories=self._super_categories,
                   verbose=self._verbose)
    if DETECTION_METRICS in self._metrics_set:
      metrics.update(compute_metrics(groundtruth, detections, BOXES,
                                     **options))
    if MASK_METRICS in self._metrics_set:
      if acc.has_groundtruth_masks is False or acc.has_detection_masks is False:
        logging.warning('coco_mask_metrics: skipped, the %s has no masks.',
                        'groundtruth' if acc.has_groundtruth_masks is False
                        else 'model output')
      else:
        metrics.update(compute_metrics(groundtruth, detections, MASKS,
                                       seen_class_ids=self._seen, **options))
    return metrics
