"""The helpers of the kill-and-restart scripts (training/script_runs.py,
scripts/multi_worker_kill_restart.py): checkpoint checks, resume checks,
the two-worker TF_CONFIG, the ERROR-line reading."""

import glob
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.training import script_runs

sys.path.insert(0, os.path.join(script_runs.REPO, 'scripts'))
import multi_worker_kill_restart  # pylint: disable=g-import-not-at-top,wrong-import-position


class _Optimizer(tf.Module):

  def __init__(self):
    super().__init__()
    self._iterations = tf.Variable(0, dtype=tf.int64)


def _save(model_dir, steps, iterations=None, weight=1.0):
  """Checkpoints ckpt-<step> laid out as the training loop's."""
  step = tf.Variable(0, dtype=tf.int64)
  optimizer = _Optimizer()
  weights = tf.Variable([1.0, 2.0])
  checkpoint = tf.train.Checkpoint(step=step, optimizer=optimizer,
                                   model=tf.train.Checkpoint(w=weights))
  manager = tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=5)
  for n in steps:
    step.assign(n)
    optimizer._iterations.assign(n if iterations is None else iterations)  # pylint: disable=protected-access
    weights.assign([weight, 2.0])
    manager.save(checkpoint_number=n)


def test_verify_checkpoints(tmp_path):
  assert script_runs.verify_checkpoints(str(tmp_path / 'none')) is None
  _save(str(tmp_path / 'good'), [2, 4])
  assert script_runs.verify_checkpoints(str(tmp_path / 'good')) == 4
  _save(str(tmp_path / 'iterations'), [2], iterations=3)
  with pytest.raises(AssertionError, match='ckpt-2: step 2, optimizer '
                     'iterations 3'):
    script_runs.verify_checkpoints(str(tmp_path / 'iterations'))
  _save(str(tmp_path / 'nan'), [2], weight=np.nan)
  with pytest.raises(AssertionError, match='is not finite'):
    script_runs.verify_checkpoints(str(tmp_path / 'nan'))


def test_resume_check():
  assert script_runs.resume_check('', None) == 'fresh start'
  assert script_runs.resume_check('Building the model', 4) == (
      'killed before it logged its resume')
  log = 'Resumed from m/ckpt-4 (step 4).\nStep 5/8 (62%) | Loss/total 1.0'
  assert script_runs.resume_check(log, 4) == (
      'resumed at step 4, continued at step 5')
  with pytest.raises(AssertionError, match='first progress line is step 6'):
    script_runs.resume_check(log.replace('Step 5/', 'Step 6/'), 4)


def test_two_worker_cluster_and_error_lines():
  ports = script_runs.free_ports(2)
  assert len(set(ports)) == 2
  workers = [f'127.0.0.1:{p}' for p in ports]
  config = json.loads(script_runs.tf_config(workers, 1))
  assert config == {'cluster': {'worker': workers},
                    'task': {'type': 'worker', 'index': 1}}
  lines, traceback = multi_worker_kill_restart.error_lines(
      'I1202 x\nERROR: multi-worker training stopped at step 4: ...\n')
  assert lines == ['ERROR: multi-worker training stopped at step 4: ...']
  assert not traceback
  assert multi_worker_kill_restart.error_lines(
      'Traceback (most recent call last):\n  File')[1]


def test_lost_worker_is_one_line():
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import DeepMacError
  from deepmac_tf.training import strategy as strategy_lib
  from deepmac_tf.training import train_loop
  # pylint: enable=g-import-not-at-top
  error = tf.errors.UnavailableError(
      None, None, '{{function_node __wrapped__CollectiveReduceV2}} Collective '
      'ops is aborted by: Error reported from /job:worker/task:1: The '
      'following tasks are unhealthy (stopped sending heartbeats):\n'
      '/job:worker/replica:0/task:1')
  lost = train_loop._worker_lost(error, 4, '/runs/m')  # pylint: disable=protected-access
  assert isinstance(lost, DeepMacError)
  assert str(lost) == (
      'multi-worker training stopped at step 4: another worker is gone or '
      'unreachable (Collective ops is aborted by: Error reported from '
      '/job:worker/task:1: The following tasks are unhealthy (stopped '
      'sending heartbeats):). Nothing was saved by this failure; restart '
      "every worker with the same command to resume from the chief's "
      'latest checkpoint in /runs/m.')
  assert not strategy_lib.is_multi_worker(tf.distribute.get_strategy())


def _fake_export(output, weight=1.0, step=3):
  """An export folder laid out as exporter.py writes it (tiny module)."""
  module = tf.Module()
  module.w = tf.Variable([weight, 2.0])
  tf.saved_model.save(module, os.path.join(output, 'saved_model'))
  extra = os.path.join(output, 'saved_model', 'assets.extra')
  os.makedirs(extra)
  with open(os.path.join(extra, 'export_metadata.json'), 'w') as f:
    json.dump({'checkpoint_step': step}, f)
  os.makedirs(os.path.join(output, 'checkpoint'))
  for name in ('pipeline.config', 'checkpoint/checkpoint'):
    with open(os.path.join(output, name), 'w') as f:
      f.write('x')


def test_verify_export_and_digest(tmp_path):
  good = str(tmp_path / 'good')
  _fake_export(good)
  assert script_runs.verify_export(good) == 3
  digest = script_runs.export_digest(good)
  assert script_runs.export_digest(good) == digest
  with open(os.path.join(good, 'pipeline.config'), 'a') as f:
    f.write('y')
  assert script_runs.export_digest(good) != digest
  os.remove(os.path.join(good, 'checkpoint', 'checkpoint'))
  with pytest.raises(AssertionError, match='checkpoint/checkpoint is '
                     'missing'):
    script_runs.verify_export(good)
  bad = str(tmp_path / 'nan')
  _fake_export(bad, weight=np.nan)
  with pytest.raises(AssertionError, match='is not finite'):
    script_runs.verify_export(bad)
  torn = str(tmp_path / 'torn')
  _fake_export(torn)
  data = glob.glob(os.path.join(torn, 'saved_model', 'variables',
                                'variables.data-*'))[0]
  with open(data, 'r+b') as f:
    f.truncate(3)
  with pytest.raises(AssertionError, match='unreadable|not finite'):
    script_runs.verify_export(torn)
