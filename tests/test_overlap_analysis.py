"""Overlap analysis: O_i on hand-made scenes, AP per overlap bin, false-
positive pixel attribution, the plot."""

import os

import numpy as np
import pytest

from deepmac_tf.evaluation import box_prompted_overlap as bpo
from deepmac_tf.evaluation import coco_accumulator
from deepmac_tf.evaluation import overlap_analysis as oa
from deepmac_tf.evaluation import overlap_plot

CATEGORIES = [{'id': 1, 'name': 'seen'}, {'id': 2, 'name': 'unseen'}]


def _box_mask(shape, x, y, w, h):
  mask = np.zeros(shape, np.uint8)
  mask[y:y + h, x:x + w] = 1
  return mask


def test_overlap_of_hand_made_scene():
  # A and B overlap by half of each box; C is alone; D (box x 14-17,
  # y 0-3) lets 4 px of E show through its top-left corner, E's box
  # (x 12-19, y 0-7) holds all 12 px of D's mask.
  shape = (20, 20)
  boxes = [[0, 0, 4, 4], [2, 0, 4, 4], [10, 10, 3, 3], [14, 0, 4, 4],
           [12, 0, 8, 8]]
  d = _box_mask(shape, 14, 0, 4, 4) - _box_mask(shape, 14, 0, 2, 2)
  e = _box_mask(shape, 12, 0, 8, 8) - d
  masks = np.stack([_box_mask(shape, 0, 0, 4, 4), _box_mask(shape, 2, 0, 4, 4),
                    _box_mask(shape, 10, 10, 3, 3), d, e])
  overlaps = oa.instance_overlaps(boxes, masks, *shape)
  np.testing.assert_allclose(overlaps, [0.5, 0.5, 0.0, 4 / 16, 12 / 64])


def test_overlap_ignores_own_mask_and_takes_the_max():
  shape = (10, 10)
  boxes = [[0, 0, 10, 10], [0, 0, 5, 10], [5, 0, 5, 10]]
  masks = np.stack([np.ones(shape, np.uint8), _box_mask(shape, 0, 0, 5, 10),
                    _box_mask(shape, 5, 0, 3, 10)])
  overlaps = oa.instance_overlaps(boxes, masks, *shape)
  # Big box: best other mask covers half; the halves are fully covered by
  # the big instance's mask.
  np.testing.assert_allclose(overlaps, [0.5, 1.0, 1.0])
  assert oa.instance_overlaps(np.zeros([0, 4]), np.zeros([0, 5, 5]),
                              5, 5).shape == (0,)


def test_bins_are_half_open_and_labelled():
  ranges = oa.bins()
  labels = [label for label, _, _ in ranges]
  assert labels[0] == 'overlap 0' and labels[1] == 'overlap 0-0.1'
  assert labels[-2] == 'overlap 0.9-1' and labels[-1] == 'overlapped'
  _, low, high = ranges[2]
  assert low > 0.1 and high == pytest.approx(0.2)
  assert ranges[-1][1:] == (0.3, 1.0)


def _scene():
  """Image 1: two overlapping instances (O = 0.5 each: seen 1 and unseen
  2) and an isolated unseen one (O = 0)."""
  shape = (20, 20)
  acc = coco_accumulator.CocoAccumulator(CATEGORIES)
  masks = np.stack([_box_mask(shape, 0, 0, 4, 4), _box_mask(shape, 2, 0, 4, 4),
                    _box_mask(shape, 10, 10, 6, 6)])
  boxes = np.array([[0, 0, 4, 4], [0, 2, 4, 6], [10, 10, 16, 16]], float)
  acc.add_groundtruth('a', boxes, [1, 2, 2], masks)
  return acc, masks, boxes


def test_ap_per_overlap_bin_counts_only_that_bin():
  acc, masks, boxes = _scene()
  # Perfect on the isolated unseen object; the overlapped unseen object's
  # mask is wrong (covers the seen neighbour instead).
  acc.add_detections('a', boxes, [0.9, 0.8, 0.7], [1, 2, 2],
                     np.stack([masks[0], masks[0], masks[2]]))
  metrics = oa.overlap_ap_metrics(acc.groundtruth_dataset(),
                                  acc.detection_results(), seen_class_ids=[1])
  unseen = 'DetectionMasks_Overlap/UnseenClasses/'
  assert metrics[unseen + 'mAP (overlap 0)'] == pytest.approx(1.0)
  assert metrics[unseen + 'mAP (overlap 0.4-0.5)'] == pytest.approx(0.0)
  assert metrics[unseen + 'mAP (overlapped)'] == pytest.approx(0.0)
  assert metrics[unseen + 'mAP (overlap 0.1-0.2)'] == -1.0
  assert metrics[unseen + 'num_instances (overlap 0)'] == 1.0
  assert metrics[unseen + 'num_instances (overlapped)'] == 1.0
  seen = 'DetectionMasks_Overlap/SeenClasses/'
  assert metrics[seen + 'mAP (overlapped)'] == pytest.approx(1.0)
  assert metrics[seen + 'mAP (overlap 0)'] == -1.0


def test_unmatched_detection_is_a_false_positive_in_its_own_bin_only():
  acc, masks, boxes = _scene()
  shape = masks.shape[1:]
  # All three right, plus an unseen-class detection on empty ground (its
  # box covers no groundtruth mask: overlap 0).
  stray = _box_mask(shape, 16, 0, 4, 4)
  acc.add_detections('a', np.concatenate([boxes, [[0, 16, 4, 20]]]),
                     [0.5, 0.5, 0.5, 0.9], [1, 2, 2, 2],
                     np.stack([masks[0], masks[1], masks[2], stray]))
  metrics = oa.overlap_ap_metrics(acc.groundtruth_dataset(),
                                  acc.detection_results(), seen_class_ids=[1])
  unseen = 'DetectionMasks_Overlap/UnseenClasses/'
  assert metrics[unseen + 'mAP (overlapped)'] == pytest.approx(1.0)
  assert metrics[unseen + 'mAP (overlap 0)'] < 0.6


def test_false_positive_attribution_on_hand_made_case():
  shape = (1, 8)
  # Row of 8 px: seen instance on px 0-1, unseen A on 2-3, unseen B on 4-5,
  # background 6-7. A's prediction covers px 0-7 except 5.
  gt = np.zeros([3, *shape], np.uint8)
  gt[0, 0, 0:2] = 1
  gt[1, 0, 2:4] = 1
  gt[2, 0, 4:6] = 1
  predicted = np.zeros_like(gt)
  predicted[1, 0, :] = 1
  predicted[1, 0, 5] = 0
  predicted[2] = gt[2]
  counts = bpo.attribute_false_positives(predicted, gt, [1, 2, 2], [1])
  # A: 2 px on the seen instance, 1 on unseen B (px 4), 2 on background.
  np.testing.assert_array_equal(counts, [[0, 0, 0], [2, 2, 1], [0, 0, 0]])


def test_box_prompted_accumulator_metrics_and_plot(tmp_path):
  shape = (20, 20)
  gt = np.stack([_box_mask(shape, 0, 0, 4, 4), _box_mask(shape, 2, 0, 4, 4),
                 _box_mask(shape, 10, 10, 6, 6)])
  boxes = np.array([[0, 0, 4, 4], [0, 2, 4, 6], [10, 10, 16, 16]]) / 20.0
  predicted = gt.copy()
  predicted[1] = _box_mask(shape, 0, 0, 6, 4)  # spills onto the seen one
  predicted[2, 10:12, 10:16] = 0              # misses a part, no FP
  acc = bpo.BoxPromptedOverlapAccumulator(CATEGORIES, [1])
  acc.add(predicted, gt, boxes, [1, 2, 2], is_crowd=[False, False, False])
  metrics = acc.evaluate()
  fp = 'DetectionMasks_FalsePositives/UnseenClasses/'
  # The unseen spill lies outside its box (x 0-1): the prediction was
  # pasted freely here, so all 8 px count, on the seen instance.
  assert metrics[fp + 'seen_objects_fraction'] == 1.0
  assert metrics[fp + 'background_fraction'] == 0.0
  assert metrics[fp + 'fp_pixels_per_instance'] == 4.0
  assert metrics['DetectionMasks_FalsePositives/SeenClasses/'
                 'background_fraction'] == -1.0
  overlap = 'DetectionMasks_Overlap/UnseenClasses/'
  assert metrics[overlap + 'mIoU (overlap 0)'] == pytest.approx(24 / 36)
  assert metrics[overlap + 'mIoU (overlapped)'] == pytest.approx(1.0)
  assert metrics[overlap + 'mIoU (overlap 0.1-0.2)'] == -1.0
  path = overlap_plot.write_overlap_plot(metrics, str(tmp_path / 'o.png'))
  assert path and os.path.getsize(path) > 1000
  assert overlap_plot.write_overlap_plot({}, str(tmp_path / 'x.png')) is None
