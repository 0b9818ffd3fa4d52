"""Detector-free evaluation: mean IoU of masks predicted at groundtruth boxes.

The paper scores a detector-free model (which gets each instance's
groundtruth box as input) by the "mean IoU of masks predicted inside
groundtruth boxes". Precisely, for one groundtruth instance with box b
(normalized ymin, xmin, ymax, xmax), groundtruth mask G and predicted mask
P (the box mask pasted into the image and thresholded at 0.5), on an
H x W image:

  B   = pixels (i, j) whose centers lie in the box:
        ymin <= (i + 0.5) / H <= ymax and xmin <= (j + 0.5) / W <= xmax
  IoU = |P & G & B| / |(P | G) & B|

The mean is over instances (not images), overall and per class set:

* ``DetectorFreeMasks/mIoU``: every scored instance;
* ``DetectorFreeMasks/mIoU_seen`` / ``_unseen``: instances of the classes
  allowed masks in training / of the others (only when that split exists);
* ``DetectorFreeMasks/mIoU/<name>`` per category on request.

Left out: crowd instances, padding (class 0) and instances whose
groundtruth mask has no pixel inside B (IoU undefined). A mean over no
instance is -1 (COCO's "undefined").
"""

import numpy as np

from deepmac_tf.errors import DataError

PREFIX = 'DetectorFreeMasks'
MIOU = f'{PREFIX}/mIoU'
MIOU_SEEN = f'{PREFIX}/mIoU_seen'
MIOU_UNSEEN = f'{PREFIX}/mIoU_unseen'
# The same protocol on a detection model's mask branch: masks predicted for
# the groundtruth boxes (box prompts), so mask quality is measured apart
# from detection quality.
BOX_PROMPTED_PREFIX = 'BoxPromptedMasks'


def box_region(boxes, height, width):
  """Pixels whose centers lie inside each box.

  Args:
    boxes: [N, 4] normalized ymin, xmin, ymax, xmax.
    height, width: image size.

  Returns:
    [N, H, W] bool.
  """
  boxes = np.asarray(boxes, np.float64).reshape([-1, 4])
  ys = (np.arange(height) + 0.5) / height
  xs = (np.arange(width) + 0.5) / width
  rows = (ys[None] >= boxes[:, 0:1]) & (ys[None] <= boxes[:, 2:3])  # [N, H]
  cols = (xs[None] >= boxes[:, 1:2]) & (xs[None] <= boxes[:, 3:4])  # [N, W]
  return rows[:, :, None] & cols[:, None, :]


def inscribed_ellipses(boxes, height, width):
  """The ellipse inscribed in each box, on the pixel centers of ``box_region``.

  A mask predicted from the box alone: the reference an untrained (or
  shape-blind) mask head scores (``reproduction.priors``).

  Args:
    boxes: [..., 4] normalized ymin, xmin, ymax, xmax.
    height, width: image size.

  Returns:
    [..., H, W] bool.
  """
  boxes = np.asarray(boxes, np.float64)
  ys = (np.arange(height) + 0.5) / height
  xs = (np.arange(width) + 0.5) / width
  center_y = (boxes[..., 0] + boxes[..., 2])[..., None, None] / 2
  center_x = (boxes[..., 1] + boxes[..., 3])[..., None, None] / 2
  radius_y = np.maximum(boxes[..., 2] - boxes[..., 0], 1e-9)[..., None,
                                                             None] / 2
  radius_x = np.maximum(boxes[..., 3] - boxes[..., 1], 1e-9)[..., None,
                                                             None] / 2
  dy = (ys[:, None] - center_y) / radius_y
  dx = (xs[None, :] - center_x) / radius_x
  return dy**2 + dx**2 <= 1.0


def instance_ious(predicted_masks, groundtruth_masks, boxes):
  """IoU inside the groundtruth box, per instance (see the module doc).

  Args:
    predicted_masks: [N, H, W] binary (or probabilities; > 0.5 is
      foreground).
    groundtruth_masks: [N, H, W] binary (> 0.5 is foreground).
    boxes: [N, 4] groundtruth boxes normalized to the H x W image.

  Returns:
    [N] float64 IoUs; NaN where the groundtruth has no pixel in its box.
  """
  predicted = np.asarray(predicted_masks) > 0.5
  groundtruth = np.asarray(groundtruth_masks) > 0.5
  if predicted.shape != groundtruth.shape or predicted.ndim != 3:
    raise DataError('predicted and groundtruth masks must both be [N, H, W]; '
                    f'got {predicted.shape} and {groundtruth.shape}.')
  region = box_region(boxes, predicted.shape[1], predicted.shape[2])
  if region.shape[0] != predicted.shape[0]:
    raise DataError(f'{region.shape[0]} boxes for {predicted.shape[0]} masks.')
  predicted &= region
  groundtruth &= region
  intersection = np.sum(predicted & groundtruth, axis=(1, 2))
  union = np.sum(predicted | groundtruth, axis=(1, 2))
  has_mask = np.any(groundtruth, axis=(1, 2))
  ious = intersection / np.maximum(union, 1)
  return np.where(has_mask, ious, np.nan)


def _mean(values):
  return float(np.mean(values)) if len(values) else -1.0


class MIoUAccumulator:
  """Per-instance IoUs of a dataset, fed image by image."""

  def __init__(self, categories, seen_class_ids=(),
               include_metrics_per_category=False, prefix=PREFIX):
    """Args:
      categories: list of ``{'id': 1-based int, 'name': str}``.
      seen_class_ids: ids allowed masks in training; the seen / unseen
        split is reported when they are a non-empty proper subset.
      include_metrics_per_category: add ``<prefix>/mIoU/<name>``.
      prefix: metric-name prefix: ``DetectorFreeMasks`` for detector-free
        models, ``BOX_PROMPTED_PREFIX`` for a detector's mask branch fed
        the groundtruth boxes.
    """
    self._prefix = prefix
    self._categories = list(categories)
    all_ids = {int(c['id']) for c in categories}
    seen = {int(i) for i in seen_class_ids} & all_ids
    self._split = bool(seen) and seen != all_ids
    self._seen = seen
    self._per_category = include_metrics_per_category
    self._ious = []
    self._classes = []

  @property
  def num_instances(self):
    return len(self._ious)

  def add(self, predicted_masks, groundtruth_masks, boxes, classes,
          is_crowd=None):
    """Adds one image's instances.

    Args:
      predicted_masks: [N, H, W] masks predicted at the groundtruth boxes,
        pasted into the image.
      groundtruth_masks: [N, H, W] binary.
      boxes: [N, 4] groundtruth boxes normalized to the image.
      classes: [N] 1-based ids (0 = padding, skipped).
      is_crowd: optional [N] bool (crowd instances are skipped).
    """
    ious = instance_ious(predicted_masks, groundtruth_masks, boxes)
    classes = np.asarray(classes).reshape([-1]).astype(np.int64)
    keep = (classes > 0) & ~np.isnan(ious)
    if is_crowd is not None:
      keep &= ~np.asarray(is_crowd).reshape([-1]).astype(bool)
    self._ious.extend(ious[keep].tolist())
    self._classes.extend(classes[keep].tolist())

  def evaluate(self):
    """Returns ``{metric name: float}`` (see the module doc)."""
    ious = np.asarray(self._ious, np.float64)
    classes = np.asarray(self._classes, np.int64)
    name = f'{self._prefix}/mIoU'
    metrics = {name: _mean(ious)}
    if self._split:
      seen = np.isin(classes, sorted(self._seen))
      metrics[f'{name}_seen'] = _mean(ious[seen])
      metrics[f'{name}_unseen'] = _mean(ious[~seen])
    if self._per_category:
      for category in self._categories:
        metrics[f'{name}/{category["name"]}'] = _mean(
            ious[classes == int(category['id'])])
    return metrics
