"""Tests of the pure ops (deepmac_tf.ops): crop, embeddings, fill, jitter,
pasting (spec sections 2.2, 5, 8.2, 8.5)."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.ops import box_jitter
from deepmac_tf.ops import instances
from deepmac_tf.ops import mask_head_inputs
from deepmac_tf.ops import mask_pasting
from deepmac_tf.ops import mask_targets
from deepmac_tf.ops import mask_weights
from deepmac_tf.ops import roi_crop


def _random_boxes(rng, batch, num, low=0.0, high=1.0):
  corners = np.sort(rng.uniform(low, high, size=[batch, num, 2, 2]), axis=2)
  return np.stack([corners[..., 0, 0], corners[..., 0, 1],
                   corners[..., 1, 0], corners[..., 1, 1]], -1).astype(
                       np.float32)


def _tf_image_crop(features, boxes, crop_size):
  batch, num = boxes.shape[:2]
  crops = tf.image.crop_and_resize(
      features, boxes.reshape(-1, 4), np.repeat(np.arange(batch), num),
      crop_size)
  return crops.numpy().reshape((batch, num) + tuple(crops.shape[1:]))


@pytest.mark.parametrize('method', roi_crop.METHODS)
@pytest.mark.parametrize('jit', [False, True])
def test_crop_matches_tf_image_crop_and_resize(method, jit):
  rng = np.random.default_rng(0)
  features = rng.normal(size=[3, 9, 13, 5]).astype(np.float32)
  boxes = _random_boxes(rng, 3, 6, -0.3, 1.3)  # partly outside the map
  boxes[0, 0] = [0.9, 0.8, 0.1, 0.2]  # flipped box
  boxes[1, 0] = [0.0, 0.0, 1.0, 1.0]
  crop = tf.function(
      lambda f, b: roi_crop.crop_and_resize(f, b, (7, 4), method=method),
      jit_compile=jit)
  np.testing.assert_allclose(crop(features, boxes).numpy(),
                             _tf_image_crop(features, boxes, [7, 4]),
                             atol=1e-5)
  single = roi_crop.crop_and_resize(features, boxes, 1, method=method)
  np.testing.assert_allclose(single.numpy(),
                             _tf_image_crop(features, boxes, [1, 1]),
                             atol=1e-5)


def test_crop_bfloat16_and_empty():
  rng = np.random.default_rng(1)
  features = rng.normal(size=[2, 8, 8, 3]).astype(np.float32)
  boxes = _random_boxes(rng, 2, 4)
  crops = roi_crop.crop_and_resize(tf.cast(features, tf.bfloat16), boxes, 5)
  assert crops.dtype == tf.bfloat16
  np.testing.assert_allclose(tf.cast(crops, tf.float32).numpy(),
                             _tf_image_crop(features, boxes, [5, 5]),
                             atol=0.05)
  empty = roi_crop.crop_and_resize(features, tf.zeros([2, 0, 4]), 5)
  assert empty.shape == (2, 0, 5, 5, 3)
  masks = mask_targets.crop_instance_masks(tf.zeros([0, 0, 16, 16]),
                                          tf.zeros([0, 0, 4]), 4)
  assert masks.shape == (0, 0, 4, 4)
  with pytest.raises(ValueError, match='method'):
    roi_crop.crop_and_resize(features, boxes, 5, method='loop')


def test_crop_gradient_flows_to_features():
  features = tf.random.stateless_normal([2, 8, 8, 3], [1, 2])
  boxes = tf.constant(_random_boxes(np.random.default_rng(2), 2, 3))
  grads = []
  for method in roi_crop.METHODS:
    with tf.GradientTape() as tape:
      tape.watch(features)
      loss = tf.reduce_sum(roi_crop.crop_and_resize(features, boxes, 4,
                                                    method=method) ** 2)
    grads.append(tape.gradient(loss, features).numpy())
  assert np.abs(grads[0]).sum() > 0
  np.testing.assert_allclose(grads[0], grads[1], atol=1e-4)


def test_crop_instance_masks_shape_and_soft_values():
  masks = np.zeros([8, 5, 128, 128], np.float32)
  masks[:, :, :, :64] = 1.0
  # The last sample column lies at x = 63.5, half way across the edge.
  boxes = np.tile(np.array([0.0, 0.0, 1.0, 0.5], np.float32), [8, 5, 1])
  crops = mask_targets.crop_instance_masks(masks, boxes, 32).numpy()
  assert crops.shape == (8, 5, 32, 32)
  np.testing.assert_allclose(crops[0, 0, :, :31], 1.0)
  np.testing.assert_allclose(crops[0, 0, :, 31], 0.5)  # soft, not binarized


def test_fill_boxes_spec_values():
  boxes = tf.constant([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0],
                        [0.0, 0.0, 1.0, 1.0]]])
  filled = mask_targets.fill_boxes(boxes, 32, 32).numpy()[0]
  expected = np.zeros([3, 32, 32], np.float32)
  expected[0, :17, :17] = 1.0
  expected[1, 16:, 16:] = 1.0
  expected[2] = 1.0
  np.testing.assert_array_equal(filled, expected)


def test_instance_embedding_cells_spec():
  boxes = tf.constant([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 1.0],
                        [0.0, 0.0, 0.5, 1.0]]])
  cells = mask_head_inputs.box_center_cells(boxes, 32, 32).numpy()[0]
  np.testing.assert_array_equal(cells, [[8, 8], [24, 16], [8, 16]])
  embedding = np.zeros([1, 32, 32, 2], np.float32)
  embedding[0, 8, 8] = [1, 2]
  embedding[0, 24, 16] = [3, 4]
  embedding[0, 8, 16] = [5, 6]
  gathered = mask_head_inputs.gather_instance_embeddings(embedding, boxes)
  np.testing.assert_array_equal(gathered.numpy()[0], [[1, 2], [3, 4], [5, 6]])


def test_crop_mode_mask_head_input_spec():
  boxes = tf.constant([[[0.0, 0.0, 0.25, 0.25], [0.75, 0.75, 1.0, 1.0]]] * 2)
  embedding = np.zeros([2, 32, 32, 4], np.float32)
  embedding[0, :16, :16], embedding[0, 16:, 16:] = 1.0, 2.0
  embedding[1, :16, :16], embedding[1, 16:, 16:] = 3.0, 4.0
  inputs = tf.function(mask_head_inputs.crop_mask_head_inputs, jit_compile=True)(
      tf.constant(embedding), boxes, 16).numpy()
  assert inputs.shape == (2, 2, 16, 16, 6)
  y_grid, x_grid = np.meshgrid(np.linspace(-1, 1, 16), np.linspace(-1, 1, 16),
                               indexing='ij')
  for i, j in [(0, 0), (0, 1), (1, 0), (1, 1)]:
    np.testing.assert_allclose(inputs[i, j, :, :, 0], y_grid, atol=1e-6)
    np.testing.assert_allclose(inputs[i, j, :, :, 1], x_grid, atol=1e-6)
    np.testing.assert_allclose(inputs[i, j, :, :, 2:], 2 * i + j + 1.0)
  no_xy = mask_head_inputs.crop_mask_head_inputs(embedding, boxes, 16,
                                            use_xy=False)
  assert no_xy.shape == (2, 2, 16, 16, 4)


def test_full_resolution_mask_head_input_spec():
  boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5]],
                       [[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
  embedding = tf.ones([2, 32, 32, 4])
  inputs = mask_head_inputs.full_resolution_mask_head_inputs(embedding, boxes)
  assert inputs.shape == (2, 2, 32, 32, 6)
  line = np.linspace(0, 1, 32)
  centers = [[0.5, 0.25], [0.75, 0.0]]
  for i in range(2):
    for j in range(2):
      np.testing.assert_allclose(inputs[i, j, :, 0, 0], line - centers[i][j],
                                 atol=1e-6)
      np.testing.assert_allclose(inputs[i, j, 0, :, 1], line - centers[i][j],
                                 atol=1e-6)
  np.testing.assert_array_equal(inputs[..., 2:].numpy(), 1.0)


@pytest.mark.parametrize('mode', ['expand_symmetric', 'shrink_symmetric',
                                  'expand_symmetric_xy',
                                  'shrink_symmetric_xy'])
def test_symmetric_jitter_keeps_centers(mode):
  boxes = tf.constant(_random_boxes(np.random.default_rng(3), 4, 10, 0.1,
                                    0.9))
  jittered = box_jitter.jitter_boxes(boxes, 0.3, mode, seed=[1, 2]).numpy()
  boxes = boxes.numpy()
  centers = lambda b: 0.5 * (b[..., :2] + b[..., 2:])
  np.testing.assert_allclose(centers(jittered), centers(boxes), atol=1e-5)
  sizes, new_sizes = boxes[..., 2:] - boxes[..., :2], (
      jittered[..., 2:] - jittered[..., :2])
  if mode.startswith('shrink'):
    assert np.all(new_sizes <= sizes + 1e-6)
  else:
    assert np.all(new_sizes >= sizes - 1e-6)
  assert np.all(jittered >= 0.0) and np.all(jittered <= 1.0)
  assert not np.allclose(jittered, boxes)
  if mode.endswith('_xy'):  # one shared factor while no side is capped
    np.testing.assert_allclose(new_sizes[..., 0] / sizes[..., 0],
                               new_sizes[..., 1] / sizes[..., 1], rtol=1e-4)


@pytest.mark.parametrize('mode', ['default', 'expand', 'shrink'])
def test_asymmetric_jitter_bounds(mode):
  boxes = tf.constant([[[0.2, 0.2, 0.6, 0.8]] * 50])
  jittered = tf.function(
      lambda b: box_jitter.jitter_boxes(b, 0.2, mode),
      jit_compile=True)(boxes).numpy()[0]
  half = np.array([0.2, 0.3, 0.2, 0.3])
  center = np.array([0.4, 0.5, 0.4, 0.5])
  factors = np.abs(jittered - center) / half
  low, high = {'default': (0.8, 1.2), 'expand': (1.0, 1.2),
               'shrink': (0.8, 1.0)}[mode]
  assert np.all(factors >= low - 1e-5) and np.all(factors <= high + 1e-5)
  assert np.std(factors) > 0.01
  assert box_jitter.jitter_boxes(boxes, 0.0, mode) is boxes
  with pytest.raises(ValueError, match='jitter mode'):
    box_jitter.jitter_boxes(boxes, 0.1, 'wobble')


def test_paste_ones_fills_exactly_the_box():
  boxes = tf.constant([[0.1, 0.2, 0.53, 0.71], [0.0, 0.0, 1.0, 1.0],
                       [0.42, 0.05, 0.9, 0.33]])
  height, width = 40, 30
  pasted = tf.function(mask_pasting.paste_box_masks)(
      tf.ones([3, 8, 8]), boxes, height, width).numpy()
  assert pasted.shape == (3, height, width)
  ys = np.arange(height) / (height - 1)
  xs = np.arange(width) / (width - 1)
  for mask, (y1, x1, y2, x2) in zip(pasted, boxes.numpy()):
    inside = (((ys >= y1) & (ys <= y2))[:, None] &
              ((xs >= x1) & (xs <= x2))[None, :])
    np.testing.assert_allclose(mask, inside.astype(np.float32), atol=1e-5)


def test_paste_equals_the_reverse_box_crop_and_batches():
  rng = np.random.default_rng(4)
  masks = rng.uniform(size=[2, 3, 6, 6]).astype(np.float32)
  boxes = _random_boxes(rng, 2, 3)
  pasted = mask_pasting.paste_box_masks(masks, boxes, 17, 23).numpy()
  # The same sampling by the independent gather formulation of roi_crop.
  expected = roi_crop.crop_and_resize_per_instance(
      masks, mask_pasting.reverse_boxes(boxes), (17, 23)).numpy()
  assert pasted.shape == (2, 3, 17, 23)
  np.testing.assert_allclose(pasted, expected, atol=1e-5)
  binary = mask_pasting.paste_box_masks(masks[0], boxes[0], 17, 23,
                                        threshold=0.5).numpy()
  assert binary.dtype == np.uint8
  np.testing.assert_array_equal(binary, pasted[0] > 0.5)
  empty = mask_pasting.paste_box_masks(tf.zeros([0, 6, 6]), tf.zeros([0, 4]),
                                       5, 7)
  assert empty.shape == (0, 5, 7)


def test_resize_logits_and_flatten_roundtrip():
  logits = tf.random.stateless_normal([2, 3, 4, 4], [3, 4])
  flat = instances.flatten_instances(logits)
  assert flat.shape == (6, 4, 4)
  np.testing.assert_array_equal(
      instances.unflatten_instances(flat, 2, 3).numpy(), logits.numpy())
  assert instances.resize_logits(logits, 8, 12).shape == (2, 3, 8, 12)


def test_instance_mask_weights_one_policy():
  classes = tf.constant([[1, 2, 3, 0]])
  # Instance weights when no mask weights are given, restricted to allowed.
  weights = mask_weights.instance_mask_weights(
      classes, (2, 3), weights=tf.constant([[1.0, 1.0, 1.0, 0.0]]))
  np.testing.assert_array_equal(weights.numpy(), [[0.0, 1.0, 1.0, 0.0]])
  # Given mask weights are restricted too (idempotent for pipeline ones).
  given = mask_weights.instance_mask_weights(
      classes, (2, 3), tf.constant([[1.0, 1.0, 0.0, 0.0]]),
      tf.ones([1, 4]))
  np.testing.assert_array_equal(given.numpy(), [[0.0, 1.0, 0.0, 0.0]])
  # Nothing given: real (class > 0) instances; empty allowed = all classes.
  np.testing.assert_array_equal(
      mask_weights.instance_mask_weights(classes).numpy(), [[1, 1, 1, 0]])
  # One example [N], as the input pipeline calls it.
  np.testing.assert_array_equal(mask_weights.instance_mask_weights(
      tf.constant([1, 2]), (1,), tf.constant([1.0, 1.0])).numpy(), [1, 0])


@pytest.mark.parametrize('method', mask_targets.CROP_METHODS)
def test_crop_instance_masks_by_index_every_method_agrees(method):
  rng = np.random.default_rng(5)
  masks = (rng.uniform(size=[2, 3, 20, 24]) > 0.5).astype(np.float32)
  boxes = _random_boxes(rng, 2, 4)
  indices = np.array([[2, 0, 0, 1], [1, 1, 2, 0]], np.int32)
  crops = mask_targets.crop_instance_masks(masks, boxes, 6, method,
                                           instance_indices=indices).numpy()
  picked = np.take_along_axis(masks, indices[..., None, None], axis=1)
  expected = tf.image.crop_and_resize(
      picked.reshape(8, 20, 24, 1), boxes.reshape(8, 4), tf.range(8),
      (6, 6)).numpy().reshape(2, 4, 6, 6)
  np.testing.assert_allclose(crops, expected, atol=1e-5)
  same = mask_targets.crop_instance_masks(masks, boxes[:, :3], 6, method)
  np.testing.assert_allclose(same.numpy(), mask_targets.crop_instance_masks(
      masks, boxes[:, :3], 6, 'gather').numpy(), atol=1e-5)
