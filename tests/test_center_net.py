"""Tests of CenterNetMetaArch: heads, losses, checkpoint names, XLA, bf16."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.data.fields import InputFields
from deepmac_tf.losses import center_net_losses
from deepmac_tf.meta_architectures import center_net
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import center_net_targets

NUM_CLASSES = 3


class TinyFeatureExtractor(tf_keras.layers.Layer):
  """Test double of ``CenterNetFeatureExtractor``: strided convs, stride 4.

  Stage i applies one more dilated conv, so stages differ; the receptive
  field (~31 px with a head) covers the test boxes.
  """

  def __init__(self, num_outputs=2, channels=16, **kwargs):
    super().__init__(**kwargs)
    self.num_feature_outputs = num_outputs
    self.out_stride = 4
    self._down1 = tf_keras.layers.Conv2D(channels, 3, 2, 'same',
                                         activation='relu')
    self._down2 = tf_keras.layers.Conv2D(channels, 3, 2, 'same',
                                         activation='relu')
    self._stages = [tf_keras.layers.Conv2D(channels, 3, padding='same',
                                           dilation_rate=2, activation='relu')
                    for _ in range(num_outputs)]

  def preprocess(self, images):
    return images / 127.5 - 1.0

  def call(self, inputs, training=None):
    features = self._down2(self._down1(inputs))
    outputs = []
    for stage in self._stages:
      features = stage(features)
      outputs.append(features)
    return outputs


def _small_head_params(max_box_predictions=100):
  center = center_net_params.ObjectCenterParams(
      max_box_predictions=max_box_predictions, center_head_num_filters=(32,))
  detection = center_net_params.ObjectDetectionParams(
      scale_head_num_filters=(32,), offset_head_num_filters=(32,))
  return center, detection


def _model(num_stages=2, small_heads=True, **kwargs):
  if small_heads:
    center, detection = _small_head_params(**kwargs)
  else:
    center = center_net_params.ObjectCenterParams(**kwargs)
    detection = center_net_params.ObjectDetectionParams()
  return center_net.CenterNetMetaArch(
      is_training=True, num_classes=NUM_CLASSES,
      feature_extractor=TinyFeatureExtractor(num_stages),
      object_center_params=center, object_detection_params=detection)


def _groundtruth():
  return {
      InputFields.BOXES: tf.constant(
          [[[0.1, 0.1, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0]],
           [[0.3, 0.2, 0.9, 0.8], [0.5, 0.5, 0.7, 0.7]]]),
      InputFields.CLASSES: tf.constant([[1, 0], [2, 3]]),
      InputFields.WEIGHTS: tf.constant([[1.0, 0.0], [1.0, 1.0]]),
      InputFields.TRUE_IMAGE_SHAPE: tf.constant([[64, 64, 3], [48, 64, 3]]),
  }


def _images(batch=2):
  return tf.random.stateless_uniform([batch, 64, 64, 3], [1, 2], 0.0, 255.0)


def test_predict_shapes_and_keys():
  model = _model()
  predictions = model.predict(model.normalize_images(_images()))
  assert set(predictions) == {'object_center', 'box/scale', 'box/offset',
                              'extracted_features', 'preprocessed_inputs'}
  for key, channels in [('object_center', NUM_CLASSES), ('box/scale', 2),
                        ('box/offset', 2)]:
    assert len(predictions[key]) == 2
    for tensor in predictions[key]:
      assert tensor.shape == (2, 16, 16, channels)
      assert tensor.dtype == tf.float32
  assert len(predictions['extracted_features']) == 2
  assert predictions['preprocessed_inputs'].shape == (2, 64, 64, 3)


def test_heads_follow_odapi_structure_and_bias_init():
  model = _model(small_heads=False)
  model.predict(model.normalize_images(_images(1)))
  head = model._prediction_head_dict['object_center'][1]
  assert [type(layer).__name__ for layer in head.layers] == [
      'Conv2D', 'ReLU', 'Conv2D']
  assert head.layers[0].filters == 256 and head.layers[0].kernel_size == (3, 3)
  assert head.layers[2].kernel_size == (1, 1)
  np.testing.assert_allclose(head.layers[2].bias.numpy(), -2.19, rtol=1e-6)
  scale_head = model._prediction_head_dict['box/scale'][0]
  assert not scale_head.layers[2].bias.numpy().any()


def test_loss_keys_finite_and_weights():
  model = _model()
  predictions = model.predict(model.normalize_images(_images()))
  losses = model.loss(predictions, _groundtruth())
  assert set(losses) == {'Loss/object_center', 'Loss/box/scale',
                         'Loss/box/offset'}
  for value in losses.values():
    assert value.shape == () and value.dtype == tf.float32
    assert np.isfinite(value.numpy())
  assert model.regularization_losses() == []


def _fake_predictions(stage_values, height=8, width=8):
  """Prediction dict whose stages are constant maps (no network)."""
  return {
      'object_center': [tf.fill([2, height, width, NUM_CLASSES], v)
                        for v in stage_values],
      'box/scale': [tf.fill([2, height, width, 2], v) for v in stage_values],
      'box/offset': [tf.fill([2, height, width, 2], v) for v in stage_values],
      'preprocessed_inputs': tf.zeros([2, 4 * height, 4 * width, 3]),
  }


def test_losses_are_averaged_over_stages():
  model = _model()
  groundtruth = _groundtruth()
  groundtruth[InputFields.TRUE_IMAGE_SHAPE] = tf.constant(
      [[32, 32, 3], [20, 32, 3]])
  both = model.loss(_fake_predictions([-1.0, 0.5]), groundtruth)
  first = model.loss(_fake_predictions([-1.0]), groundtruth)
  second = model.loss(_fake_predictions([0.5]), groundtruth)
  for key in both:
    np.testing.assert_allclose(both[key].numpy(),
                               (first[key] + second[key]).numpy() / 2,
                               rtol=1e-5)


def test_box_losses_normalized_by_number_of_boxes():
  model = _model()
  groundtruth = _groundtruth()
  losses = model.loss(_fake_predictions([0.0]), groundtruth)
  # Zero predictions: the L1 sums are the targets themselves, over 3 boxes.
  _, scale, offset = center_net_targets.box_targets(
      groundtruth[InputFields.BOXES], 8, 8)
  weights = groundtruth[InputFields.WEIGHTS].numpy()[..., None]
  expected_scale = 0.1 * np.sum(scale.numpy() * weights) / 3.0
  expected_offset = 1.0 * np.sum(offset.numpy() * weights) / 3.0
  np.testing.assert_allclose(losses['Loss/box/scale'], expected_scale,
                             rtol=1e-5)
  np.testing.assert_allclose(losses['Loss/box/offset'], expected_offset,
                             rtol=1e-5)


def test_center_loss_sums_valid_area_over_boxes():
  model = _model()
  groundtruth = _groundtruth()
  groundtruth[InputFields.TRUE_IMAGE_SHAPE] = tf.constant(
      [[32, 32, 3], [16, 32, 3]])
  losses = model.loss(_fake_predictions([-1.0]), groundtruth)
  heatmap = center_net_targets.center_heatmap_targets(
      groundtruth[InputFields.BOXES], groundtruth[InputFields.CLASSES],
      groundtruth[InputFields.WEIGHTS], NUM_CLASSES, 8, 8, 0.7)
  per_pixel = center_net_losses.penalty_reduced_logistic_focal_loss(
      tf.fill([2, 8, 8, NUM_CLASSES], -1.0), heatmap).numpy()
  # Image 1 is 16 px tall: rows >= ceil(16 / 4) = 4 are padding.
  expected = (per_pixel[0].sum() + per_pixel[1, :4].sum()) / 3.0
  np.testing.assert_allclose(losses['Loss/object_center'], expected,
                             rtol=1e-5)


def test_gradients_reach_every_variable():
  model = _model()
  images = _images()
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True)
    total = tf.add_n(list(model.loss(predictions, _groundtruth()).values()))
  variables = model.trainable_variables
  # 3 heads x 2 stages x (2 kernels + 2 biases), plus 4 backbone convs.
  assert len(variables) == 3 * 2 * 4 + 4 * 2
  gradients = tape.gradient(total, variables)
  for variable, gradient in zip(variables, gradients):
    assert gradient is not None, variable.name
    assert np.any(gradient.numpy() != 0), variable.name


def test_checkpoint_object_names(tmp_path):
  model = _model()
  model.predict(model.normalize_images(_images(1)))
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  names = {name for name, _ in tf.train.list_variables(path)}
  suffix = '/.ATTRIBUTES/VARIABLE_VALUE'
  for head in ['object_center', 'box.Sscale', 'box.Soffset']:
    for stage in ['0', '1']:
      for layer in ['layer_with_weights-0', 'layer_with_weights-1']:
        for var in ['kernel', 'bias']:
          key = f'model/_prediction_head_dict/{head}/{stage}/{layer}/{var}'
          assert key + suffix in names, key
  assert any(n.startswith('model/_feature_extractor/') for n in names)


def test_subclass_adds_heads_through_hook(tmp_path):

  class WithEmbedding(center_net.CenterNetMetaArch):

    def __init__(self, dim, **kwargs):
      super().__init__(**kwargs)
      self._add_prediction_head('INSTANCE_EMBEDDING', dim)

  center, detection = _small_head_params()
  model = WithEmbedding(
      dim=5, is_training=True, num_classes=NUM_CLASSES,
      feature_extractor=TinyFeatureExtractor(2), object_center_params=center,
      object_detection_params=detection)
  with pytest.raises(ValueError, match='already exists'):
    model._add_prediction_head('INSTANCE_EMBEDDING', 5)
  predictions = model.predict(model.normalize_images(_images(1)))
  assert [p.shape for p in predictions['INSTANCE_EMBEDDING']] == [
      (1, 16, 16, 5)] * 2
  assert len(model.trainable_variables) == 3 * 2 * 4 + 4 * 2 + 2 * 4
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  names = [name for name, _ in tf.train.list_variables(path)]
  assert any(n.startswith('model/_prediction_head_dict/INSTANCE_EMBEDDING/1/'
                          'layer_with_weights-1/kernel') for n in names)


def test_restore_from_objects_detection(tmp_path):
  source = _model()
  source.predict(source.normalize_images(_images(1)))
  path = tf.train.Checkpoint(model=source).write(str(tmp_path / 'ckpt'))
  target = _model()
  target.predict(target.normalize_images(_images(1)))
  status = tf.train.Checkpoint(
      **target.restore_from_objects('detection')).read(path)
  status.assert_existing_objects_matched()
  for a, b in zip(source.feature_extractor.weights,
                  target.feature_extractor.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_forward_loss_postprocess_under_xla_match_eager():
  model = _model()
  images = _images()
  groundtruth = _groundtruth()

  def run(images, groundtruth):
    predictions = model.predict(model.normalize_images(images), training=False)
    detections = model.postprocess(
        predictions, groundtruth[InputFields.TRUE_IMAGE_SHAPE])
    return model.loss(predictions, groundtruth), detections

  eager_losses, eager_detections = run(images, groundtruth)
  xla_losses, xla_detections = tf.function(run, jit_compile=True)(
      images, groundtruth)
  for key in eager_losses:
    np.testing.assert_allclose(xla_losses[key], eager_losses[key], rtol=1e-3)
  np.testing.assert_allclose(xla_detections['detection_scores'],
                             eager_detections['detection_scores'], atol=1e-4)


def test_dynamic_shapes_in_tf_function():
  model = _model()
  spec = tf.TensorSpec

  @tf.function(input_signature=[
      spec([None, None, None, 3]), spec([None, None, 4]),
      spec([None, None], tf.int32), spec([None, 3], tf.int32)])
  def run(images, boxes, classes, true_shapes):
    predictions = model.predict(model.normalize_images(images))
    losses = model.loss(predictions, {
        InputFields.BOXES: boxes, InputFields.CLASSES: classes,
        InputFields.TRUE_IMAGE_SHAPE: true_shapes})
    return losses, model.postprocess(predictions, true_shapes)

  groundtruth = _groundtruth()
  for height, width in [(64, 64), (48, 80)]:
    losses, detections = run(
        tf.zeros([2, height, width, 3]), groundtruth[InputFields.BOXES],
        groundtruth[InputFields.CLASSES],
        groundtruth[InputFields.TRUE_IMAGE_SHAPE])
    assert all(np.isfinite(v.numpy()) for v in losses.values())
    assert detections['detection_boxes'].shape == (2, 100, 4)


def test_mixed_bfloat16_gives_finite_float32_losses():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = _model()
    predictions = model.predict(model.normalize_images(_images()), training=True)
    assert predictions['extracted_features'][0].dtype == tf.bfloat16
    assert predictions['object_center'][0].dtype == tf.float32
    losses = model.loss(predictions, _groundtruth())
    detections = model.postprocess(predictions)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  for value in losses.values():
    assert value.dtype == tf.float32 and np.isfinite(value.numpy())
  assert detections['detection_boxes'].dtype == tf.float32


def _iou(a, b):
  inter_h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  inter_w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = inter_h * inter_w
  area = lambda x: (x[2] - x[0]) * (x[3] - x[1])
  return inter / (area(a) + area(b) - inter)


def test_overfits_two_synthetic_images():
  tf.random.set_seed(0)
  boxes = np.array([[[0.125, 0.125, 0.5, 0.4375], [0.5625, 0.5, 0.9375, 0.875]],
                    [[0.25, 0.375, 0.6875, 0.8125], [0.0, 0.0, 0.0, 0.0]]],
                   np.float32)
  classes = np.array([[1, 2], [2, 0]], np.int32)
  colors = {1: (255, 60, 60), 2: (60, 60, 255)}
  images = np.full([2, 64, 64, 3], 128, np.float32)
  for b, n in zip(*np.nonzero(classes)):
    y0, x0, y1, x1 = (boxes[b, n] * 64).astype(int)
    images[b, y0:y1, x0:x1] = colors[classes[b, n]]
  images = tf.constant(images)
  groundtruth = {InputFields.BOXES: tf.constant(boxes),
                 InputFields.CLASSES: tf.constant(classes),
                 InputFields.WEIGHTS: tf.constant(
                     (classes > 0).astype(np.float32))}
  model = _model(num_stages=1, max_box_predictions=10)
  optimizer = tf_keras.optimizers.Adam(0.01)

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      predictions = model.predict(model.normalize_images(images), training=True)
      losses = model.loss(predictions, groundtruth)
      total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
    return losses['Loss/object_center']

  first = float(train_step())
  for _ in range(99):
    last = float(train_step())
  assert last < first / 20.0, (first, last)

  detections = model.postprocess(model.predict(model.normalize_images(images)))
  for b in range(2):
    for n in np.nonzero(classes[b])[0]:
      matches = [
          k for k in range(3)
          if detections['detection_classes'][b, k] == classes[b, n] - 1 and
          detections['detection_scores'][b, k] > 0.3 and
          _iou(detections['detection_boxes'][b, k].numpy(), boxes[b, n]) > 0.5]
      assert matches, (b, n, detections['detection_boxes'][b, :3].numpy())
