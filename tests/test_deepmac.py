"""Tests of DeepMACMetaArch: loss keys, partial supervision, which boxes are
cropped, postprocess / box-prompted masks, detector-free, XLA + bfloat16
(spec sections 1, 6, 8.5)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ArgumentError
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import deepmac
from deepmac_tf.ops import mask_head_inputs
from deepmac_tf.ops import mask_targets

IMAGE_SIZE = 64  # -> 16 x 16 feature maps (stride 4)
NUM_CLASSES = 3


class TinyExtractor(tf_keras.layers.Layer):
  """Two stride-4 stages of small convs (test double of a backbone)."""

  def __init__(self, num_outputs=2, **kwargs):
    super().__init__(**kwargs)
    self.num_feature_outputs = num_outputs
    self.out_stride = 4
    self._stem = tf_keras.layers.Conv2D(8, 3, 4, 'same', activation='relu')
    self._stages = [tf_keras.layers.Conv2D(8, 3, padding='same',
                                           activation='relu')
                    for _ in range(num_outputs)]

  def preprocess(self, images):
    return images / 127.5 - 1.0

  def call(self, inputs, training=None):
    features, outputs = self._stem(inputs), []
    for stage in self._stages:
      features = stage(features)
      outputs.append(features)
    return outputs


class ConstantMaskNet(tf_keras.layers.Layer):
  """Mock mask head: logit 0.9 everywhere (spec section 8.1)."""

  def call(self, instance_embedding, pixel_input, training=None):
    return tf.fill(tf.shape(pixel_input)[:3], 0.9)


def _params(**overrides):
  values = {'dim': 8, 'pixel_embedding_dim': 4, 'mask_size': 16,
            'network_type': 'resnet4', 'num_init_channels': 8}
  values.update(overrides)
  return deepmac.DeepMACParams(**values)


def _model(mock_net=False, num_stages=2, **overrides):
  center = center_net_params.ObjectCenterParams(
      max_box_predictions=5, center_head_num_filters=(16,))
  detection = center_net_params.ObjectDetectionParams(
      scale_head_num_filters=(16,), offset_head_num_filters=(16,))
  params = _params(**overrides)
  model = deepmac.DeepMACMetaArch(
      is_training=True, num_classes=NUM_CLASSES,
      feature_extractor=TinyExtractor(num_stages),
      object_center_params=center,
      object_detection_params=None if params.detector_free else detection,
      deepmac_params=params)
  if mock_net:
    model._mask_net = ConstantMaskNet()
  return model


def _groundtruth(mask_weights=((1.0, 0.0), (1.0, 1.0))):
  masks = np.zeros([2, 2, IMAGE_SIZE, IMAGE_SIZE], np.float32)
  masks[0, 0, 8:32, 8:40] = 1.0
  masks[1, 0, 20:56, 12:52] = 1.0
  masks[1, 1, 32:44, 32:44] = 1.0
  return {
      InputFields.BOXES: tf.constant(
          [[[0.1, 0.1, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0]],
           [[0.3, 0.2, 0.9, 0.8], [0.5, 0.5, 0.7, 0.7]]]),
      InputFields.CLASSES: tf.constant([[1, 0], [2, 3]]),
      InputFields.WEIGHTS: tf.constant([[1.0, 0.0], [1.0, 1.0]]),
      InputFields.INSTANCE_MASKS: tf.constant(masks),
      InputFields.MASK_WEIGHTS: tf.constant(mask_weights),
      InputFields.TRUE_IMAGE_SHAPE: tf.constant([[64, 64, 3], [48, 64, 3]]),
  }


def _images(batch=2):
  return tf.random.stateless_uniform([batch, IMAGE_SIZE, IMAGE_SIZE, 3],
                                     [1, 2], 0.0, 255.0)


def _predict(model, training=True, batch=2):
  return model.predict(model.normalize_images(_images(batch)), training=training)


class _Spy:
  """Records the boxes given to an ops function, then calls it."""

  def __init__(self, monkeypatch, module, name):
    self.boxes = []
    self._original = getattr(module, name)
    monkeypatch.setattr(module, name, self)

  def __call__(self, first, boxes, *args, **kwargs):
    self.boxes.append(tf.convert_to_tensor(boxes).numpy())
    return self._original(first, boxes, *args, **kwargs)


def test_heads_and_checkpoint_names(tmp_path):
  model = _model()
  predictions = _predict(model)
  for key, channels in [('INSTANCE_EMBEDDING', 8), ('PIXEL_EMBEDDING', 4)]:
    assert [t.shape for t in predictions[key]] == [(2, 16, 16, channels)] * 2
  model.loss(predictions, _groundtruth())
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  names = {name for name, _ in tf.train.list_variables(path)}
  for prefix in ('model/_mask_net/_net/', 'model/_mask_net/project_out/',
                 'model/_prediction_head_dict/INSTANCE_EMBEDDING/1/',
                 'model/_prediction_head_dict/PIXEL_EMBEDDING/0/',
                 'model/_prediction_head_dict/box.Sscale/0/'):
    assert any(name.startswith(prefix) for name in names), prefix


def test_loss_keys_and_weights():
  model = _model(mock_net=True, task_loss_weight=3.0)
  predictions = _predict(model)
  losses = model.loss(predictions, _groundtruth())
  assert set(losses) == {'Loss/object_center', 'Loss/box/scale',
                         'Loss/box/offset', 'Loss/deep_mask_estimation'}
  boxed = _model(mock_net=True, task_loss_weight=0.0,
                 box_consistency_loss_weight=2.0)
  losses = boxed.loss(_predict(boxed), _groundtruth())
  assert 'Loss/deep_mask_estimation' not in losses
  assert losses['Loss/deep_mask_box_consistency'].numpy() > 0


def test_loss_weights_scale_their_losses_exactly():
  predictions, gt = None, _groundtruth()
  values = []
  for weight in (1.0, 3.0):
    model = _model(mock_net=True, task_loss_weight=weight,
                   box_consistency_loss_weight=2 * weight)
    predictions = predictions or _predict(model)
    values.append(model.loss(predictions, gt))
  for key in ('Loss/deep_mask_estimation', 'Loss/deep_mask_box_consistency'):
    np.testing.assert_allclose(values[1][key].numpy(),
                               3 * values[0][key].numpy(), rtol=1e-6)


def test_mask_loss_constant_logit_and_normalization():
  """-log sigmoid(0.9) per foreground pixel, averaged over weighted ones."""
  model = _model(mock_net=True)
  predictions = _predict(model)
  gt = _groundtruth(mask_weights=((1.0, 0.0), (0.0, 0.0)))
  gt[InputFields.INSTANCE_MASKS] = tf.ones([2, 2, IMAGE_SIZE, IMAGE_SIZE])
  loss = model.loss(predictions, gt)['Loss/deep_mask_estimation']
  positive = -math.log(1 / (1 + math.exp(-0.9)))
  np.testing.assert_allclose(loss.numpy(), positive, rtol=1e-5)
  # A background instance joins: the loss is the mean over the 2 instances.
  gt[InputFields.MASK_WEIGHTS] = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  gt[InputFields.INSTANCE_MASKS] = tf.concat(
      [tf.ones([2, 1, IMAGE_SIZE, IMAGE_SIZE]),
       tf.zeros([2, 1, IMAGE_SIZE, IMAGE_SIZE])], axis=1)
  loss = model.loss(predictions, gt)['Loss/deep_mask_estimation']
  negative = positive + 0.9
  np.testing.assert_allclose(loss.numpy(), (positive + negative) / 2,
                             rtol=1e-5)


def test_partial_supervision_unweighted_instance_changes_nothing():
  model = _model()
  images = model.normalize_images(_images())
  gt_a = _groundtruth(mask_weights=((1.0, 0.0), (1.0, 0.0)))
  gt_b = dict(gt_a)
  masks = gt_a[InputFields.INSTANCE_MASKS].numpy()
  masks[1, 1] = 1.0 - masks[1, 1]  # the weight-0 instance's mask changes
  gt_b[InputFields.INSTANCE_MASKS] = tf.constant(masks)
  results = []
  for gt in (gt_a, gt_b):
    with tf.GradientTape() as tape:
      predictions = model.predict(images, training=True)
      loss = model.loss(predictions, gt,
                        training=True)['Loss/deep_mask_estimation']
    grads = tape.gradient(loss, model._mask_net.trainable_variables)
    results.append((loss.numpy(), [g.numpy() for g in grads]))
  assert results[0][0] > 0
  np.testing.assert_array_equal(results[0][0], results[1][0])
  for grad_a, grad_b in zip(results[0][1], results[1][1]):
    np.testing.assert_array_equal(grad_a, grad_b)
  # The weight-1 instance's mask does matter.
  masks[1, 0] = 1.0 - masks[1, 0]
  gt_b[InputFields.INSTANCE_MASKS] = tf.constant(masks)
  changed = model.loss(model.predict(images, training=True), gt_b,
                       training=True)['Loss/deep_mask_estimation']
  assert changed.numpy() != results[0][0]


def test_default_mask_weights_follow_allowed_classes():
  model = _model(mock_net=True, allowed_masked_classes_ids=(3,))
  gt = _groundtruth()
  del gt[InputFields.MASK_WEIGHTS]
  gt[InputFields.INSTANCE_MASKS] = tf.ones([2, 2, IMAGE_SIZE, IMAGE_SIZE])
  loss = model.loss(_predict(model), gt)['Loss/deep_mask_estimation']
  # Only instance (1, 1), class 3, is supervised.
  np.testing.assert_allclose(loss.numpy(),
                             -math.log(1 / (1 + math.exp(-0.9))), rtol=1e-5)


def test_training_crops_groundtruth_boxes_targets_jittered(monkeypatch):
  crops = _Spy(monkeypatch, mask_head_inputs, 'crop_mask_head_inputs')
  targets = _Spy(monkeypatch, mask_targets, 'crop_instance_masks')
  model = _model(max_roi_jitter_ratio=0.3, roi_jitter_mode='default')
  gt = _groundtruth()
  model.loss(_predict(model), gt, training=True)
  assert len(crops.boxes) == 2  # one mask-head call per stage
  for boxes in crops.boxes:
    np.testing.assert_array_equal(boxes, gt[InputFields.BOXES].numpy())
  assert not np.allclose(targets.boxes[0], gt[InputFields.BOXES].numpy())
  crops.boxes.clear()
  targets.boxes.clear()
  model.loss(_predict(model, training=False), gt, training=False)
  np.testing.assert_array_equal(targets.boxes[0], gt[InputFields.BOXES])


def test_use_only_last_stage_crops_once(monkeypatch):
  crops = _Spy(monkeypatch, mask_head_inputs, 'crop_mask_head_inputs')
  model = _model(use_only_last_stage=True)
  model.loss(_predict(model), _groundtruth())
  assert len(crops.boxes) == 1


def test_postprocess_crops_predicted_boxes(monkeypatch):
  model = _model(mock_net=True)
  predictions = _predict(model, training=False)
  crops = _Spy(monkeypatch, mask_head_inputs, 'crop_mask_head_inputs')
  detections = model.postprocess(predictions)
  assert detections['detection_boxes'].shape == (2, 5, 4)
  assert detections['detection_masks'].shape == (2, 5, 16, 16)
  np.testing.assert_allclose(detections['detection_masks'].numpy(),
                             1 / (1 + math.exp(-0.9)), rtol=1e-6)
  np.testing.assert_allclose(
      crops.boxes[-1], detections['detection_boxes_strided'].numpy() / 16.0,
      rtol=1e-6)


def test_predict_masks_from_boxes_maps_true_image_boxes(monkeypatch):
  model = _model()
  predictions = _predict(model, training=False, batch=1)
  crops = _Spy(monkeypatch, mask_head_inputs, 'crop_mask_head_inputs')
  boxes = tf.constant([[[0.1, 0.5, 0.3, 0.75], [0.0, 0.0, 1.0, 1.0],
                        [0.2, 0.2, 0.4, 0.4]]])
  out = model.predict_masks_from_boxes(predictions, boxes,
                                       tf.constant([[64, 32, 3]]))
  assert set(out) == {'detection_masks'}
  masks = out['detection_masks'].numpy()
  assert masks.shape == (1, 3, 16, 16)
  assert np.all((masks >= 0) & (masks <= 1))
  # x is scaled by true_w / padded_w = 32 / 64 (spec section 6 example).
  np.testing.assert_allclose(crops.boxes[-1][0, 0], [0.1, 0.25, 0.3, 0.375],
                             rtol=1e-6)


def test_full_resolution_mode_shapes():
  model = _model(predict_full_resolution_masks=True, postprocess_crop_size=32)
  predictions = _predict(model)
  losses = model.loss(predictions, _groundtruth(), training=True)
  assert np.isfinite(losses['Loss/deep_mask_estimation'].numpy())
  assert model.postprocess(predictions)['detection_masks'].shape == (
      2, 5, 32, 32)


def test_detector_free_trains_mask_branch_only():
  model = _model(detector_free=True)
  assert set(model._prediction_head_dict) == {'INSTANCE_EMBEDDING',
                                              'PIXEL_EMBEDDING'}
  optimizer = tf_keras.optimizers.Adam(1e-2)
  images, gt = model.normalize_images(_images()), _groundtruth()

  def step():
    with tf.GradientTape() as tape:
      losses = model.loss(model.predict(images, training=True), gt,
                          training=True)
      total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    grads = tape.gradient(total, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return losses, grads

  losses, grads = step()
  assert set(losses) == {'Loss/deep_mask_estimation'}
  assert all(g is not None for g in grads)
  first = losses['Loss/deep_mask_estimation'].numpy()
  for _ in range(5):
    losses, _ = step()
  assert losses['Loss/deep_mask_estimation'].numpy() < first
  predictions = model.predict(images, training=False)
  masks = model.predict_masks_from_boxes(predictions, gt[InputFields.BOXES])
  assert masks['detection_masks'].shape == (2, 2, 16, 16)
  with pytest.raises(ValueError, match='detector-free'):
    model.postprocess(predictions)


def test_construction_errors():
  with pytest.raises(ConfigError, match='object_detection_task'):
    deepmac.DeepMACMetaArch(
        True, NUM_CLASSES, TinyExtractor(),
        center_net_params.ObjectCenterParams(), None, _params())
  with pytest.raises(ArgumentError, match='network_type'):
    _model(network_type='hourglass9000')


@pytest.fixture
def mixed_bfloat16():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  yield
  tf_keras.mixed_precision.set_global_policy('float32')


def test_xla_mixed_bfloat16_forward_loss_postprocess(mixed_bfloat16):
  del mixed_bfloat16
  model = _model(num_stages=1, box_consistency_loss_weight=1.0,
                 max_roi_jitter_ratio=0.1)
  images, gt = model.normalize_images(_images()), _groundtruth()

  @tf.function(jit_compile=True)
  def run():
    with tf.GradientTape() as tape:
      predictions = model.predict(images, training=True)
      losses = model.loss(predictions, gt, training=True)
      total = tf.add_n(list(losses.values()))
    grads = tape.gradient(total, model._mask_net.trainable_variables)
    return losses, grads, model.postprocess(predictions)

  losses, grads, detections = run()
  assert model._mask_net.compute_dtype == 'bfloat16'
  for value in losses.values():
    assert value.dtype == tf.float32 and np.isfinite(value.numpy())
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  masks = detections['detection_masks']
  assert masks.dtype == tf.float32 and masks.shape == (2, 5, 16, 16)
  assert np.all(np.isfinite(masks.numpy()))
