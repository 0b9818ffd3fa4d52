"""Where masks predicted at the groundtruth boxes go wrong: mask IoU per
overlap bin and the false-positive pixel attribution of Zhao et al.'s
Figure 3 (spec ``paper.md`` section 3), for every model that segments given
boxes (Deep-MAC, Deep-MARC, detector-free models).

For each groundtruth instance i (not crowd), with its predicted mask P_i and
groundtruth mask G_i pasted into the image, the false-positive pixels
P_i \\ G_i are attributed to what truly lies under them:

* ``seen_objects``: another instance of a seen class (one with mask
  supervision) covers the pixel;
* ``unseen_objects``: else, another instance of an unseen class covers it;
* ``background``: no other instance covers it.

Metrics, per class group (``UnseenClasses`` / ``SeenClasses`` with a seen /
unseen split, else ``AllClasses``; -1 where undefined)::

  DetectionMasks_FalsePositives/<group>/background_fraction
  DetectionMasks_FalsePositives/<group>/seen_objects_fraction
  DetectionMasks_FalsePositives/<group>/unseen_objects_fraction
  DetectionMasks_FalsePositives/<group>/fp_pixels_per_instance
  DetectionMasks_Overlap/<group>/mIoU (<bin>)   IoU inside the box, as
                                                 ``miou.instance_ious``

Fractions are shares of all false-positive pixels of the group's instances
(they add up to 1). Bins are ``overlap_analysis.bins()``.
"""

import numpy as np

from deepmac_tf.errors import DataError
from deepmac_tf.evaluation import miou
from deepmac_tf.evaluation import overlap_analysis

FP_PREFIX = 'DetectionMasks_FalsePositives'
KINDS = ('background', 'seen_objects', 'unseen_objects')


def attribute_false_positives(predicted_masks, groundtruth_masks, classes,
                              seen_class_ids):
  """False-positive pixels of each instance's mask, by what lies under them.

  Args:
    predicted_masks: [N, H, W] masks predicted for the N instances (> 0.5
      is foreground).
    groundtruth_masks: [N, H, W] groundtruth masks of the same instances
      (all instances of the image: the others are what FP pixels land on).
    classes: [N] 1-based class ids.
    seen_class_ids: ids of the seen classes.

  Returns:
    int64 [N, 3]: FP pixel counts on background, seen-class objects and
    unseen-class objects (``KINDS`` order).
  """
  predicted = np.asarray(predicted_masks) > 0.5
  groundtruth = np.asarray(groundtruth_masks) > 0.5
  if predicted.shape != groundtruth.shape or predicted.ndim != 3:
    raise DataError('predicted and groundtruth masks must both be [N, H, W]; '
                    f'got {predicted.shape} and {groundtruth.shape}.')
  classes = np.asarray(classes).reshape([-1])
  is_seen = np.isin(classes, sorted(int(i) for i in seen_class_ids))
  seen_count = np.sum(groundtruth & is_seen[:, None, None], axis=0)
  unseen_count = np.sum(groundtruth & ~is_seen[:, None, None], axis=0)
  # Other instances only: remove each instance's own mask from its count.
  other_seen = (seen_count[None] - (groundtruth & is_seen[:, None, None])) > 0
  other_unseen = (unseen_count[None] -
                  (groundtruth & ~is_seen[:, None, None])) > 0
  false_positive = predicted & ~groundtruth
  on_seen = false_positive & other_seen
  on_unseen = false_positive & ~other_seen & other_unseen
  on_background = false_positive & ~other_seen & ~other_unseen
  return np.stack([on_background.sum(axis=(1, 2)), on_seen.sum(axis=(1, 2)),
                   on_unseen.sum(axis=(1, 2))], axis=1).astype(np.int64)


def coco_boxes(boxes, height, width):
  """[N, 4] normalized ymin, xmin, ymax, xmax -> COCO x, y, w, h pixels."""
  boxes = np.asarray(boxes, np.float64).reshape([-1, 4])
  return np.stack([boxes[:, 1] * width, boxes[:, 0] * height,
                   (boxes[:, 3] - boxes[:, 1]) * width,
                   (boxes[:, 2] - boxes[:, 0]) * height], axis=1)


class BoxPromptedOverlapAccumulator:
  """Per-instance overlap, IoU and false-positive pixels, image by image
  (the same ``add`` arguments as ``miou.MIoUAccumulator``)."""

  def __init__(self, categories, seen_class_ids=(), ranges=None):
    """Args:
      categories: list of ``{'id': 1-based int, 'name': str}``.
      seen_class_ids: ids allowed masks in training.
      ranges: overlap bins (default ``overlap_analysis.bins()``).
    """
    self._groups = overlap_analysis.class_groups(categories, seen_class_ids)
    self._seen = tuple(int(i) for i in seen_class_ids or ())
    self._ranges = ranges or overlap_analysis.bins()
    self._classes, self._overlaps, self._ious, self._fp = [], [], [], []

  @property
  def num_instances(self):
    return len(self._classes)

  def add(self, predicted_masks, groundtruth_masks, boxes, classes,
          is_crowd=None):
    """Adds one image's instances.

    Args:
      predicted_masks: [N, H, W] masks predicted at the groundtruth boxes.
      groundtruth_masks: [N, H, W] binary.
      boxes: [N, 4] groundtruth boxes normalized to the image.
      classes: [N] 1-based ids (0 = padding, skipped).
      is_crowd: optional [N] bool (crowd instances are not scored, but
        their masks count as other objects).
    """
    groundtruth = np.asarray(groundtruth_masks)
    classes = np.asarray(classes).reshape([-1]).astype(np.int64)
    height, width = groundtruth.shape[1:3]
    overlaps = overlap_analysis.instance_overlaps(
        coco_boxes(boxes, height, width), groundtruth, height, width)
    ious = miou.instance_ious(predicted_masks, groundtruth, boxes)
    false_positives = attribute_false_positives(
        predicted_masks, groundtruth, classes,
        self._seen or [c for ids in self._groups.values() for c in ids])
    keep = classes > 0
    if is_crowd is not None:
      keep &= ~np.asarray(is_crowd).reshape([-1]).astype(bool)
    self._classes.extend(classes[keep].tolist())
    self._overlaps.extend(overlaps[keep].tolist())
    self._ious.extend(ious[keep].tolist())
    self._fp.extend(false_positives[keep].tolist())

  def evaluate(self):
    """Returns ``{metric name: float}`` (see the module doc)."""
    classes = np.asarray(self._classes, np.int64)
    overlaps = np.asarray(self._overlaps, np.float64)
    ious = np.asarray(self._ious, np.float64)
    fp = np.asarray(self._fp, np.int64).reshape([-1, len(KINDS)])
    metrics = {}
    for group, ids in self._groups.items():
      members = np.isin(classes, ids)
      totals = fp[members].sum(axis=0)
      total = int(totals.sum())
      for kind, count in zip(KINDS, totals):
        metrics[f'{FP_PREFIX}/{group}/{kind}_fraction'] = (
            float(count) / total if total else -1.0)
      metrics[f'{FP_PREFIX}/{group}/fp_pixels_per_instance'] = (
          float(total) / members.sum() if members.any() else -1.0)
      for label, low, high in self._ranges:
        in_bin = members & (overlaps >= low) & (overlaps <= high)
        values = ious[in_bin & ~np.isnan(ious)]
        metrics[f'{overlap_analysis.PREFIX}/{group}/mIoU ({label})'] = (
            float(values.mean()) if values.size else -1.0)
    return metrics
