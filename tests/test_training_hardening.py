"""Training runs that go wrong: a bad record after the preflight sample,
resuming a model_dir with another model, a checkpoint deleted under the
continuous evaluator, SIGTERM of model_main_tf2.py."""

import glob
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
import record_helpers
from deepmac_tf import config as config_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.training import checkpoints
from deepmac_tf.training import evaluation_driver
from deepmac_tf.training import preflight
from deepmac_tf.training import train_loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'model_main_tf2.py')


def _configs(tmp_path, override=''):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, config_override=override)
  configs = config_lib.get_configs_from_pipeline_file(path)
  configs['train_input_config'].shuffle = False
  configs['train_input_config'].num_readers = 1
  return configs


def _add_bad_file(configs, tmp_path):
  """A second input file whose record 0 has PNG masks of the wrong size."""
  bad = record_helpers.write_tfrecord(tmp_path / 'z_bad.record', [
      record_helpers.simple_example(masks=np.ones([2, 16, 16], np.float32))])
  configs['train_input_config'].tf_record_input_reader.input_path.append(bad)
  return bad


def test_bad_record_mid_run_saves_then_names_it(tmp_path, monkeypatch):
  configs = _configs(tmp_path)
  bad = _add_bad_file(configs, tmp_path)
  monkeypatch.setattr(preflight, 'SAMPLE_RECORDS', 2)  # beyond the sample
  model_dir = str(tmp_path / 'model')
  with pytest.raises(DataError) as error:
    train_loop.train_loop(configs, model_dir, num_train_steps=50,
                          checkpoint_every_n=100, record_summaries=False)
  # 8 good records = 4 steps of batch 2, then the bad file's record 0.
  message = str(error.value)
  assert message.startswith(f'record 0 of file {bad}: mask 0 in '
                            'image/object/mask is 16x16 but the image is '
                            '32x48')
  saved = os.path.join(model_dir, 'ckpt-4')
  assert message.endswith(f'must be image-sized. Training stopped at step 4; '
                          f'the last good checkpoint is {saved}.')
  assert checkpoints.read_step(saved) == 4

  # The same model_dir with another model: one line naming a variable.
  other = _configs(tmp_path, 'model { center_net { deepmac_mask_estimation '
                   '{ dim: 16 } } }')
  with pytest.raises(ConfigError) as error:
    train_loop.train_loop(other, model_dir, num_train_steps=5,
                          record_summaries=False)
  message = str(error.value)
  assert message.startswith(f'model_dir {model_dir} holds a checkpoint of a '
                            'different model (ckpt-4): model/')
  assert 'has shape' in message and message.endswith(
      'use a new --model_dir or --checkpoint_dir.')

  # Continuous eval: a checkpoint deleted by rotation is skipped; nothing
  # evaluated is an error.
  calls = []
  fake = types.SimpleNamespace(
      evaluate=lambda model, cfg, *, global_step=None, **kw: (
          calls.append(global_step) or {'m': 1.0}),
      default_best_metric=lambda cfg: 'm')
  monkeypatch.setattr(evaluation_driver, 'import_eval_loop', lambda f: fake)
  gone = os.path.join(model_dir, 'ckpt-2')
  monkeypatch.setattr(evaluation_driver, '_checkpoint_paths',
                      lambda *args: [gone, saved])
  results = evaluation_driver.eval_continuously(
      configs, str(tmp_path / 'eval'), model_dir, eval_timeout=1)
  assert list(results) == [saved] and calls == [4]
  monkeypatch.setattr(evaluation_driver, '_checkpoint_paths',
                      lambda *args: [gone])
  with pytest.raises(DataError, match='nothing was evaluated'):
    evaluation_driver.eval_continuously(
        configs, str(tmp_path / 'eval'), model_dir, eval_timeout=1)

  # Rotation deletes the checkpoint right after its restore: it is still
  # evaluated as its own step (the step is read before the restore).
  real_restore = evaluation_driver._restore

  def restore_then_rotate(checkpoint, path):
    restored = real_restore(checkpoint, path)
    for name in glob.glob(path + '.*'):
      os.remove(name)
    return restored

  monkeypatch.setattr(evaluation_driver, '_restore', restore_then_rotate)
  monkeypatch.setattr(evaluation_driver, '_checkpoint_paths',
                      lambda *args: [saved])
  calls.clear()
  results = evaluation_driver.eval_continuously(
      configs, str(tmp_path / 'eval'), model_dir, eval_timeout=1)
  assert list(results) == [saved] and calls == [4]


def _start(pipeline, model_dir, steps):
  env = dict(os.environ, PYTHONPATH=REPO)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  return subprocess.Popen(
      [sys.executable, SCRIPT, f'--pipeline_config_path={pipeline}',
       f'--model_dir={model_dir}', f'--num_train_steps={steps}',
       '--checkpoint_every_n=1000', '--log_every_n_steps=1',
       '--record_summaries=false'],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
      cwd=REPO)


def _interrupt_after(process, model_dir, sig, min_step):
  """Sends ``sig`` once the log shows step >= min_step; returns (rc, err)."""
  deadline = time.time() + 400
  lines = []
  for line in process.stderr:
    lines.append(line)
    if f'Step {min_step}/' in line:
      process.send_signal(sig)
      break
    assert time.time() < deadline, ''.join(lines[-20:])
  out, err = process.communicate(timeout=120)
  return process.returncode, ''.join(lines) + err


def test_sigterm_saves_the_step_and_exits_143(tmp_path):
  """Ctrl-C takes the same path (KeyboardInterrupt; exit 130 is checked in
  test_bad_inputs_training without a model)."""
  pipeline = pipeline_fixtures.tiny_pipeline(tmp_path)
  model_dir = str(tmp_path / 'model')
  code, err = _interrupt_after(_start(pipeline, model_dir, 100000), model_dir,
                               signal.SIGTERM, 2)
  assert code == 143, err[-3000:]
  assert 'Traceback' not in err
  assert 'cuInit' not in err  # quiet by default
  assert err.rstrip().endswith('Interrupted (SIGTERM).')
  saved = tf.train.latest_checkpoint(model_dir)
  step = checkpoints.read_step(saved)
  assert saved.endswith(f'ckpt-{step}') and step >= 2
  assert f'Interrupted (SIGTERM) at step {step}: saved {saved}.' in err
  assert glob.glob(os.path.join(model_dir, 'ckpt-*.index')) == [
      saved + '.index']


def test_divergence_advice_names_a_diverged_last_checkpoint(tmp_path):
  """The NaN / Inf error advises a rerun from the last good checkpoint,
  unless that checkpoint is far off itself (e.g. Adam at lr 1e6: ckpt-1
  is finite, its weights about 1e6, its loss 5e22): then a new model_dir."""
  step = tf.Variable(0, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(step=step, w=tf.Variable([1.0]))

  def saver_for(directory, last_saved=None):
    manager = tf.train.CheckpointManager(checkpoint, str(directory), 3,
                                         checkpoint_name='ckpt')
    return checkpoints.GuardedSaver(checkpoint, manager, step, last_saved)

  fresh = saver_for(tmp_path / 'a')
  assert fresh.rerun_advice(1).endswith('rerun (it starts from the '
                                        'beginning).')
  # Step 1 (loss 12.7) saved; step 2's loss on those weights is 5e22.
  step.assign(1)
  fresh.note_loss(1, 12.7)
  first, _ = fresh.save()
  step.assign(2)
  fresh.note_loss(2, 5e22)
  assert fresh.rerun_advice(2) == (
      'Lower the learning rate or set train_config.gradient_clipping_by_norm,'
      ' then train in a new --model_dir: that checkpoint has likely diverged '
      'too (the loss on its weights was 5e+22 (step 2) against 12.7 earlier '
      'in this run), so a rerun from it fails again.')
  # A rerun resumed from ckpt-1 that diverges at its first step.
  resumed = saver_for(tmp_path / 'a', first)
  resumed.note_loss(2, 4.3e22)
  assert ('this run resumed from it and diverged at its first step (loss on '
          'its weights 4.3e+22)') in resumed.rerun_advice(2)
  # A NaN loss on the saved weights themselves.
  step.assign(1)
  nan = saver_for(tmp_path / 'b')
  nan.note_loss(1, 3.0)
  nan.save()
  nan.note_loss(2, float('nan'))
  assert 'the loss on its weights was already nan (step 2)' in (
      nan.rerun_advice(2))
  # Healthy history: rerun from the checkpoint.
  step.assign(2)
  healthy = saver_for(tmp_path / 'c')
  for n, total in ((1, 9.0), (2, 8.0)):
    healthy.note_loss(n, total)
  healthy.save()
  healthy.note_loss(3, 7.5)
  assert healthy.rerun_advice(4).endswith('then rerun (it resumes from that '
                                          'checkpoint).')
