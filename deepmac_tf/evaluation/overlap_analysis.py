"""Overlap analysis (Zhao et al., "Rethinking Mask Heads for Partially
Supervised Instance Segmentation", section 3; spec ``paper.md`` section 3).

The overlap of a groundtruth instance i is how much of its box other
objects cover::

  O_i = max over other instances j of area(box_i ∩ mask_j) / area(box_i)

(areas in pixels, boxes rasterized like COCO's, crowd regions count as
other objects but are never scored themselves). Crowded instances are where
a mask head that never saw masks of a class paints its neighbours too.

``overlap_ap_metrics`` scores mask AP per overlap bin with one pycocotools
run, using COCO's area-range machinery with the overlap in place of the
area: in bin (lo, hi] a groundtruth instance outside the bin is ignored
(detections matched to it neither help nor hurt), and a detection that
matches nothing counts as a false positive only in the bin of its own box
overlap with the image's groundtruth masks (the way COCO's "small" AP counts
unmatched detections by their own area). Metrics, per class group
(``UnseenClasses`` / ``SeenClasses`` with a seen / unseen split, else
``AllClasses``)::

  DetectionMasks_Overlap/<group>/mAP (overlap 0)          O = 0
  DetectionMasks_Overlap/<group>/mAP (overlap 0.1-0.2)    0.1 < O <= 0.2
  DetectionMasks_Overlap/<group>/mAP (overlapped)         O >= 0.3
  DetectionMasks_Overlap/<group>/num_instances (...)      instances per bin

mAP is COCO's (IoU .50:.95, 100 detections); -1 where a bin is empty.
"""

import numpy as np
from pycocotools import mask as mask_util

from deepmac_tf.evaluation import coco_metrics

PREFIX = 'DetectionMasks_Overlap'
OVERLAPPED_THRESHOLD = 0.3  # "Overlapped objects" (Zhao et al., Table 2).
BIN_EDGES = tuple(round(0.1 * i, 1) for i in range(11))
UNSEEN_GROUP = coco_metrics.UNSEEN
SEEN_GROUP = coco_metrics.SEEN
ALL_GROUP = 'AllClasses'
# A half-open bin (lo, hi] as COCO's closed range [lo + EPS, hi].
_EPS = 1e-9


def bins(edges=BIN_EDGES, overlapped_threshold=OVERLAPPED_THRESHOLD):
  """The overlap ranges scored: ``[(label, low, high)]``, closed ranges.

  'overlap 0' (O = 0), then 'overlap a-b' for a < O <= b per pair of edges,
  then 'overlapped' (O >= overlapped_threshold).
  """
  ranges = [('overlap 0', 0.0, 0.0)]
  for low, high in zip(edges[:-1], edges[1:]):
    ranges.append((f'overlap {low:g}-{high:g}', low + _EPS, high))
  ranges.append(('overlapped', overlapped_threshold, 1.0))
  return ranges


def box_rles(coco_boxes, height, width):
  """[N, 4] COCO boxes (x, y, width, height pixels) -> N RLEs."""
  boxes = np.asarray(coco_boxes, np.float64).reshape([-1, 4])
  if boxes.shape[0] == 0:
    return []
  return mask_util.frPyObjects(boxes, int(height), int(width))


def box_coverage(boxes, masks, own=None):
  """Largest fraction of each box covered by one of the masks.

  Args:
    boxes: list of K box RLEs (``box_rles``).
    masks: list of N mask RLEs of the same image.
    own: optional [K] index of each box's own mask in ``masks`` (-1: none);
      a box never counts its own mask.

  Returns:
    float64 [K]: max_j area(box_k ∩ mask_j) / area(box_k); 0 without other
    masks or for an empty box.
  """
  count = len(boxes)
  if count == 0 or not masks:
    return np.zeros([count], np.float64)
  # iou with iscrowd=1 on the second argument is intersection / area(first).
  covered = np.asarray(mask_util.iou(boxes, masks, [1] * len(masks)),
                       np.float64).reshape([count, len(masks)])
  if own is not None:
    own = np.asarray(own, np.int64).reshape([-1])
    rows = np.nonzero(own >= 0)[0]
    covered[rows, own[rows]] = 0.0
  return covered.max(axis=1)


def instance_overlaps(coco_boxes, masks, height, width):
  """O_i of every instance of one image.

  Args:
    coco_boxes: [N, 4] x, y, width, height in pixels.
    masks: N RLEs (or a [N, H, W] binary array).
    height, width: image size.

  Returns:
    float64 [N].
  """
  if not isinstance(masks, (list, tuple)):
    masks = _encode(masks)
  boxes = box_rles(coco_boxes, height, width)
  return box_coverage(boxes, list(masks), own=np.arange(len(boxes)))


def _encode(masks):
  masks = np.asarray(masks)
  if masks.shape[0] == 0:
    return []
  return mask_util.encode(np.asfortranarray(
      (masks > 0.5).astype(np.uint8).transpose(1, 2, 0)))


def _set_overlaps_as_areas(evaluator):
  """Replaces every groundtruth and detection ``area`` by its overlap (see
  the module doc); returns {annotation id: O} of the groundtruth."""
  ground, found = evaluator.cocoGt, evaluator.cocoDt
  overlaps = {}
  for image_id, image in ground.imgs.items():
    height, width = image['height'], image['width']
    gts = ground.loadAnns(ground.getAnnIds(imgIds=[image_id]))
    masks = [ground.annToRLE(g) for g in gts]
    values = box_coverage(box_rles([g['bbox'] for g in gts], height, width),
                          masks, own=np.arange(len(gts)))
    for g, value in zip(gts, values):
      g['area'] = float(value)
      overlaps[g['id']] = float(value)
    dts = found.loadAnns(found.getAnnIds(imgIds=[image_id]))
    values = box_coverage(box_rles([d['bbox'] for d in dts], height, width),
                          masks)
    for d, value in zip(dts, values):
      d['area'] = float(value)
  return overlaps


def class_groups(categories, seen_class_ids):
  """{group name: [category ids]}: unseen and seen with a split, else all."""
  all_ids = sorted(int(c['id']) for c in categories)
  seen = set(int(i) for i in seen_class_ids or ()) & set(all_ids)
  if seen and seen != set(all_ids):
    return {UNSEEN_GROUP: [i for i in all_ids if i not in seen],
            SEEN_GROUP: sorted(seen)}
  return {ALL_GROUP: all_ids}


def overlap_ap_metrics(groundtruth_dataset, detection_results,
                       seen_class_ids=(), ranges=None):
  """Mask AP per overlap bin (see the module doc).

  Args:
    groundtruth_dataset: COCO groundtruth dict with masks
      (``CocoAccumulator.groundtruth_dataset()``).
    detection_results: COCO results with masks.
    seen_class_ids: the seen classes (for the groups).
    ranges: ``bins()`` (default).

  Returns:
    ``{metric name: float}``.
  """
  ranges = ranges or bins()

  def prepare(evaluator):
    prepare.overlaps = _set_overlaps_as_areas(evaluator)
    evaluator.params.areaRng = [[low, high] for _, low, high in ranges]
    evaluator.params.areaRngLbl = [label for label, _, _ in ranges]

  prepare.overlaps = {}
  evaluator = coco_metrics.run_cocoeval(
      groundtruth_dataset, detection_results, 'segm', prepare=prepare)
  groups = class_groups(groundtruth_dataset['categories'], seen_class_ids)
  metrics = {}
  classes = {a['id']: (a['category_id'], bool(a.get('iscrowd')))
             for a in groundtruth_dataset['annotations']}
  for group, ids in groups.items():
    members = set(ids)
    values = np.asarray([o for i, o in prepare.overlaps.items()
                         if classes[i][0] in members and not classes[i][1]],
                        np.float64)
    for index, (label, low, high) in enumerate(ranges):
      metrics[f'{PREFIX}/{group}/mAP ({label})'] = _bin_ap(
          evaluator, ids, index)
      metrics[f'{PREFIX}/{group}/num_instances ({label})'] = float(
          np.sum((values >= low) & (values <= high)))
  return metrics


def _bin_ap(evaluator, cat_ids, area_index):
  """COCO AP (IoU .50:.95, max detections 100) over ``cat_ids`` in one
  area range, or -1."""
  if evaluator is None or not evaluator.eval:
    return -1.0
  params = evaluator.params
  columns = [i for i, c in enumerate(params.catIds) if c in set(cat_ids)]
  if not columns:
    return -1.0
  precision = evaluator.eval['precision'][:, :, columns, area_index, -1]
  valid = precision[precision > -1]
  return float(np.mean(valid)) if valid.size else -1.0


def coco_evaluator_metrics(evaluator, seen_class_ids=()):
  """``overlap_ap_metrics`` of what a ``coco_metrics.CocoEvaluator``
  collected ({} unless groundtruth and detections both carry masks)."""
  accumulator = evaluator.accumulator
  if not (accumulator.has_groundtruth_masks and
          accumulator.has_detection_masks):
    return {}
  return overlap_ap_metrics(accumulator.groundtruth_dataset(),
                            accumulator.detection_results(), seen_class_ids)
