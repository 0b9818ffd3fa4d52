"""The training loop end to end on the tiny synthetic pipeline: checkpoints,
summaries, resume, NaN stop, fine-tune restore, evaluation and the best
checkpoint."""

import glob
import json
import math
import os
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import pipeline_fixtures
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf import config as config_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.training import checkpoints
from deepmac_tf.training import evaluation_driver
from deepmac_tf.training import fine_tune
from deepmac_tf.training import train_loop





def _configs(tmp_path, override='', **dataset):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, config_override=override,
                                         **dataset)
  return config_lib.get_configs_from_pipeline_file(path)


def _deterministic_configs(tmp_path, **dataset):
  configs = _configs(tmp_path, **dataset)
  del configs['train_config'].data_augmentation_options[:]
  configs['train_input_config'].shuffle = False
  configs['train_input_config'].num_readers = 1
  return configs


def _checkpoint_values(path):
  reader = tf.train.load_checkpoint(path)
  return {key: reader.get_tensor(key)
          for key in reader.get_variable_to_shape_map()
          if key.startswith(('model/', 'optimizer/'))}


def _summary_tags(directory):
  tags = set()
  for events in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(events):
      tags.update(value.tag for value in event.summary.value)
  return tags


def _summary_images(directory, tag):
  """[(step, uint8 image)] of an image summary tag."""
  found = []
  for events in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(events):
      for value in event.summary.value:
        if value.tag == tag:
          encoded = tf.make_ndarray(value.tensor)[2]
          found.append((event.step, tf.io.decode_png(encoded).numpy()))
  return found


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """3 steps, checkpoint every 2: (configs, model_dir, TrainResult).

  Deterministic input (records in file order, no augmentation): the first
  batch (drawn in train_input_images) is the same in every run, whatever
  RNG state earlier tests left, and the run is the uninterrupted reference
  that test_resume_equals_uninterrupted_run resumes from ckpt-2. Four
  training images (two batches of 2): ckpt-2 ends an epoch, where a resumed
  run (whose input starts again from the first record, as the OD API's
  does) meets the same batches as the uninterrupted one.
  """
  tmp_path = tmp_path_factory.mktemp('trained')
  configs = _deterministic_configs(tmp_path, num_train=4)
  model_dir = str(tmp_path / 'model')
  tf_keras.utils.set_random_seed(7)
  result = train_loop.train_loop(configs, model_dir, num_train_steps=3,
                                 checkpoint_every_n=2, log_every_n_steps=1)
  return configs, model_dir, result


def test_checkpoints_summaries_and_config(trained):
  _, model_dir, result = trained
  assert result.step == 3
  assert result.checkpoint == os.path.join(model_dir, 'ckpt-3')
  # No ckpt-0 (nothing is saved before a step succeeded), every 2 steps,
  # and the final step 3.
  assert tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths \
      == [os.path.join(model_dir, f'ckpt-{s}') for s in (2, 3)]
  assert checkpoints.read_step(result.checkpoint) == 3
  keys = dict(tf.train.list_variables(result.checkpoint))
  assert 'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE' in keys
  assert any(k.startswith('model/_feature_extractor/_network/') for k in keys)
  assert any(k.startswith('model/_mask_net/') for k in keys)
  assert os.path.exists(os.path.join(model_dir, 'pipeline.config'))
  expected_losses = {'Loss/object_center', 'Loss/box/scale', 'Loss/box/offset',
                     'Loss/deep_mask_estimation', 'Loss/total_loss'}
  assert set(result.losses) == expected_losses
  assert result.losses['Loss/total_loss'] == pytest.approx(
      sum(v for k, v in result.losses.items() if k != 'Loss/total_loss'),
      rel=1e-5)
  tags = _summary_tags(os.path.join(model_dir, 'train'))
  assert expected_losses | {'learning_rate', 'steps_per_sec'} <= tags
  # The OD API's training-batch images with groundtruth (first report).
  images = _summary_images(os.path.join(model_dir, 'train'),
                           'train_input_images')
  assert [step for step, _ in images] == [1]
  grid = images[0][1]
  assert grid.ndim == 3 and grid.shape[2] == 3 and grid.shape[0] >= 64
  # Seen-class masks drawn in green, unseen boxes in orange.
  pixels = grid.reshape([-1, 3])
  assert (pixels == (40, 220, 70)).all(axis=1).any()


def test_evaluator_restores_model_only_checkpoint(trained):
  """The exporter / evaluator layout: Checkpoint(model=model)."""
  configs, model_dir, result = trained
  model = model_builder.build(configs['model'], is_training=False)
  model_variables.build_model_variables(model, 64, 64)
  tf.train.Checkpoint(model=model).restore(
      result.checkpoint).expect_partial().assert_existing_objects_matched()


def test_resume_equals_uninterrupted_run(trained, tmp_path):
  configs, straight, _ = trained
  # The "killed" run: a model_dir holding the uninterrupted run's ckpt-2
  # (what a run stopped after step 2, at the end of an epoch, leaves),
  # recorded as its latest.
  resumed = str(tmp_path / 'resumed')
  os.makedirs(resumed)
  for path in glob.glob(os.path.join(straight, 'ckpt-2.*')):
    tf.io.gfile.copy(path, os.path.join(resumed, os.path.basename(path)))
  tf.compat.v1.train.update_checkpoint_state(resumed, 'ckpt-2')
  assert checkpoints.read_step(os.path.join(resumed, 'ckpt-2')) == 2
  second = train_loop.train_loop(configs, resumed, num_train_steps=3,
                                 checkpoint_every_n=100,
                                 record_summaries=False)
  assert second.step == 3
  path = os.path.join(resumed, 'ckpt-3')
  assert checkpoints.read_step(path) == 3
  assert int(tf.train.load_variable(
      path, 'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE')) == 3
  expected = _checkpoint_values(os.path.join(straight, 'ckpt-3'))
  actual = _checkpoint_values(path)
  assert expected.keys() == actual.keys()
  for key, value in expected.items():
    np.testing.assert_allclose(actual[key], value, rtol=1e-3, atol=1e-5,
                               err_msg=key)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  real_build = model_builder.build

  def build_with_nan_after_3_steps(*args, **kwargs):
    model = real_build(*args, **kwargs)
    calls = tf.Variable(0, trainable=False)
    original_loss = model.loss

    def loss(predictions, groundtruth, training=None):
      losses = dict(original_loss(predictions, groundtruth, training=training))
      calls.assign_add(1)
      losses['Loss/box/scale'] += tf.where(calls > 3, math.nan, 0.0)
      return losses

    model.loss = loss
    return model

  monkeypatch.setattr(train_loop.model_builder, 'build',
                      build_with_nan_after_3_steps)
  model_dir = str(tmp_path / 'model')
  with pytest.raises(train_loop.NonFiniteLossError) as error:
    train_loop.train_loop(_configs(tmp_path), model_dir, num_train_steps=8,
                          checkpoint_every_n=2, record_summaries=False)
  message = str(error.value)
  assert 'step 4' in message
  assert 'Loss/box/scale=nan' in message and 'Loss/total_loss=nan' in message
  assert 'Loss/object_center' not in message
  assert 'ckpt-2' in message
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest.endswith('ckpt-2')
  assert all(np.all(np.isfinite(v))
             for v in _checkpoint_values(latest).values())


def test_nan_gradient_never_reaches_a_checkpoint(tmp_path, monkeypatch):
  """A finite loss with NaN gradients at step 3 (the weights after step 3
  are NaN): ckpt-1 and ckpt-2 stay, all finite; a rerun resumes and trains."""
  real_build = model_builder.build

  def build_with_nan_gradient_at_step_3(*args, **kwargs):
    model = real_build(*args, **kwargs)
    calls = tf.Variable(0, trainable=False)
    original_loss = model.loss

    def loss(predictions, groundtruth, training=None):
      losses = dict(original_loss(predictions, groundtruth, training=training))
      calls.assign_add(1)
      factor = tf.where(tf.equal(calls, 3), math.nan, 1.0)

      @tf.custom_gradient
      def poisoned(x):
        return tf.identity(x), lambda dy: dy * factor

      losses['Loss/box/scale'] = poisoned(losses['Loss/box/scale'])
      return losses

    model.loss = loss
    return model

  configs = _configs(tmp_path)
  model_dir = str(tmp_path / 'model')
  with monkeypatch.context() as patch:
    patch.setattr(train_loop.model_builder, 'build',
                  build_with_nan_gradient_at_step_3)
    with pytest.raises(train_loop.NonFiniteLossError) as error:
      train_loop.train_loop(configs, model_dir, num_train_steps=6,
                            checkpoint_every_n=1, record_summaries=False)
  message = str(error.value)
  assert 'Non-finite weights after step 3' in message
  assert message.endswith('resumes from that checkpoint).')
  assert os.path.join(model_dir, 'ckpt-2') in message
  paths = tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths
  assert [checkpoints.read_step(p) for p in paths] == [1, 2]
  for path in paths:
    assert all(np.all(np.isfinite(v))
               for v in _checkpoint_values(path).values())
  rerun = train_loop.train_loop(configs, model_dir, num_train_steps=4,
                                checkpoint_every_n=1, record_summaries=False)
  assert rerun.step == 4 and not train_loop.non_finite_terms(rerun.losses)
  assert checkpoints.read_step(rerun.checkpoint) == 4


def _fresh_model(configs):
  model = model_builder.build(configs['model'], is_training=True)
  model_variables.build_model_variables(model, 64, 64)
  return model


def _fine_tune_config(configs, path, checkpoint_type):
  train_config = type(configs['train_config'])()
  train_config.CopyFrom(configs['train_config'])
  train_config.fine_tune_checkpoint = path
  train_config.fine_tune_checkpoint_type = checkpoint_type
  return train_config


def test_fine_tune_detection_restores_the_backbone_only(trained):
  configs, _, result = trained
  model = _fresh_model(configs)
  report = fine_tune.restore_fine_tune_checkpoint(
      model, _fine_tune_config(configs, result.checkpoint, 'detection'))
  assert report.restored and not report.missing
  assert all('_feature_extractor' in k for k in report.restored)
  reader = tf.train.load_checkpoint(result.checkpoint)
  keys = fine_tune.variables_by_checkpoint_key(tf.train.Checkpoint(
      model=model))
  for key, variable in keys.items():
    same = np.allclose(variable.numpy(), reader.get_tensor(key))
    if '_feature_extractor' in key:
      assert same, key
  head = [k for k in keys if '_prediction_head_dict' in k and 'kernel' in k]
  assert not all(np.allclose(keys[k].numpy(), reader.get_tensor(k))
                 for k in head)


def test_fine_tune_full_restores_everything(trained):
  configs, model_dir, result = trained
  model = _fresh_model(configs)
  report = fine_tune.restore_fine_tune_checkpoint(
      model, _fine_tune_config(configs, model_dir, 'full'))  # a directory
  ours = fine_tune.variables_by_checkpoint_key(tf.train.Checkpoint(
      model=model))
  assert sorted(report.restored) == sorted(ours)
  reader = tf.train.load_checkpoint(result.checkpoint)
  for key, variable in ours.items():
    np.testing.assert_allclose(variable.numpy(), reader.get_tensor(key))


def test_fine_tune_errors_name_the_fields(trained, tmp_path):
  configs, _, result = trained
  model = _fresh_model(configs)
  missing = _fine_tune_config(configs, str(tmp_path / 'nope' / 'ckpt-9'),
                              'detection')
  with pytest.raises(ConfigError, match='train_config.fine_tune_checkpoint:'):
    fine_tune.restore_fine_tune_checkpoint(model, missing)
  classification = _fine_tune_config(configs, result.checkpoint,
                                     'classification')
  with pytest.raises(ConfigError, match='fine_tune_checkpoint_type'):
    fine_tune.restore_fine_tune_checkpoint(model, classification)
  unknown = _fine_tune_config(configs, result.checkpoint, 'fine_tune')
  with pytest.raises(ConfigError, match='fine_tune_checkpoint_type'):
    fine_tune.restore_fine_tune_checkpoint(model, unknown)


def test_eval_in_training_keeps_the_best_checkpoint(tmp_path, monkeypatch):
  values = {2: 0.5, 4: 0.9, 5: 0.1}
  calls = []

  def evaluate(model, configs, *, global_step=None, output_dir=None,
               summary_writer=None, sample_1_of_n=1, **kwargs):
    del model, configs, summary_writer, kwargs
    calls.append((int(global_step), output_dir, sample_1_of_n))
    return {'Fake/mAP': values[int(global_step)], 'Other': 1.0}

  fake = types.SimpleNamespace(evaluate=evaluate,
                               default_best_metric=lambda configs: 'Fake/mAP')
  monkeypatch.setattr(evaluation_driver, 'import_eval_loop',
                      lambda flag: fake)
  model_dir = str(tmp_path / 'model')
  result = train_loop.train_loop(_configs(tmp_path), model_dir,
                                 num_train_steps=5, checkpoint_every_n=100,
                                 eval_every_n_steps=2,
                                 sample_1_of_n_eval_examples=3,
                                 record_summaries=False)
  eval_dir = os.path.join(model_dir, 'eval')
  assert calls == [(2, eval_dir, 3), (4, eval_dir, 3), (5, eval_dir, 3)]
  assert result.eval_metrics == {'Fake/mAP': 0.1, 'Other': 1.0}
  best_dir = os.path.join(model_dir, 'best')
  with open(os.path.join(best_dir, 'best_checkpoint.json')) as f:
    best = json.load(f)
  assert best == {'step': 4, 'metric': 'Fake/mAP', 'value': 0.9,
                  'checkpoint': os.path.join(best_dir, 'ckpt-4')}
  assert tf.train.latest_checkpoint(best_dir).endswith('ckpt-4')
  assert len(glob.glob(os.path.join(best_dir, 'ckpt-*.index'))) == 1
  assert checkpoints.read_step(os.path.join(best_dir, 'ckpt-4')) == 4
  # A missing metric warns and never replaces the best.
  keeper = checkpoints.BestCheckpointKeeper(
      tf.train.Checkpoint(step=tf.Variable(9, dtype=tf.int64)), model_dir,
      'Fake/mAP')
  assert keeper.best['step'] == 4
  assert not keeper.update(9, {'Other': 5.0})


def test_bad_flags_raise_config_errors(tmp_path):
  configs = _configs(tmp_path)
  for kwargs, flag in [({'checkpoint_every_n': 0}, '--checkpoint_every_n'),
                       ({'checkpoint_max_to_keep': 0},
                        '--checkpoint_max_to_keep'),
                       ({'eval_every_n_steps': -1}, '--eval_every_n_steps')]:
    with pytest.raises(ConfigError, match=flag):
      train_loop.train_loop(configs, str(tmp_path / 'm'), **kwargs)


