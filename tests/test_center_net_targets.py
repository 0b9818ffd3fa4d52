"""Tests of the CenterNet heatmap / box targets and the valid-area mask."""

import math

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.meta_architectures import center_net_targets as targets


def _numpy_radius(height, width, min_iou):
  """Reference: the three CenterNet quadratic roots, (-b + sqrt(d)) / 2."""

  def root(a, b, c):
    return (-b + np.sqrt(b * b - 4 * a * c)) / 2

  size_sum = height + width
  area = height * width
  return np.minimum.reduce([
      root(1.0, -size_sum, area * (1 - min_iou) / (1 + min_iou)),
      root(4.0, -2 * size_sum, (1 - min_iou) * area),
      root(4.0 * min_iou, 2 * min_iou * size_sum, (min_iou - 1) * area),
  ])


@pytest.mark.parametrize('min_iou', [0.3, 0.7, 0.9])
def test_radius_matches_numpy_reference(min_iou):
  heights, widths = np.meshgrid(np.linspace(0.0, 60.0, 13),
                                np.linspace(0.5, 90.0, 11))
  radius = targets.max_distance_for_overlap(
      tf.constant(heights, tf.float32), tf.constant(widths, tf.float32),
      min_iou).numpy()
  np.testing.assert_allclose(radius, _numpy_radius(heights, widths, min_iou),
                             rtol=1e-5, atol=1e-4)


def test_radius_and_sigma_hand_example():
  # 10 x 10 box, IoU 0.7: the "gt in detection" root is the smallest:
  # a = 2.8, b = 28, c = -30 -> (-28 + sqrt(784 + 336)) / 2 = 2.733.
  radius = targets.max_distance_for_overlap(10.0, 10.0, 0.7).numpy()
  assert radius == pytest.approx((-28 + math.sqrt(1120)) / 2, rel=1e-5)
  assert targets.gaussian_sigma(10.0, 10.0, 0.7).numpy() == pytest.approx(
      5.0 / 6.0)
  # A zero-size box still gets sigma 1/6.
  assert targets.gaussian_sigma(0.0, 0.0, 0.7).numpy() == pytest.approx(
      1.0 / 6.0)


def test_heatmap_peak_at_floor_of_center():
  # On an 8 x 8 grid: y 2..6 (center 4), x 2..5 (center 3.5 -> floor 3).
  boxes = tf.constant([[[0.25, 0.25, 0.75, 0.625]]])
  heatmap = targets.center_heatmap_targets(
      boxes, tf.constant([[2]]), tf.constant([[1.0]]), num_classes=3,
      output_height=8, output_width=8, min_iou=0.7).numpy()
  assert heatmap.shape == (1, 8, 8, 3)
  assert heatmap[0, 4, 3, 1] == 1.0
  assert np.unravel_index(np.argmax(heatmap[0, :, :, 1]), (8, 8)) == (4, 3)
  assert not heatmap[..., 0].any() and not heatmap[..., 2].any()
  sigma = targets.gaussian_sigma(4.0, 3.0, 0.7).numpy()
  np.testing.assert_allclose(heatmap[0, 4, 4, 1],
                             math.exp(-1.0 / (2 * sigma ** 2)), rtol=1e-5)
  np.testing.assert_allclose(heatmap[0, 6, 1, 1],
                             math.exp(-8.0 / (2 * sigma ** 2)), rtol=1e-4,
                             atol=1e-30)


def test_heatmap_max_over_instances_and_weights():
  boxes = tf.constant([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.25, 0.5, 0.75],
                        [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
  classes = tf.constant([[1, 1, 2, 0]])
  weights = tf.constant([[1.0, 1.0, 0.5, 0.0]])
  heatmap = targets.center_heatmap_targets(
      boxes, classes, weights, num_classes=2, output_height=8,
      output_width=8, min_iou=0.7).numpy()
  one = [targets.center_heatmap_targets(
      boxes[:, i:i + 1], classes[:, i:i + 1], weights[:, i:i + 1], 2, 8, 8,
      0.7).numpy() for i in range(2)]
  np.testing.assert_allclose(heatmap[..., 0],
                             np.maximum(one[0], one[1])[..., 0], rtol=1e-6)
  assert heatmap[0, 2, 2, 0] == 1.0 and heatmap[0, 2, 4, 0] == 1.0
  # The weighted instance peaks at its weight.
  assert heatmap[0, 6, 6, 1] == pytest.approx(0.5)
  assert heatmap.max() <= 1.0 and heatmap.min() >= 0.0


def test_heatmap_ignores_padding_and_zero_weight():
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.6], [0.0, 0.0, 0.0, 0.0]]])
  heatmap = targets.center_heatmap_targets(
      boxes, tf.constant([[1, 0]]), tf.constant([[0.0, 1.0]]), 2, 8, 8, 0.7)
  assert not heatmap.numpy().any()


def test_box_targets():
  # 16 x 8 grid; center (0.5 * 16, 0.4375 * 8) = (8.0, 3.5).
  boxes = tf.constant([[[0.25, 0.25, 0.75, 0.625], [0.0, 0.0, 0.0, 0.0]]])
  indices, scale, offset = targets.box_targets(boxes, 16, 8)
  np.testing.assert_array_equal(indices.numpy(), [[[8, 3], [0, 0]]])
  np.testing.assert_allclose(scale.numpy(), [[[8.0, 3.0], [0.0, 0.0]]])
  np.testing.assert_allclose(offset.numpy(), [[[0.0, 0.5], [0.0, 0.0]]])


def test_box_target_indices_stay_in_grid():
  boxes = tf.constant([[[1.0, 1.0, 1.0, 1.0]]])
  indices, _, _ = targets.box_targets(boxes, 4, 4)
  np.testing.assert_array_equal(indices.numpy(), [[[3, 3]]])


def test_valid_area_mask_excludes_padding():
  mask = targets.valid_area_mask(tf.constant([[30, 64, 3], [64, 17, 3]]),
                                 stride=4, output_height=16,
                                 output_width=16).numpy()
  assert mask.shape == (2, 16, 16)
  assert mask[0, :8].all() and not mask[0, 8:].any()  # ceil(30 / 4) = 8
  assert mask[1, :, :5].all() and not mask[1, :, 5:].any()  # ceil(17/4) = 5


def test_targets_under_xla():

  @tf.function(jit_compile=True)
  def compute(boxes, classes, weights):
    heatmap = targets.center_heatmap_targets(boxes, classes, weights, 3, 8, 8,
                                             0.7)
    return heatmap, targets.box_targets(boxes, 8, 8)[0]

  boxes = tf.constant([[[0.25, 0.25, 0.75, 0.625]], [[0.0, 0.0, 0.0, 0.0]]])
  heatmap, indices = compute(boxes, tf.constant([[2], [0]]),
                             tf.constant([[1.0], [0.0]]))
  assert heatmap.numpy()[0, 4, 3, 1] == 1.0
  assert not heatmap.numpy()[1].any()
  np.testing.assert_array_equal(indices.numpy(), [[[4, 3]], [[0, 0]]])
