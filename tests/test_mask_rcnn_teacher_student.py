"""Teacher-student mask heads on Mask R-CNN: config, training-only teacher,
which losses see which instances, where gradients go."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import model_builder
from deepmac_tf.data.fields import InputFields as F
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import mask_rcnn_losses
from deepmac_tf.meta_architectures import mask_rcnn_teacher_student as ts
from deepmac_tf.ops import pseudo_masks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_mask_rcnn_end_to_end as deepmarc_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG = deepmarc_fixtures.CONFIG
_TINY_HEAD = """deepmarc_mask_head { network_type: "mask_rcnn_fcn" num_init_channels: 8
    crop_size: 8 mask_size: 16 }"""
assert _TINY_HEAD in deepmarc_fixtures.TINY
# The tiny Deep-MARC of the end-to-end test with teacher-student heads
# (%s: more teacher_student fields); classes 1-5 are seen.
TINY = deepmarc_fixtures.TINY.replace('%', '%%').replace(_TINY_HEAD, """\
deepmarc_mask_head { network_type: "mask_rcnn_fcn" class_agnostic: false
    num_init_channels: 8 crop_size: 8 mask_size: 16
    teacher_student { teacher_network_type: "mask_rcnn_fcn12"
      teacher_num_init_channels: 8 %s } }""")
SEEN = (1, 2, 3, 4, 5)


def _normalize(model, images):
  # ``normalize_images`` (``preprocess`` before the OD API lifecycle layer).
  return (getattr(model, 'normalize_images', None) or model.preprocess)(images)


def _configs(extra=''):
  return config_lib.get_configs_from_pipeline_file(
      CONFIG, config_override=TINY % extra)


def _model(is_training=True, extra=''):
  model = model_builder.build(_configs(extra)['model'],
                              is_training=is_training)
  images = tf.zeros([1, 64, 64, 3])
  predictions = model.predict(_normalize(model, images), training=False)
  model.postprocess(predictions)
  model.build_training_heads(predictions)
  return model


def _groundtruth(unseen_mask_value=1.0):
  """One 64x64 image: seen class 2 at the left, unseen class 7 overlapping
  it on the right, and a padding row."""
  masks = np.zeros([1, 3, 64, 64], np.float32)
  masks[0, 0, 8:40, 4:36] = 1.0
  masks[0, 1, 16:48, 24:60] = unseen_mask_value
  return {
      F.IMAGE: tf.random.stateless_uniform([1, 64, 64, 3], [1, 2]) * 255,
      F.BOXES: tf.constant([[[8, 4, 40, 36], [16, 24, 48, 60], [0, 0, 0, 0]]],
                           tf.float32) / 64.0,
      F.CLASSES: tf.constant([[2, 7, 0]], tf.int32),
      F.WEIGHTS: tf.constant([[1.0, 1.0, 0.0]]),
      F.INSTANCE_MASKS: tf.constant(masks),
      F.MASK_WEIGHTS: tf.constant([[1.0, 0.0, 0.0]]),
      F.TRUE_IMAGE_SHAPE: tf.constant([[64, 64, 3]], tf.int32),
  }


def _losses(model, groundtruth, tape=None):
  predictions = model.predict(
      _normalize(model, groundtruth[F.IMAGE]), training=True,
      groundtruth=groundtruth)
  return predictions, model.loss(predictions, groundtruth, training=True)


def _teacher_variables(model):
  return model._teacher_mask_head.trainable_variables  # pylint: disable=protected-access


def _student_variables(model):
  return model._mask_head.trainable_variables  # pylint: disable=protected-access


@pytest.fixture(scope='module')
def model():
  return _model()


def test_builder_reads_the_block():
  params = model_builder.build(_configs()['model'], is_training=False).params
  m = params.mask_head
  assert not m.class_agnostic and m.network_type == 'mask_rcnn_fcn'
  assert m.teacher_student.teacher_network_type == 'mask_rcnn_fcn12'
  assert m.teacher_student.pseudo_mask_rule == pseudo_masks.THRESHOLD
  inter = _configs('pseudo_mask_rule: INTERACTION teacher_loss_weight: 0.5')
  m = model_builder.build(inter['model'], is_training=False).params.mask_head
  assert m.teacher_student.pseudo_mask_rule == pseudo_masks.INTERACTION
  assert m.teacher_student.teacher_loss_weight == 0.5


@pytest.mark.parametrize('extra, field', [
    ('teacher_network_type: "nope"', 'teacher_student.teacher_network_type'),
    ('teacher_loss_weight: -1', 'teacher_loss_weight'),
    ('student_network_type: "resnet4"', 'student_network_type'),
])
def test_bad_settings_name_the_field(extra, field):
  override = TINY % extra
  configs = config_lib.get_configs_from_pipeline_file(
      CONFIG, config_override=override)
  with pytest.raises(ConfigError, match=field):
    model_builder.build(configs['model'], is_training=True)


def test_class_agnostic_true_is_refused():
  configs = config_lib.get_configs_from_pipeline_file(
      CONFIG, config_override=TINY.replace(
          'class_agnostic: false', 'class_agnostic: true') % '')
  with pytest.raises(ConfigError, match='class_agnostic'):
    model_builder.build(configs['model'], is_training=True)


def test_teacher_exists_in_training_only(model):
  assert _teacher_variables(model)
  # The 12-conv teacher: 12 conv kernels.
  kernels = [v for v in _teacher_variables(model)
             if 'conv_' in v.name and 'kernel' in v.name]
  assert len(kernels) == 12
  inference = _model(is_training=False)
  assert not [v for v in inference.variables if 'teacher' in v.name]
  assert len(inference.variables) < len(model.variables)


def test_losses_and_what_each_head_learns_from(model):
  groundtruth = _groundtruth()
  with tf.GradientTape(persistent=True) as tape:
    predictions, losses = _losses(model, groundtruth)
  assert mask_rcnn_losses.LOSS_TEACHER_MASK in losses
  assert mask_rcnn_losses.LOSS_MASK in losses
  teacher = _teacher_variables(model)
  student = _student_variables(model)
  assert student and not set(map(id, student)) & set(map(id, teacher))
  # No gradient from the student's loss (pseudo targets) into the teacher.
  grads = tape.gradient(losses[mask_rcnn_losses.LOSS_MASK], teacher,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
  assert all(float(tf.reduce_max(tf.abs(g))) == 0.0 for g in grads)
  grads = tape.gradient(losses[mask_rcnn_losses.LOSS_TEACHER_MASK], teacher)
  assert any(float(tf.reduce_max(tf.abs(g))) > 0.0 for g in grads)
  # The student's loss touches only the channel of each instance's class
  # (2 and 7): the 1x1 projection's other class columns get no gradient.
  kernel = model._mask_head.project_out.kernel  # pylint: disable=protected-access
  grad = tape.gradient(losses[mask_rcnn_losses.LOSS_MASK], kernel)
  touched = np.nonzero(np.abs(grad.numpy()).reshape([-1, 10]).max(0))[0]
  assert touched.tolist() == [1, 6]
  # Rows: the seen instance trains both heads; the unseen one trains the
  # student on a pseudo mask and the teacher not at all.
  weights = predictions[ts.TEACHER_MASK_WEIGHTS].numpy()[0]
  np.testing.assert_array_equal(weights, [1, 0, 0])
  np.testing.assert_array_equal(
      predictions['mask_loss_weights'].numpy()[0], [1, 1, 0])
  np.testing.assert_array_equal(
      predictions[ts.PSEUDO_MASK_ROWS].numpy()[0], [False, True, False])


def test_unseen_instances_give_the_teacher_no_loss(model):
  a, b = _groundtruth(1.0), _groundtruth(0.0)
  _, with_mask = _losses(model, a)
  _, without = _losses(model, b)
  key = mask_rcnn_losses.LOSS_TEACHER_MASK
  # Changing the unseen instance's groundtruth mask changes nothing the
  # teacher learns from (batch norm makes training outputs batch-dependent,
  # but both runs see the same crops).
  assert float(with_mask[key]) == pytest.approx(float(without[key]))
  only_unseen = _groundtruth()
  only_unseen[F.MASK_WEIGHTS] = tf.zeros([1, 3])
  _, losses = _losses(model, only_unseen)
  assert float(losses[key]) == 0.0


def test_pseudo_targets_follow_the_rules(model):
  predictions, _ = _losses(model, _groundtruth())
  teacher = tf.sigmoid(predictions[ts.TEACHER_MASK_LOGITS])[0, 1].numpy()
  target = predictions['mask_targets'][0, 1].numpy()
  # The unseen row's crop is its own box: rule 3 keeps everything; rule 2
  # removes the seen instance's pixels (its mask covers the crop's top-left).
  box = np.array([16, 24, 48, 60]) / 64.0
  ys = box[0] + (np.arange(16) + 0.5) / 16 * (box[2] - box[0])
  xs = box[1] + (np.arange(16) + 0.5) / 16 * (box[3] - box[1])
  seen_here = (((ys >= 8 / 64) & (ys < 40 / 64))[:, None] &
               ((xs >= 4 / 64) & (xs < 36 / 64))[None, :])
  expected = (teacher >= 0.5) & ~seen_here
  # Crops are bilinear: allow the one-pixel seam of the seen mask's edge.
  assert np.mean((target > 0.5) == expected) > 0.9
  assert target[seen_here].max() == 0.0 or np.mean(target[seen_here]) < 0.1


def test_export_holds_no_teacher_variable(tmp_path):
  """A training checkpoint (teacher included) exports the student only."""
  import pipeline_fixtures  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  pipeline_path = pipeline_fixtures.tiny_pipeline(
      tmp_path, TINY % '', template=CONFIG)
  configs = config_lib.get_configs_from_pipeline_file(pipeline_path)
  trained = model_builder.build(configs['model'], is_training=True)
  model_variables.build_model_variables(trained, 64, 64)
  assert _teacher_variables(trained)
  model_dir = str(tmp_path / 'model_dir')
  tf.train.CheckpointManager(
      tf.train.Checkpoint(step=tf.Variable(1, dtype=tf.int64), model=trained),
      model_dir, max_to_keep=1, checkpoint_name='ckpt').save()
  assert any('teacher' in name for name, _ in
             tf.train.list_variables(tf.train.latest_checkpoint(model_dir)))
  out = tmp_path / 'exported'
  exporter.export_inference_graph(
      'image_tensor', config_lib.get_pipeline_config_from_file(pipeline_path),
      model_dir, str(out))
  # The export's checkpoint names objects by attribute path.
  names = [name for name, _ in tf.train.list_variables(
      tf.train.latest_checkpoint(str(out / 'checkpoint')))]
  assert [n for n in names if '_mask_head' in n], names[:20]
  assert not [n for n in names if 'teacher' in n]
  # The SavedModel holds exactly the variables of the student model.
  saved = [name for name, _ in tf.train.list_variables(
      str(out / 'saved_model' / 'variables' / 'variables'))
           if name.endswith('VARIABLE_VALUE')]
  teacher_count = len(trained._teacher_mask_head.variables)  # pylint: disable=protected-access
  assert len(saved) == len(trained.variables) - teacher_count, (
      len(saved), len(trained.variables), teacher_count)


def test_interaction_rule_on_proposal_boxes():
  override = TINY.replace(
      'class_agnostic: false',
      'class_agnostic: false box_source: PROPOSALS_AND_GROUNDTRUTH'
  ) % 'pseudo_mask_rule: INTERACTION student_loss_weight: 2.0'
  configs = config_lib.get_configs_from_pipeline_file(
      CONFIG, config_override=override)
  model = model_builder.build(configs['model'], is_training=True)
  predictions, losses = _losses(model, _groundtruth())
  for key in (mask_rcnn_losses.LOSS_MASK, mask_rcnn_losses.LOSS_TEACHER_MASK):
    assert np.isfinite(float(losses[key]))
  rows = predictions['mask_loss_weights'].shape[1]
  assert rows > 3  # groundtruth rows and sampled proposals
  # Proposal rows matched to the unseen instance learn from pseudo masks,
  # rows of the seen instance from its groundtruth.
  pseudo = predictions[ts.PSEUDO_MASK_ROWS].numpy()[0]
  teacher_rows = predictions[ts.TEACHER_MASK_WEIGHTS].numpy()[0] > 0
  assert pseudo[1] and not pseudo[0] and teacher_rows[0]
  assert not np.any(pseudo & teacher_rows)
