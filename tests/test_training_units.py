"""Small pieces of the training driver: progress lines, strategy flags,
checkpoint key naming, trainable-variable filters."""

import os

import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.errors import ConfigError
from deepmac_tf.training import fine_tune
from deepmac_tf.training import progress
from deepmac_tf.training import strategy as strategy_lib
from deepmac_tf.training import train_loop
from deepmac_tf.training import train_step


def test_progress_line_has_step_losses_lr_speed_eta():
  line = progress.format_progress_line(
      200, 1000, {'Loss/object_center': 0.5, 'Loss/total_loss': 1.25},
      1e-3, 4.0)
  assert line.startswith('Step 200/1000 (20%) | Loss/total_loss 1.2500 | '
                         'Loss/object_center 0.5000 | lr 1.000e-03')
  assert line.endswith('4.00 steps/s | ETA 0:03:20')
  assert 'ETA' not in progress.format_progress_line(5, None, {}, 0.1, 1.0)


def test_progress_reporter_cadence(tmp_path):
  reporter = progress.ProgressReporter(str(tmp_path), 250, 100,
                                       record_summaries=False)
  assert [s for s in range(1, 251) if reporter.should_report(s)] == [
      100, 200, 250]


def test_tracing_line_estimates_from_the_last_run(tmp_path):
  assert progress.tracing_message(str(tmp_path)) == (
      'Tracing the training step (the first step takes longer)...')
  progress.record_first_step_seconds(str(tmp_path), 41.6)
  assert progress.tracing_message(str(tmp_path)) == (
      'Tracing the training step (about 42 s, as the last run in this '
      'model_dir)...')


def test_single_device_strategy_and_flag_errors(monkeypatch):
  strategy = strategy_lib.select_strategy()
  assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
  assert strategy_lib.is_chief(strategy)
  assert strategy_lib.writable_dir(strategy, '/m') == '/m'
  monkeypatch.delenv('TF_CONFIG', raising=False)
  with pytest.raises(ConfigError, match='TF_CONFIG'):
    strategy_lib.select_strategy(num_workers=2)
  with pytest.raises(ConfigError, match='--tpu_name'):
    strategy_lib.select_strategy(use_tpu=True)
  with pytest.raises(ConfigError, match='--num_workers'):
    strategy_lib.select_strategy(num_workers=0)


def test_checkpoint_keys_match_what_tensorflow_writes(tmp_path):
  inner = tf_keras.Sequential([tf_keras.layers.Dense(2)])
  inner.build([None, 3])
  root = tf.train.Checkpoint(model=tf.train.Checkpoint(
      **{'box/scale': inner, 'a.b': tf.Variable(1.0)}))
  path = root.save(os.path.join(str(tmp_path), 'ckpt'))
  saved = {k for k, _ in tf.train.list_variables(path)
           if k.endswith('VARIABLE_VALUE') and k != 'save_counter/' +
           '.ATTRIBUTES/VARIABLE_VALUE'}
  keys = set(fine_tune.variables_by_checkpoint_key(root))
  keys.discard('save_counter/.ATTRIBUTES/VARIABLE_VALUE')
  assert keys == saved
  assert 'model/box.Sscale/layer_with_weights-0/kernel/.ATTRIBUTES/' \
         'VARIABLE_VALUE' in keys
  assert 'model/a..b/.ATTRIBUTES/VARIABLE_VALUE' in keys


def test_trainable_variable_filters():
  variables = [tf.Variable(1.0, name='backbone/conv'),
               tf.Variable(1.0, name='head/conv')]
  names = lambda vs: [v.name for v in vs]
  assert names(train_step.select_trainable_variables(
      variables, freeze_patterns=['backbone'])) == ['head/conv:0']
  assert names(train_step.select_trainable_variables(
      variables, update_patterns=['backbone'])) == ['backbone/conv:0']
  with pytest.raises(ConfigError, match='freeze_variables'):
    train_step.select_trainable_variables(variables, freeze_patterns=['conv'])


def test_non_finite_terms():
  assert train_loop.non_finite_terms(
      {'a': 1.0, 'b': float('nan'), 'c': float('inf')}) == ['b', 'c']
