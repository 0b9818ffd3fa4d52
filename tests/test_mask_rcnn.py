"""Deep-MARC meta-architecture: shapes, gradients, partial supervision and
which boxes train the mask head."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.meta_architectures import mask_rcnn
from deepmac_tf.meta_architectures import mask_rcnn_losses as losses_lib
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.meta_architectures import mask_rcnn_targets

SIZE = 64
NUM_CLASSES = 3


def _params(**mask_kwargs):
  mask = dict(network_type='mask_rcnn_fcn', num_init_channels=8, crop_size=8,
              mask_size=16, num_sampled_masks=6)
  mask.update(mask_kwargs)
  return params_lib.MaskRCNNParams(
      num_classes=NUM_CLASSES, backbone='resnet10_fpn', fpn_num_filters=16,
      rpn_num_filters=16, box_head_num_convs=1, box_head_num_filters=16,
      box_head_fc_dims=32, num_sampled_rois=16,
      rpn_num_proposals=24, rpn_test_num_proposals=24, max_num_detections=5,
      mask_head=params_lib.MaskHeadParams(**mask))


def _groundtruth(mask_weights=(1.0, 1.0, 0.0), seed=0):
  rng = np.random.default_rng(seed)
  masks = np.zeros([1, 3, SIZE, SIZE], np.float32)
  masks[0, 0, 8:30, 8:30] = 1
  masks[0, 1, 30:60, 20:50] = rng.uniform(size=(30, 30)) > 0.5
  return {
      'groundtruth_boxes': tf.constant(
          [[[8, 8, 30, 30], [30, 20, 60, 50], [0, 0, 0, 0]]],
          tf.float32) / SIZE,
      'groundtruth_classes': tf.constant([[1, 2, 0]]),
      'groundtruth_instance_masks': tf.constant(masks),
      'groundtruth_instance_mask_weights': tf.constant([mask_weights]),
      'true_image_shape': tf.constant([[SIZE, SIZE, 3]]),
  }


@pytest.fixture(scope='module')
def model():
  tf.random.set_seed(1)
  return mask_rcnn.MaskRCNNMetaArch(True, _params())


@pytest.fixture(scope='module')
def images():
  return tf.random.stateless_uniform([1, SIZE, SIZE, 3], (1, 2), 0, 255)


def _with_mask_params(model, **changes):
  model._params = dataclasses.replace(  # pylint: disable=protected-access
      model.params,
      mask_head=dataclasses.replace(model.params.mask_head, **changes))


def test_losses_and_postprocess_shapes(model, images):
  _with_mask_params(model, box_source=params_lib.GROUNDTRUTH)
  gt = _groundtruth()
  predictions = model.predict(model.normalize_images(images), training=True)
  losses = model.loss(predictions, gt, training=True)
  assert set(losses) == set(losses_lib.LOSS_NAMES)
  for value in losses.values():
    assert value.shape == () and value.dtype == tf.float32
    assert np.isfinite(value.numpy())
  predictions = model.predict(model.normalize_images(images), training=False)
  detections = model.postprocess(predictions, tf.constant([[48, SIZE, 3]]))
  assert detections['detection_boxes'].shape == (1, 5, 4)
  assert detections['detection_scores'].shape == (1, 5)
  assert detections['detection_classes'].dtype == tf.int32
  assert (detections['detection_classes'].numpy() < NUM_CLASSES).all()
  assert detections['num_detections'].shape == (1,)
  assert detections['detection_masks'].shape == (1, 5, 16, 16)
  boxes = detections['detection_boxes'].numpy()
  assert boxes.min() >= 0 and boxes.max() <= 1
  masks = model.predict_masks_from_boxes(
      predictions, gt['groundtruth_boxes'][:, :2])['detection_masks']
  assert masks.shape == (1, 2, 16, 16)
  assert 0 <= masks.numpy().min() and masks.numpy().max() <= 1


def test_groundtruth_in_predict_equals_groundtruth_in_loss(model, images):
  gt = _groundtruth()
  preprocessed = model.normalize_images(images)
  tf.random.set_seed(3)
  with_gt = model.loss(model.predict(preprocessed, training=True,
                                     groundtruth=gt), gt, training=True)
  tf.random.set_seed(3)
  lazily = model.loss(model.predict(preprocessed, training=True), gt,
                      training=True)
  for name in with_gt:
    np.testing.assert_allclose(with_gt[name], lazily[name], rtol=1e-5)


def test_gradients_reach_the_mask_head(model, images):
  gt = _groundtruth()
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True)
    mask_loss = model.loss(predictions, gt, training=True)[losses_lib.LOSS_MASK]
  head_vars = model._mask_head.trainable_variables  # pylint: disable=protected-access
  grads = tape.gradient(mask_loss, head_vars)
  assert head_vars and all(g is not None for g in grads)
  assert all(np.abs(g.numpy()).sum() > 0 for g in grads)


def _mask_loss_and_grads(model, images, gt):
  tf.random.set_seed(5)
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True)
    loss = model.loss(predictions, gt, training=True)[losses_lib.LOSS_MASK]
  grads = tape.gradient(loss, model._mask_head.trainable_variables)  # pylint: disable=protected-access
  return loss.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize('source', params_lib.BOX_SOURCES)
def test_instance_with_mask_weight_zero_changes_nothing(model, images, source):
  _with_mask_params(model, box_source=source)
  base = _groundtruth(mask_weights=(1.0, 0.0, 0.0), seed=0)
  other = dict(base)
  other['groundtruth_instance_masks'] = _groundtruth(
      seed=1)['groundtruth_instance_masks']  # instance 1 differs
  loss_a, grads_a = _mask_loss_and_grads(model, images, base)
  loss_b, grads_b = _mask_loss_and_grads(model, images, other)
  assert loss_a == pytest.approx(loss_b, rel=1e-6)
  for a, b in zip(grads_a, grads_b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
  # The same change with weight 1 does change the loss.
  base['groundtruth_instance_mask_weights'] = tf.constant([[1.0, 1.0, 0.0]])
  other['groundtruth_instance_mask_weights'] = tf.constant([[1.0, 1.0, 0.0]])
  assert (_mask_loss_and_grads(model, images, base)[0] !=
          pytest.approx(_mask_loss_and_grads(model, images, other)[0]))
  _with_mask_params(model, box_source=params_lib.GROUNDTRUTH)


class _RecordingAligner(tf.Module):
  """Wraps the mask ROI aligner and keeps the boxes it was given."""

  def __init__(self, aligner):
    super().__init__()
    self.aligner, self.boxes = aligner, []

  def __call__(self, features, boxes, training=None):
    self.boxes.append(boxes.numpy())
    return self.aligner(features, boxes, training=training)


def _second_stage(model, images, source):
  _with_mask_params(model, box_source=source)
  recorder = _RecordingAligner(model._mask_roi_aligner)  # pylint: disable=protected-access
  model._mask_roi_aligner = recorder  # pylint: disable=protected-access
  try:
    predictions = model.predict(model.normalize_images(images), training=False)
    tf.random.set_seed(11)
    # training=False: batch norm in inference mode, so the mask logits of
    # one box do not depend on which other boxes are in the batch.
    out = model.second_stage_for_training(predictions, _groundtruth(),
                                          training=False)
  finally:
    model._mask_roi_aligner = recorder.aligner  # pylint: disable=protected-access
    _with_mask_params(model, box_source=params_lib.GROUNDTRUTH)
  assert len(recorder.boxes) == 1
  return recorder.boxes[0], out


def test_box_source_decides_exactly_which_boxes_the_mask_crop_sees(
    model, images):
  gt_boxes, gt_out = _second_stage(model, images, params_lib.GROUNDTRUTH)
  prop_boxes, prop_out = _second_stage(model, images, params_lib.PROPOSALS)
  both_boxes, both_out = _second_stage(
      model, images, params_lib.PROPOSALS_AND_GROUNDTRUTH)
  expected_gt, _ = mask_rcnn_targets.groundtruth_in_pixels(
      _groundtruth()['groundtruth_boxes'], _groundtruth()['groundtruth_classes'],
      SIZE, SIZE)
  np.testing.assert_allclose(gt_boxes, expected_gt.numpy())
  # Proposals: sampled foreground ROIs (matched to an object), in order.
  rois = prop_out[mask_rcnn.SAMPLED_ROIS].numpy()[0]
  foreground = prop_out[mask_rcnn.CLASS_TARGETS].numpy()[0] > 0
  num_masks = min(6, rois.shape[0])
  assert prop_boxes.shape == (1, num_masks, 4)
  picked = rois[foreground][:num_masks]
  np.testing.assert_allclose(prop_boxes[0, :len(picked)], picked)
  weights = prop_out[mask_rcnn.MASK_WEIGHTS].numpy()[0]
  assert (weights[len(picked):] == 0).all()
  # Both: the groundtruth boxes, then the same proposals; the mask head's
  # output on each box is the same whichever source brought it.
  np.testing.assert_allclose(both_boxes[:, :3], gt_boxes)
  np.testing.assert_allclose(both_boxes[:, 3:], prop_boxes)
  logits = both_out[mask_rcnn.MASK_LOGITS].numpy()
  np.testing.assert_allclose(logits[:, :3], gt_out[mask_rcnn.MASK_LOGITS],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[:, 3:], prop_out[mask_rcnn.MASK_LOGITS],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      both_out[mask_rcnn.MASK_TARGETS].numpy()[:, :3],
      gt_out[mask_rcnn.MASK_TARGETS])


def test_inference_masks_use_the_detected_boxes(model, images):
  recorder = _RecordingAligner(model._mask_roi_aligner)  # pylint: disable=protected-access
  model._mask_roi_aligner = recorder  # pylint: disable=protected-access
  try:
    predictions = model.predict(model.normalize_images(images), training=False)
    detections = model.postprocess(predictions)
  finally:
    model._mask_roi_aligner = recorder.aligner  # pylint: disable=protected-access
  np.testing.assert_allclose(recorder.boxes[0] / SIZE,
                             detections['detection_boxes'], atol=1e-6)


def test_class_specific_masks_pick_the_class_channel(images):
  model = mask_rcnn.MaskRCNNMetaArch(True, _params(class_agnostic=False))
  assert model._mask_head.num_outputs == NUM_CLASSES  # pylint: disable=protected-access
  predictions = model.predict(model.normalize_images(images), training=False)
  detections = model.postprocess(predictions)
  assert detections['detection_masks'].shape == (1, 5, 16, 16)
  boxes = tf.constant([[[0.1, 0.1, 0.5, 0.5]] * NUM_CLASSES])
  per_class = model.predict_masks_from_boxes(
      predictions, boxes, classes=tf.constant([list(range(NUM_CLASSES))])
  )['detection_masks'].numpy()[0]
  assert not np.allclose(per_class[0], per_class[1])
  losses = model.loss(model.predict(model.normalize_images(images), training=True),
                      _groundtruth(), training=True)
  assert np.isfinite(losses[losses_lib.LOSS_MASK].numpy())


def test_box_only_model_has_no_mask_outputs(images):
  params = dataclasses.replace(_params(), mask_head=None)
  model = mask_rcnn.MaskRCNNMetaArch(True, params)
  predictions = model.predict(model.normalize_images(images), training=True)
  losses = model.loss(predictions, _groundtruth(), training=True)
  assert losses_lib.LOSS_MASK not in losses
  detections = model.postprocess(model.predict(model.normalize_images(images)))
  assert 'detection_masks' not in detections


@pytest.mark.parametrize('override,message', [
    ('deepmarc_mask_head { network_type: "hourglas20" }',
     r'deepmarc_mask_head\.network_type: unknown mask head'),
    ('deepmarc_mask_head { network_type: "cond_inst2" }',
     r'deepmarc_mask_head\.network_type: .*parameter-free'),
    ('deepmarc_mask_head { network_type: "hourglass52" crop_size: 14 }',
     r'deepmarc_mask_head\.crop_size: 14 cannot be taken'),
    ('deepmarc_mask_head { crop_size: 14 mask_size: 30 }',
     r'deepmarc_mask_head\.mask_size: 30'),
    ('deepmarc_mask_head { allowed_masked_classes_ids: 11 }',
     r'allowed_masked_classes_ids: 11'),
    ('number_of_stages: 2 deepmarc_mask_head { }', r'number_of_stages: 3'),
    ('feature_extractor { type: "spinenet143" }', r'SpineNet gives levels'),
    ('feature_extractor { type: "vgg16" }', r'unknown Deep-MARC backbone'),
])
def test_bad_faster_rcnn_settings_name_the_field(override, message):
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  pipeline = config_lib.get_pipeline_config_from_text(
      'model { faster_rcnn { num_classes: 10 number_of_stages: 3 '
      'feature_extractor { type: "resnet10_fpn" fpn { min_level: 2 '
      'max_level: 6 } } } }')
  text_format.Merge(override, pipeline.model.faster_rcnn)
  with pytest.raises(ConfigError, match=message):
    mask_rcnn_builder.params_from_proto(pipeline.model.faster_rcnn)
