"""Teacher-student mask heads on Deep-MAC: config, training-only teacher
(the Deep-MAC head), which losses see which instances, where gradients go,
and an export that holds the student only."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import model_builder
from deepmac_tf.config import validation
from deepmac_tf.data.fields import InputFields as F
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import deepmac
from deepmac_tf.meta_architectures import deepmac_teacher_student as ts
from deepmac_tf.ops import pseudo_masks

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, 'fixtures', 'tiny_deepmac.config')
# The tiny Deep-MAC of the end-to-end tests (ResNet-4 teacher, 8 channels,
# 16x16 masks, seen classes 1-5 of 10) with a 4-conv class-specific student.
BLOCK = ('model { center_net { deepmac_mask_estimation { teacher_student { '
         'student_network_type: "mask_rcnn_fcn" %s } } } }')
NUM_CLASSES = 10
SEEN_CLASS, UNSEEN_CLASS = 2, 7


def _pipeline(extra=''):
  with open(TEMPLATE, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, '/nonexistent')
  return config_lib.get_pipeline_config_from_text(
      text, source=TEMPLATE, config_override=BLOCK % extra)


def _model(is_training=True, extra=''):
  return model_builder.build(_pipeline(extra).model, is_training=is_training)


def _groundtruth(unseen_mask_value=1.0, seen_mask_value=1.0):
  """One 64x64 image: a seen instance (class 2) on the left, an unseen one
  (class 7) overlapping it on the right, and a padding row."""
  masks = np.zeros([1, 3, 64, 64], np.float32)
  masks[0, 0, 8:40, 4:36] = seen_mask_value
  masks[0, 1, 16:48, 24:60] = unseen_mask_value
  return {
      F.BOXES: tf.constant([[[8, 4, 40, 36], [16, 24, 48, 60], [0, 0, 0, 0]]],
                           tf.float32) / 64.0,
      F.CLASSES: tf.constant([[SEEN_CLASS, UNSEEN_CLASS, 0]], tf.int32),
      F.WEIGHTS: tf.constant([[1.0, 1.0, 0.0]]),
      F.INSTANCE_MASKS: tf.constant(masks),
      F.TRUE_IMAGE_SHAPE: tf.constant([[64, 64, 3]], tf.int32),
  }


def _images():
  return tf.random.stateless_uniform([1, 64, 64, 3], [1, 2], 0.0, 255.0)


def _predict(model, training=True):
  return model.predict(model.normalize_images(_images()), training=training)


@pytest.fixture(scope='module')
def model():
  model = _model()
  model.postprocess(_predict(model, training=False))
  return model


def test_builder_reads_the_block():
  p = _model(is_training=False).deepmac_params
  t = p.teacher_student
  assert t.student_network_type == 'mask_rcnn_fcn'
  # The Deep-MAC head is the teacher.
  assert (t.teacher_network_type, t.teacher_num_init_channels) == (
      'resnet4', 8)
  assert t.pseudo_mask_rule == pseudo_masks.THRESHOLD
  # teacher_network_type alone sets the Deep-MAC head when network_type is
  # not given.
  pipeline = _pipeline('pseudo_mask_rule: INTERACTION teacher_loss_weight: 0.5')
  pipeline.model.center_net.deepmac_mask_estimation.ClearField('network_type')
  pipeline.model.center_net.deepmac_mask_estimation.teacher_student \
      .teacher_network_type = 'hourglass10'
  p = model_builder.build(pipeline.model, is_training=False).deepmac_params
  assert p.network_type == 'hourglass10'
  assert p.teacher_student.pseudo_mask_rule == pseudo_masks.INTERACTION
  assert p.teacher_student.teacher_loss_weight == 0.5


@pytest.mark.parametrize('extra, field', [
    ('teacher_network_type: "hourglass20"',
     'teacher_student.teacher_network_type'),
    ('teacher_num_init_channels: 16', 'teacher_num_init_channels'),
    ('student_network_type: "nope"', 'teacher_student.student_network_type'),
    ('student_network_type: "embedding_projection"',
     'teacher_student.student_network_type'),
    ('student_loss_weight: -1', 'teacher_student.student_loss_weight'),
    ('} predict_full_resolution_masks: true teacher_student {',
     'predict_full_resolution_masks'),
])
def test_bad_settings_name_the_field(extra, field):
  with pytest.raises(ConfigError, match=field.replace('.', r'\.')):
    _model(extra=extra)


def test_teacher_exists_in_training_only(model):
  assert model._mask_net is not None  # pylint: disable=protected-access
  assert model.class_specific_masks
  inference = _model(is_training=False)
  assert inference._mask_net is None  # pylint: disable=protected-access
  predictions = _predict(inference, training=False)
  detections = inference.postprocess(predictions)
  assert detections['detection_masks'].shape == (1, 10, 16, 16)
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.5], [0.3, 0.3, 0.9, 0.9]]])
  masks = inference.predict_masks_from_boxes(
      predictions, boxes, classes=tf.constant([[1, 6]]))['detection_masks']
  assert masks.shape == (1, 2, 16, 16)
  with pytest.raises(ValueError, match='classes'):
    inference.predict_masks_from_boxes(predictions, boxes)
  # The masks are the student's class channels: another class, another
  # mask.
  other = inference.predict_masks_from_boxes(
      predictions, boxes, classes=tf.constant([[3, 6]]))['detection_masks']
  assert not np.allclose(masks[0, 0], other[0, 0])
  np.testing.assert_allclose(masks[0, 1], other[0, 1], atol=1e-6)


def test_a_model_built_for_inference_scores_the_student_on_every_mask():
  """Evaluation losses: no teacher, so no pseudo masks; the student's loss
  covers every instance with a groundtruth mask, unseen classes too."""
  inference = _model(is_training=False)
  losses = inference.loss(_predict(inference, training=False),
                          _groundtruth(), training=False)
  assert set(losses) >= {deepmac.LOSS_DEEP_MASK_STUDENT}
  assert deepmac.LOSS_DEEP_MASK_ESTIMATION not in losses
  no_unseen = inference.loss(_predict(inference, training=False),
                             _groundtruth(unseen_mask_value=0.0),
                             training=False)
  assert float(no_unseen[deepmac.LOSS_DEEP_MASK_STUDENT]) != pytest.approx(
      float(losses[deepmac.LOSS_DEEP_MASK_STUDENT]), rel=1e-3)


def _loss(model, groundtruth):
  predictions = _predict(model)
  return model.loss(predictions, groundtruth, training=True)


def test_losses_and_what_each_head_learns_from(model):
  with tf.GradientTape(persistent=True) as tape:
    losses = _loss(model, _groundtruth())
  student_key = deepmac.LOSS_DEEP_MASK_STUDENT
  assert {deepmac.LOSS_DEEP_MASK_ESTIMATION, student_key} <= set(losses)
  teacher = model._mask_net.trainable_variables  # pylint: disable=protected-access
  student = model._student_mask_net.trainable_variables  # pylint: disable=protected-access
  assert student and not set(map(id, student)) & set(map(id, teacher))
  # No gradient from the student's loss (pseudo targets) into the teacher.
  grads = tape.gradient(losses[student_key], teacher,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
  assert all(float(tf.reduce_max(tf.abs(g))) == 0.0 for g in grads)
  grads = tape.gradient(losses[deepmac.LOSS_DEEP_MASK_ESTIMATION], teacher)
  assert any(float(tf.reduce_max(tf.abs(g))) > 0.0 for g in grads)
  # The student's loss touches only the channel of each instance's class.
  kernel = model._student_mask_net.project_out.kernel  # pylint: disable=protected-access
  grad = tape.gradient(losses[student_key], kernel)
  touched = np.nonzero(np.abs(grad.numpy()).reshape(
      [-1, NUM_CLASSES]).max(0))[0]
  assert touched.tolist() == [SEEN_CLASS - 1, UNSEEN_CLASS - 1]


def test_unseen_instances_learn_from_pseudo_masks(model):
  student_key = deepmac.LOSS_DEEP_MASK_STUDENT
  teacher_key = deepmac.LOSS_DEEP_MASK_ESTIMATION
  base = _loss(model, _groundtruth())
  # The unseen instance's groundtruth mask changes nothing either head
  # learns from; the seen one's changes both.
  no_unseen_mask = _loss(model, _groundtruth(unseen_mask_value=0.0))
  for key in (student_key, teacher_key):
    assert float(no_unseen_mask[key]) == pytest.approx(float(base[key]),
                                                       rel=1e-5)
  no_seen_mask = _loss(model, _groundtruth(seen_mask_value=0.0))
  assert float(no_seen_mask[student_key]) != pytest.approx(
      float(base[student_key]), rel=1e-3)


def test_pseudo_targets_follow_the_rules(model):
  groundtruth = _groundtruth()
  p = model.deepmac_params
  predictions = _predict(model)
  pixel = predictions[deepmac.PIXEL_EMBEDDING][-1]
  instance = predictions[deepmac.INSTANCE_EMBEDDING][-1]
  boxes = groundtruth[F.BOXES]
  inputs = ts.student_inputs(p, groundtruth[F.CLASSES],
                             groundtruth[F.WEIGHTS], None,
                             groundtruth[F.INSTANCE_MASKS], boxes)
  selected = inputs['real'] > 0
  teacher = model._mask_logits(pixel, instance, boxes, selected=selected)  # pylint: disable=protected-access
  student = model._mask_logits(pixel, instance, boxes, selected=selected,  # pylint: disable=protected-access
                               classes=inputs['classes'])
  _, out = ts.student_stage_loss(p, teacher, student,
                                 groundtruth[F.INSTANCE_MASKS], boxes, inputs)
  np.testing.assert_array_equal(out[ts.PSEUDO_MASK_ROWS].numpy()[0],
                                [False, True, False])
  targets = out[ts.STUDENT_TARGETS].numpy()[0]
  # The seen row learns its groundtruth crop (its box: mostly ones).
  np.testing.assert_allclose(targets[0], inputs['gt_targets'][0, 0])
  assert targets[0].mean() > 0.7
  # The unseen row: the teacher thresholded, minus the seen instance's
  # pixels (its mask covers the crop's top-left).
  probabilities = tf.sigmoid(teacher)[0, 1].numpy()
  box = np.array([16, 24, 48, 60]) / 64.0
  ys = box[0] + (np.arange(16) + 0.5) / 16 * (box[2] - box[0])
  xs = box[1] + (np.arange(16) + 0.5) / 16 * (box[3] - box[1])
  seen_here = (((ys >= 8 / 64) & (ys < 40 / 64))[:, None] &
               ((xs >= 4 / 64) & (xs < 36 / 64))[None, :])
  expected = (probabilities >= 0.5) & ~seen_here
  assert np.mean((targets[1] > 0.5) == expected) > 0.9
  assert targets[1][seen_here].mean() < 0.1


def test_export_holds_the_student_only(tmp_path):
  """A training checkpoint (teacher included) exports the student only;
  the box-prompted signature takes classes and returns its masks."""
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  pipeline = _pipeline()
  trained = model_builder.build(pipeline.model, is_training=True)
  model_variables.build_model_variables(trained, 64, 64)
  teacher_count = len(trained._mask_net.variables)  # pylint: disable=protected-access
  assert teacher_count
  model_dir = str(tmp_path / 'model_dir')
  tf.train.CheckpointManager(
      tf.train.Checkpoint(step=tf.Variable(1, dtype=tf.int64), model=trained),
      model_dir, max_to_keep=1, checkpoint_name='ckpt').save()
  assert any('_mask_net/' in name and 'student' not in name for name, _ in
             tf.train.list_variables(tf.train.latest_checkpoint(model_dir)))
  out = tmp_path / 'exported'
  exporter.export_inference_graph('image_and_boxes_tensor', pipeline,
                                  model_dir, str(out))
  saved = [name for name, _ in tf.train.list_variables(
      str(out / 'saved_model' / 'variables' / 'variables'))
           if name.endswith('VARIABLE_VALUE')]
  assert len(saved) == len(trained.variables) - teacher_count
  names = [name for name, _ in tf.train.list_variables(
      tf.train.latest_checkpoint(str(out / 'checkpoint')))]
  assert [n for n in names if '_student_mask_net' in n]
  assert not [n for n in names if '_mask_net/' in n and 'student' not in n]
  # The served masks are the trained student's at the given classes.
  loaded = tf.saved_model.load(str(out / 'saved_model'))
  image = tf.cast(_images(), tf.uint8)
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.5]]])
  served = loaded.signatures['serving_default'](
      input_tensor=image, boxes=boxes,
      classes=tf.constant([[4]], tf.int32))['detection_masks']
  expected = trained.predict_masks_from_boxes(
      trained.predict(trained.normalize_images(tf.cast(image, tf.float32)),
                      training=False), boxes,
      classes=tf.constant([[3]]))['detection_masks']
  np.testing.assert_allclose(served.numpy(), expected.numpy(), atol=1e-4)
