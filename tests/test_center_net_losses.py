"""Tests of the CenterNet focal and L1 losses."""

import math

import numpy as np
import tensorflow as tf

from deepmac_tf.losses import center_net_losses


def test_focal_loss_hand_example():
  # p = sigmoid(0) = 0.5 on a peak; p = sigmoid(ln 3) = 0.75 where y = 0.5.
  logits = tf.constant([[0.0, math.log(3.0)]])
  targets = tf.constant([[1.0, 0.5]])
  loss = center_net_losses.penalty_reduced_logistic_focal_loss(
      logits, targets, alpha=2.0, beta=4.0).numpy()
  expected_peak = -(0.5 ** 2) * math.log(0.5)
  expected_off = -(0.5 ** 4) * (0.75 ** 2) * math.log(0.25)
  np.testing.assert_allclose(loss, [[expected_peak, expected_off]], rtol=1e-5)


def test_focal_loss_weights_and_alpha_beta():
  logits = tf.constant([[2.0, -1.0, 0.5]])
  targets = tf.constant([[1.0, 0.0, 0.25]])
  weights = tf.constant([[1.0, 0.0, 2.0]])
  loss = center_net_losses.penalty_reduced_logistic_focal_loss(
      logits, targets, weights, alpha=1.0, beta=2.0).numpy()
  p = 1.0 / (1.0 + np.exp(-np.array([2.0, -1.0, 0.5])))
  expected = [-(1 - p[0]) * np.log(p[0]), 0.0,
              -2.0 * (0.75 ** 2) * p[2] * np.log(1 - p[2])]
  np.testing.assert_allclose(loss[0], expected, rtol=1e-5)


def test_focal_loss_clips_probabilities():
  # Very confident wrong predictions stay finite: p is clipped to 1e-4.
  logits = tf.constant([[-100.0, 100.0]])
  targets = tf.constant([[1.0, 0.0]])
  loss = center_net_losses.penalty_reduced_logistic_focal_loss(
      logits, targets).numpy()
  assert np.all(np.isfinite(loss))
  np.testing.assert_allclose(loss[0, 0], -(1 - 1e-4) ** 2 * math.log(1e-4),
                             rtol=1e-3)


def test_focal_loss_bfloat16_logits_give_float32():
  loss = center_net_losses.penalty_reduced_logistic_focal_loss(
      tf.constant([[0.0]], tf.bfloat16), tf.constant([[1.0]]))
  assert loss.dtype == tf.float32


def test_l1_loss_weighted_per_row():
  predictions = tf.constant([[[1.0, 2.0], [3.0, 5.0]]])
  targets = tf.constant([[[0.0, 4.0], [3.0, 1.0]]])
  loss = center_net_losses.l1_loss(predictions, targets,
                                   tf.constant([[1.0, 0.5]])).numpy()
  np.testing.assert_allclose(loss, [[[1.0, 2.0], [0.0, 2.0]]])
