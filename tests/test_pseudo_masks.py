"""Pseudo-mask rules (deepmac_tf/ops/pseudo_masks.py) on hand-made masks."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.ops import pseudo_masks as pm


def test_threshold_keeps_probabilities_at_or_above_one_half():
  teacher = np.array([[0.49, 0.5], [0.51, 0.0]], np.float32)
  out = pm.pseudo_masks(teacher, rule=pm.THRESHOLD).numpy()
  np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


def test_interaction_thresholds_the_mean_of_teacher_and_student():
  teacher = np.array([[0.9, 0.6, 0.3, 0.2]], np.float32)
  student = np.array([[0.0, 0.3, 0.7, 0.2]], np.float32)
  # Means 0.45, 0.45, 0.5, 0.2: threshold alone would give 1, 1, 0, 0.
  out = pm.pseudo_masks(teacher, student, rule='interaction').numpy()
  np.testing.assert_array_equal(out, [[0, 0, 1, 0]])
  alone = pm.pseudo_masks(teacher, student, rule=pm.THRESHOLD).numpy()
  np.testing.assert_array_equal(alone, [[1, 1, 0, 0]])


def test_interaction_without_student_and_unknown_rule_fail():
  with pytest.raises(ValueError, match='student'):
    pm.pseudo_masks(np.zeros([2, 2], np.float32), rule=pm.INTERACTION)
  with pytest.raises(ValueError, match='CRF'):
    pm.check_rule('CRF')


def test_inside_boxes_uses_pixel_centres_in_image_and_crop_frames():
  # 4x4 image, box covering rows [0, 0.5] and columns [0.25, 1.0].
  box = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
  inside = pm.inside_boxes(box, 4, 4).numpy()[0]
  expected = np.zeros([4, 4])
  expected[:2, 1:] = 1
  np.testing.assert_array_equal(inside, expected)
  # The same box seen from a 2x2 grid over the crop [0, 0, 0.5, 0.5]:
  # centres at 0.125 and 0.375 (rows and columns): columns at 0.125 fall
  # outside xmin 0.25.
  crop = pm.inside_boxes(box, 2, 2,
                         frame_boxes=np.array([[0, 0, .5, .5]],
                                              np.float32)).numpy()[0]
  np.testing.assert_array_equal(crop, [[0, 1], [0, 1]])
  # A grid over the box itself is entirely inside.
  own = pm.inside_boxes(box, 3, 5, frame_boxes=box).numpy()
  assert own.min() == 1.0


def test_other_seen_masks_excludes_the_instance_itself_and_unseen_ones():
  masks = np.zeros([3, 3, 3], np.uint8)
  masks[0, 0, :] = 1     # seen
  masks[1, :, 0] = 1     # seen
  masks[2, 2, :] = 1     # unseen
  out = pm.other_seen_masks(masks, [True, True, False]).numpy()
  # Instance 0 sees only instance 1's column; 1 only 0's row; 2 both.
  np.testing.assert_array_equal(out[0], masks[1])
  np.testing.assert_array_equal(out[1], masks[0])
  np.testing.assert_array_equal(out[2], np.maximum(masks[0], masks[1]))


def test_other_seen_masks_batched_images_do_not_mix():
  masks = np.zeros([2, 2, 2, 2], np.float32)
  masks[0, 0] = 1.0      # image 0, seen instance covering everything
  out = pm.other_seen_masks(masks, [[True, False], [False, False]]).numpy()
  assert out[0, 1].min() == 1.0 and out[0, 0].max() == 0.0
  assert out[1].max() == 0.0


def test_image_rules_remove_seen_overlap_and_outside_box():
  # 6x6 image. Seen instance 0 covers column 2; unseen instance 1 has box
  # rows 0-3 (0 .. 4/6), columns 0-3; the model says 0.9 everywhere.
  gt = np.zeros([2, 6, 6], np.uint8)
  gt[0, :, 2] = 1
  gt[1, :4, :4] = 1
  probabilities = np.full([1, 6, 6], 0.9, np.float32)
  boxes = np.array([[0.0, 0.0, 4 / 6, 4 / 6]], np.float32)
  out = pm.pseudo_masks_in_image(probabilities, boxes, gt, [True, False],
                                 rows=[1]).numpy()[0]
  expected = np.zeros([6, 6])
  expected[:4, :4] = 1
  expected[:, 2] = 0
  np.testing.assert_array_equal(out, expected)


def test_image_rules_leave_a_seen_instance_its_own_pixels():
  gt = np.zeros([1, 4, 4], np.uint8)
  gt[0, 1:3, 1:3] = 1
  probabilities = np.full([1, 4, 4], 0.8, np.float32)
  boxes = np.array([[0.25, 0.25, 0.75, 0.75]], np.float32)
  out = pm.pseudo_masks_in_image(probabilities, boxes, gt, [True],
                                 rows=[0]).numpy()[0]
  np.testing.assert_array_equal(out, gt[0])


def test_no_instances_and_no_gradient():
  empty = pm.pseudo_masks_in_image(np.zeros([0, 5, 5], np.float32),
                                   np.zeros([0, 4], np.float32),
                                   np.zeros([0, 5, 5], np.uint8),
                                   np.zeros([0], bool), rows=[])
  assert empty.shape == (0, 5, 5)
  teacher = tf.Variable(np.full([2, 2], 0.7, np.float32))
  student = tf.Variable(np.full([2, 2], 0.7, np.float32))
  with tf.GradientTape() as tape:
    out = pm.pseudo_masks(tf.identity(teacher), tf.identity(student),
                          rule=pm.INTERACTION)
    loss = tf.reduce_sum(out * teacher)
  grads = tape.gradient(out, [teacher, student],
                        unconnected_gradients=tf.UnconnectedGradients.NONE)
  assert grads == [None, None]
  assert loss.numpy() == pytest.approx(4 * 0.7)


def test_works_inside_a_tf_function_with_batched_crops():

  @tf.function
  def run(teacher, overlap, boxes, crops):
    inside = pm.inside_boxes(boxes, 4, 4, frame_boxes=crops)
    return pm.pseudo_masks(teacher, rule=pm.THRESHOLD, seen_overlap=overlap,
                           inside_box=inside)

  teacher = np.full([2, 3, 4, 4], 0.6, np.float32)
  overlap = np.zeros([2, 3, 4, 4], np.float32)
  overlap[0, 0, 0, 0] = 1
  boxes = np.tile(np.array([0.2, 0.2, 0.6, 0.6], np.float32), [2, 3, 1])
  out = run(teacher, overlap, boxes, boxes).numpy()
  assert out.shape == (2, 3, 4, 4)
  assert out.sum() == 2 * 3 * 16 - 1 and out[0, 0, 0, 0] == 0
