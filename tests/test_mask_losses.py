"""Tests of the Deep-MAC mask losses (spec sections 4.1-4.3, 8.5)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.losses import mask_losses
from deepmac_tf.meta_architectures import deepmac_losses

SIGMOID = mask_losses.MaskClassificationLoss()
DICE = mask_losses.MaskClassificationLoss('dice')


def _sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


def _ce(labels, logits):
  return tf.nn.sigmoid_cross_entropy_with_logits(
      labels=tf.constant(labels, tf.float32),
      logits=tf.constant(logits, tf.float32)).numpy()


def test_sigmoid_mask_loss_constant_logit():
  logits = tf.fill([1, 2, 16, 16], 0.9)
  loss = mask_losses.mask_prediction_loss(SIGMOID, logits,
                                          tf.ones([1, 2, 16, 16]))
  np.testing.assert_allclose(loss.numpy(), [[-math.log(_sigmoid(0.9))] * 2],
                             rtol=1e-5)


def test_dice_mask_loss_all_ones():
  loss = mask_losses.mask_prediction_loss(DICE, tf.fill([1, 2, 16, 16], 0.9),
                                          tf.ones([1, 2, 16, 16]))
  p = _sigmoid(0.9)
  np.testing.assert_allclose(loss.numpy(), [[1 - 2 * p / (1 + p)] * 2],
                             rtol=1e-3)


def test_dice_options():
  probs = tf.constant([[0.5, 0.5, 0.0, 1.0]])
  targets = tf.constant([[1.0, 0.0, 0.0, 1.0]])
  plain = mask_losses.dice_loss(probs, targets,
                                is_prediction_probability=True)
  np.testing.assert_allclose(plain.numpy(), [1 - 2 * 1.5 / (2.0 + 2.0)])
  squared = mask_losses.dice_loss(probs, targets, squared_normalization=True,
                                  is_prediction_probability=True)
  np.testing.assert_allclose(squared.numpy(), [1 - 2 * 1.25 / (1.5 + 2.0)])
  weighted = mask_losses.dice_loss(probs, targets,
                                   weights=tf.constant([[1.0, 0, 0, 1]]),
                                   is_prediction_probability=True)
  np.testing.assert_allclose(weighted.numpy(), [1 - 2 * 1.5 / (1.5 + 2.0)])


def test_losses_are_float32_for_bfloat16_inputs():
  logits = tf.cast(tf.fill([2, 3, 8, 8], 0.9), tf.bfloat16)
  targets = tf.ones([2, 3, 8, 8], tf.bfloat16)
  for loss in (SIGMOID, DICE):
    value = mask_losses.mask_prediction_loss(loss, logits, targets)
    assert value.dtype == tf.float32 and value.shape == (2, 3)
  box = mask_losses.box_consistency_loss(SIGMOID, logits, targets)
  assert box.dtype == tf.float32
  total = mask_losses.weighted_mask_loss(
      tf.cast(box, tf.bfloat16), tf.ones([2, 3], tf.bfloat16))
  assert total.dtype == tf.float32


def test_empty_instances():
  for loss in (SIGMOID, DICE):
    value = mask_losses.mask_prediction_loss(loss, tf.zeros([1, 0, 16, 16]),
                                             tf.zeros([1, 0, 16, 16]))
    assert value.shape == (1, 0)
  value = deepmac_losses.box_consistency_loss(
      SIGMOID, tf.zeros([1, 0, 4]), tf.zeros([1, 0, 4]),
      tf.zeros([1, 0, 32, 32]), 16)
  assert value.shape == (1, 0)
  value = deepmac_losses.mask_estimation_loss(
      SIGMOID, tf.zeros([1, 0, 16, 16]), tf.zeros([1, 0, 64, 64]),
      tf.zeros([1, 0, 4]))
  assert value.shape == (1, 0)
  assert mask_losses.weighted_mask_loss(tf.zeros([1, 0]),
                                        tf.zeros([1, 0])).numpy() == 0.0


def test_weighted_mask_loss_is_the_partial_supervision_point():
  losses = tf.constant([[1.0, 2.0, np.nan], [4.0, np.inf, 8.0]])
  weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
  np.testing.assert_allclose(
      mask_losses.weighted_mask_loss(losses, weights).numpy(), 7.0 / 3)
  assert mask_losses.weighted_mask_loss(
      losses, tf.zeros([2, 3])).numpy() == 0.0
  # Fractional weights sum below 1: the normalizer is clamped at 1.
  np.testing.assert_allclose(mask_losses.weighted_mask_loss(
      tf.constant([[2.0]]), tf.constant([[0.5]])).numpy(), 1.0)
  per_instance = tf.Variable([[1.0, 2.0, 3.0]])
  with tf.GradientTape() as tape:
    total = mask_losses.weighted_mask_loss(per_instance,
                                           tf.constant([[1.0, 0.0, 1.0]]))
  np.testing.assert_allclose(tape.gradient(total, per_instance).numpy(),
                             [[0.5, 0.0, 0.5]])


def test_aggregations():
  loss = tf.constant([[1.0, 2.0, 3.0, 6.0]])
  targets = tf.constant([[1.0, 1.0, 0.0, 0.0]])
  agg = mask_losses.aggregate_pixel_loss
  np.testing.assert_allclose(agg(loss, targets).numpy(), [3.0])
  np.testing.assert_allclose(
      agg(loss, targets, 'normalize_groundtruth_count').numpy(), [6.0])
  np.testing.assert_allclose(
      agg(loss, targets, 'normalize_balanced').numpy(), [1.5 + 4.5])
  with pytest.raises(ValueError, match='normalize'):
    agg(loss, targets, 'normalize_median')
  with pytest.raises(ValueError, match='dice'):
    mask_losses.instance_loss(DICE, loss, targets, 'normalize_balanced')
  with pytest.raises(ValueError, match='kind'):
    mask_losses.MaskClassificationLoss('hinge')


def test_box_consistency_crop_mode_spec():
  logits = np.zeros([1, 1, 32, 32], np.float32)
  logits[0, 0, :24, :24] = 1.0
  loss = tf.function(deepmac_losses.box_consistency_loss, jit_compile=True,
                     )(SIGMOID, tf.constant([[[0.0, 0.0, 0.49, 1.0]]]),
                       tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
                       tf.constant(logits), 16)
  yloss = _ce([1.0] * 8 + [0.0] * 8, [1.0] * 12 + [0.0] * 4)
  xloss = _ce([1.0] * 16, [1.0] * 12 + [0.0] * 4)
  np.testing.assert_allclose(loss.numpy(), [[np.mean(yloss + xloss)]],
                             rtol=1e-5)


def test_box_consistency_dice_crop_mode_spec():
  logits = np.full([1, 1, 32, 32], -1e10, np.float32)
  logits[0, 0, :24, :24] = 1e10
  loss = deepmac_losses.box_consistency_loss(
      DICE, tf.constant([[[0.0, 0.0, 0.49, 1.0]]]),
      tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), tf.constant(logits), 16)
  np.testing.assert_allclose(loss.numpy(), [[(1 - 6.0 / 7) + 0.2]],
                             rtol=1e-5)


def test_box_consistency_dice_full_resolution_spec():
  logits = np.full([1, 1, 32, 32], -1e10, np.float32)
  logits[0, 0, :16, :] = 1e10
  boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
  loss = deepmac_losses.box_consistency_loss(
      DICE, boxes, boxes, tf.constant(logits), 16, full_resolution=True)
  np.testing.assert_allclose(loss.numpy(), [[1.0 / 3]], rtol=1e-5)


def test_box_consistency_tightness_spec():
  logits = np.full([1, 1, 8, 8], -1e10, np.float32)
  logits[0, 0, :4, :4] = 1e10
  boxes = tf.constant([[[0.0, 0.0, 0.49, 0.49]]])
  loss = deepmac_losses.box_consistency_loss(
      SIGMOID, boxes, boxes, tf.constant(logits), 8, full_resolution=True,
      tightness=True)
  np.testing.assert_allclose(loss.numpy(), [[0.0]], atol=1e-6)


def test_box_consistency_tightness_uses_logits_inside_the_box():
  # Logits 2 outside the box, -1 inside: the plain projection sees 2 on the
  # box's rows and columns, the tight one sees max(-1 * 1, 2 * 0) = 0.
  logits = np.full([1, 1, 4, 4], 2.0, np.float32)
  logits[0, 0, :2, :2] = -1.0
  box_masks = np.zeros([1, 1, 4, 4], np.float32)
  box_masks[0, 0, :2, :2] = 1.0
  plain = mask_losses.box_consistency_loss(SIGMOID, logits, box_masks)
  tight = mask_losses.box_consistency_loss(SIGMOID, logits, box_masks,
                                           tightness=True)
  profile = [1.0, 1.0, 0.0, 0.0]
  np.testing.assert_allclose(plain.numpy(),
                             [[2 * np.mean(_ce(profile, [2.0] * 4))]],
                             rtol=1e-5)
  np.testing.assert_allclose(
      tight.numpy(), [[2 * np.mean(_ce(profile, [0.0, 0.0, 2.0, 2.0]))]],
      rtol=1e-5)


def test_box_consistency_groundtruth_count_spec():
  logits = np.zeros([1, 2, 32, 32], np.float32)
  logits[0, 0, :16, :16] = 1.0
  logits[0, 1, :8, :8] = 1.0
  boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.49, 0.49]]])
  loss = deepmac_losses.box_consistency_loss(
      SIGMOID, boxes, boxes, tf.constant(logits), 32, full_resolution=True,
      normalize='normalize_groundtruth_count').numpy()
  first = np.sum(_ce([1.0] * 32, [1.0] * 16 + [0.0] * 16)) / 32
  second = np.sum(_ce([1.0] * 16 + [0.0] * 16, [1.0] * 8 + [0.0] * 24)) / 16
  np.testing.assert_allclose(loss, [[2 * first, 2 * second]], rtol=1e-5)


def test_box_consistency_balanced_spec():
  boxes = tf.constant([[[0.0, 0.0, 0.49, 0.49]]])
  loss = deepmac_losses.box_consistency_loss(
      SIGMOID, boxes, boxes, tf.ones([1, 1, 32, 32]), 32,
      full_resolution=True, normalize='normalize_balanced').numpy()
  per_axis = np.sum(_ce([0.0] * 16 + [1.0] * 16, [1.0] * 32)) / 16
  np.testing.assert_allclose(loss, [[2 * per_axis]], rtol=1e-5)


def test_mask_estimation_targets_cropped_at_boxes_for_crop():
  masks = np.zeros([1, 2, 64, 64], np.float32)
  masks[0, 0, :32, :32] = 1.0
  masks[0, 1, :, :] = 1.0
  boxes = tf.constant([[[0.0, 0.0, 0.49, 0.49], [0.0, 0.0, 1.0, 1.0]]])
  logits = tf.fill([1, 2, 8, 8], 20.0)
  loss = deepmac_losses.mask_estimation_loss(SIGMOID, logits, masks, boxes)
  np.testing.assert_allclose(loss.numpy(), [[_ce(1.0, 20.0)] * 2], atol=1e-6)
  # Full resolution: logits are resized to the masks' size.
  full = deepmac_losses.mask_estimation_loss(
      SIGMOID, tf.fill([1, 2, 16, 16], 0.9), np.ones([1, 2, 64, 64]), boxes,
      full_resolution=True)
  np.testing.assert_allclose(full.numpy(), [[-math.log(_sigmoid(0.9))] * 2],
                             rtol=1e-5)
  assert not deepmac_losses.mask_estimation_loss(
      SIGMOID, logits, None, boxes).numpy().any()


def test_per_instance_no_class_overlap_spec():
  boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.4, 0.4]]])
  weights = tf.ones([1, 2])
  same = deepmac_losses.per_instance_no_class_overlap(
      tf.constant([[1, 1]]), weights, boxes, 2, 2).numpy()
  np.testing.assert_array_equal(same[0, 1], [[0, 1], [1, 1]])
  different = deepmac_losses.per_instance_no_class_overlap(
      tf.constant([[1, 2]]), weights, boxes, 2, 2).numpy()
  np.testing.assert_array_equal(different, np.ones([1, 2, 2, 2]))
  ignored = deepmac_losses.per_instance_no_class_overlap(
      tf.constant([[1, 1]]), tf.constant([[1.0, 0.0]]), boxes, 2, 2).numpy()
  np.testing.assert_array_equal(ignored, np.ones([1, 2, 2, 2]))
  loss = deepmac_losses.mask_estimation_loss(
      SIGMOID, tf.zeros([2, 3, 16, 16]), tf.ones([2, 3, 32, 32]),
      tf.tile(boxes[:, :1], [2, 3, 1]),
      no_overlap_args=(tf.ones([2, 3], tf.int32), tf.ones([2, 3])))
  assert loss.shape == (2, 3)
