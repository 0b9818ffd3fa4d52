"""Tests of CenterNet postprocess on hand-made heatmaps (no network)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.meta_architectures import center_net
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import center_net_postprocess


class _StubFeatureExtractor(tf_keras.layers.Layer):
  """Only what postprocess needs: stride 4, one stage."""
  num_feature_outputs = 1
  out_stride = 4


def _model(max_box_predictions=5, kernel=3, detection=True, num_classes=3):
  center = center_net_params.ObjectCenterParams(
      max_box_predictions=max_box_predictions,
      peak_max_pool_kernel_size=kernel)
  return center_net.CenterNetMetaArch(
      is_training=False, num_classes=num_classes,
      feature_extractor=_StubFeatureExtractor(), object_center_params=center,
      object_detection_params=(center_net_params.ObjectDetectionParams()
                               if detection else None))


def _sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


def _hand_predictions():
  """64 x 64 padded input -> 16 x 16 grid, 3 classes, known peaks."""
  logits = np.full([1, 16, 16, 3], -10.0, np.float32)
  scale = np.zeros([1, 16, 16, 2], np.float32)
  offset = np.zeros([1, 16, 16, 2], np.float32)
  logits[0, 3, 4, 1] = 2.0
  scale[0, 3, 4] = (4.0, 6.0)
  offset[0, 3, 4] = (0.5, 0.25)
  logits[0, 3, 5, 1] = 1.0  # Next to a stronger peak: suppressed by 3x3.
  logits[0, 9, 12, 0] = 0.0
  scale[0, 9, 12] = (2.0, 2.0)
  logits[0, 14, 2, 2] = 3.0  # In the padding when the true height is 48.
  return {
      'object_center': [tf.constant(logits)],
      'box/scale': [tf.constant(scale)],
      'box/offset': [tf.constant(offset)],
      'preprocessed_inputs': tf.zeros([1, 64, 64, 3]),
  }


def test_known_peaks_give_boxes_classes_scores():
  detections = _model().postprocess(_hand_predictions(),
                                    tf.constant([[48, 64, 3]]))
  assert detections['detection_boxes'].shape == (1, 5, 4)
  assert detections['detection_multiclass_scores'].shape == (1, 5, 3)
  scores = detections['detection_scores'].numpy()[0]
  np.testing.assert_allclose(scores[:2], [_sigmoid(2.0), 0.5], rtol=1e-5)
  assert scores[2] == pytest.approx(_sigmoid(-10.0), rel=1e-4)
  assert detections['detection_classes'].dtype == tf.int32
  np.testing.assert_array_equal(detections['detection_classes'][0, :2], [1, 0])
  # Peak 1: center (3.5, 4.25), size (4, 6) -> strided [1.5, 1.25, 5.5, 7.25].
  np.testing.assert_allclose(detections['detection_boxes_strided'][0, :2],
                             [[1.5, 1.25, 5.5, 7.25], [8.0, 11.0, 10.0, 13.0]],
                             rtol=1e-6)
  # Normalized to the TRUE image (48 x 64), not the padded 64 x 64.
  np.testing.assert_allclose(
      detections['detection_boxes'][0, :2],
      [[1.5 * 4 / 48, 1.25 * 4 / 64, 5.5 * 4 / 48, 7.25 * 4 / 64],
       [8.0 * 4 / 48, 11.0 * 4 / 64, 10.0 * 4 / 48, 13.0 * 4 / 64]],
      rtol=1e-5)
  np.testing.assert_allclose(
      detections['detection_multiclass_scores'][0, 0],
      [_sigmoid(-10.0), _sigmoid(2.0), _sigmoid(-10.0)], rtol=1e-4)
  assert detections['num_detections'].numpy().tolist() == [5]


def test_without_true_shape_the_padded_image_is_used():
  detections = _model().postprocess(_hand_predictions())
  assert detections['detection_classes'][0, 0] == 2
  assert float(detections['detection_scores'][0, 0]) == pytest.approx(
      _sigmoid(3.0))
  np.testing.assert_allclose(detections['detection_boxes'][0, 1],
                             [1.5 / 16, 1.25 / 16, 5.5 / 16, 7.25 / 16],
                             rtol=1e-5)


def test_max_pool_kernel_one_keeps_adjacent_peak():
  detections = _model(kernel=1).postprocess(_hand_predictions(),
                                            tf.constant([[48, 64, 3]]))
  np.testing.assert_allclose(detections['detection_scores'][0, :3],
                             [_sigmoid(2.0), _sigmoid(1.0), 0.5], rtol=1e-5)
  assert detections['detection_classes'][0, 1] == 1


def test_max_box_predictions_is_top_k():
  detections = _model(max_box_predictions=2).postprocess(
      _hand_predictions(), tf.constant([[48, 64, 3]]))
  assert detections['detection_scores'].shape == (1, 2)
  assert detections['detection_boxes'].shape == (1, 2, 4)


def test_boxes_are_clipped_and_sizes_non_negative():
  logits = np.full([1, 4, 4, 1], -5.0, np.float32)
  logits[0, 0, 0, 0] = 5.0
  logits[0, 3, 3, 0] = 4.0
  scale = np.zeros([1, 4, 4, 2], np.float32)
  scale[0, 0, 0] = (4.0, 4.0)
  scale[0, 3, 3] = (-3.0, 10.0)
  predictions = {'object_center': [tf.constant(logits)],
                 'box/scale': [tf.constant(scale)],
                 'box/offset': [tf.zeros([1, 4, 4, 2])],
                 'preprocessed_inputs': tf.zeros([1, 16, 16, 3])}
  detections = _model(max_box_predictions=2, num_classes=1).postprocess(
      predictions)
  np.testing.assert_allclose(detections['detection_boxes_strided'][0],
                             [[0.0, 0.0, 2.0, 2.0], [3.0, 0.0, 3.0, 4.0]])
  np.testing.assert_allclose(detections['detection_boxes'][0],
                             [[0.0, 0.0, 0.5, 0.5], [0.75, 0.0, 0.75, 1.0]])


def test_top_k_pads_when_fewer_cells_than_k():
  heatmap = tf.constant([[[[0.9], [0.2]], [[0.3], [0.4]]]])
  scores, rows, cols, classes = center_net_postprocess.top_k_peaks(
      heatmap, max_pool_kernel_size=1, k=6)
  np.testing.assert_allclose(scores[0], [0.9, 0.4, 0.3, 0.2, 0.0, 0.0],
                             rtol=1e-6)
  np.testing.assert_array_equal(rows[0, :4], [0, 1, 1, 0])
  np.testing.assert_array_equal(cols[0, :4], [0, 1, 0, 1])
  np.testing.assert_array_equal(classes[0], [0] * 6)


def test_top_k_flat_index_decoding_with_classes():
  heatmap = np.zeros([2, 3, 5, 4], np.float32)
  heatmap[0, 2, 3, 1] = 0.8
  heatmap[1, 1, 4, 3] = 0.7
  scores, rows, cols, classes = center_net_postprocess.top_k_peaks(
      tf.constant(heatmap), max_pool_kernel_size=3, k=1)
  np.testing.assert_allclose(scores[:, 0], [0.8, 0.7], rtol=1e-6)
  assert rows.numpy()[:, 0].tolist() == [2, 1]
  assert cols.numpy()[:, 0].tolist() == [3, 4]
  assert classes.numpy()[:, 0].tolist() == [1, 3]


def test_without_detection_params_no_boxes():
  predictions = _hand_predictions()
  del predictions['box/scale'], predictions['box/offset']
  detections = _model(detection=False).postprocess(predictions)
  assert 'detection_boxes' not in detections
  assert detections['detection_scores'].shape == (1, 5)


def test_postprocess_under_xla():
  model = _model()
  run = tf.function(model.postprocess, jit_compile=True)
  detections = run(_hand_predictions(), tf.constant([[48, 64, 3]]))
  np.testing.assert_array_equal(detections['detection_classes'][0, :2], [1, 0])
  np.testing.assert_allclose(detections['detection_boxes_strided'][0, 0],
                             [1.5, 1.25, 5.5, 7.25], rtol=1e-6)
