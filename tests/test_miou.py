"""Detector-free mIoU on hand-made masks with known IoUs."""

import numpy as np
import pytest

from deepmac_tf.errors import DataError
from deepmac_tf.evaluation import miou

CATEGORIES = [{'id': 1, 'name': 'seen_a'}, {'id': 2, 'name': 'seen_b'},
              {'id': 3, 'name': 'unseen_c'}]


def _rect(top, left, bottom, right, size=10):
  mask = np.zeros([size, size], np.uint8)
  mask[top:bottom, left:right] = 1
  return mask


def test_box_region_uses_pixel_centers():
  # Box rows 0.2..0.5 of a 10-pixel image: centers 0.25, 0.35, 0.45.
  region = miou.box_region([[0.2, 0.0, 0.5, 1.0]], 10, 10)
  assert region.shape == (1, 10, 10)
  assert np.flatnonzero(region[0, :, 0]).tolist() == [2, 3, 4]
  assert region[0].sum() == 30


def test_instance_ious_known_values():
  full = [[0.0, 0.0, 1.0, 1.0]]
  gt = _rect(0, 0, 4, 5)  # 20 pixels
  # Prediction = top half of gt (10 px): IoU 0.5.
  assert miou.instance_ious(_rect(0, 0, 2, 5)[None], gt[None], full)[0] == (
      pytest.approx(0.5))
  # 20 px gt, 20 px prediction overlapping 10: IoU 10 / 30.
  assert miou.instance_ious(_rect(2, 0, 6, 5)[None], gt[None], full)[0] == (
      pytest.approx(1 / 3))
  # Probabilities are thresholded at 0.5.
  probabilities = gt.astype(np.float32) * 0.51 + (1 - gt) * 0.49
  assert miou.instance_ious(probabilities[None], gt[None], full)[0] == 1.0


def test_iou_counts_only_pixels_inside_the_box():
  gt = _rect(0, 0, 10, 10)  # the mask spills over the box
  prediction = _rect(0, 0, 5, 5)
  box = [[0.0, 0.0, 0.5, 0.5]]  # pixels 0..4 x 0..4
  assert miou.instance_ious(prediction[None], gt[None], box)[0] == 1.0
  # A prediction outside the box does not count against it either.
  outside = prediction.copy()
  outside[8:, 8:] = 1
  assert miou.instance_ious(outside[None], gt[None], box)[0] == 1.0


def test_empty_groundtruth_in_box_is_nan():
  ious = miou.instance_ious(_rect(0, 0, 2, 2)[None],
                            np.zeros([1, 10, 10], np.uint8),
                            [[0.0, 0.0, 1.0, 1.0]])
  assert np.isnan(ious[0])


def test_accumulator_means_over_instances_and_class_sets():
  full = [[0.0, 0.0, 1.0, 1.0]] * 3
  accumulator = miou.MIoUAccumulator(CATEGORIES, seen_class_ids=[1, 2],
                                     include_metrics_per_category=True)
  gt = np.stack([_rect(0, 0, 4, 5), _rect(0, 0, 4, 5), _rect(0, 0, 4, 5)])
  predicted = np.stack([_rect(0, 0, 4, 5),    # IoU 1
                        _rect(0, 0, 2, 5),    # IoU 0.5
                        _rect(2, 0, 6, 5)])   # IoU 1/3
  accumulator.add(predicted, gt, full, [1, 2, 3])
  # Second image: one crowd instance and one padding row, both skipped.
  accumulator.add(predicted[:2], gt[:2], full[:2], [3, 0],
                  is_crowd=[True, False])
  assert accumulator.num_instances == 3
  metrics = accumulator.evaluate()
  assert metrics[miou.MIOU] == pytest.approx((1 + 0.5 + 1 / 3) / 3)
  assert metrics[miou.MIOU_SEEN] == pytest.approx(0.75)
  assert metrics[miou.MIOU_UNSEEN] == pytest.approx(1 / 3)
  assert metrics['DetectorFreeMasks/mIoU/seen_b'] == pytest.approx(0.5)


def test_no_split_without_seen_classes_and_empty_is_minus_one():
  accumulator = miou.MIoUAccumulator(CATEGORIES)
  assert accumulator.evaluate() == {miou.MIOU: -1.0}
  everything = miou.MIoUAccumulator(CATEGORIES, seen_class_ids=[1, 2, 3])
  assert miou.MIOU_UNSEEN not in everything.evaluate()


def test_shape_mismatch_is_data_error():
  with pytest.raises(DataError, match=r'\[N, H, W\]'):
    miou.instance_ious(np.zeros([1, 4, 4]), np.zeros([1, 5, 5]),
                       [[0, 0, 1, 1]])
