"""A run killed between writing ckpt-N and recording it resumes from ckpt-N."""

import os

import tensorflow as tf

from deepmac_tf.training import checkpoints


def _checkpoint(value):
  step = tf.Variable(0, dtype=tf.int64)
  weight = tf.Variable(float(value))
  return tf.train.Checkpoint(step=step, weight=weight), step, weight


def _save_unrecorded(checkpoint, directory, number):
  """Writes ckpt-<number> files without touching the state file, as a run
  killed right after the write leaves them."""
  return checkpoint.write(os.path.join(directory, f'ckpt-{number}'))


def test_unrecorded_newer_checkpoint_is_recorded_and_resumed(tmp_path):
  directory = str(tmp_path)
  checkpoint, step, weight = _checkpoint(1.0)
  manager = checkpoints.make_manager(checkpoint, directory)
  step.assign(2)
  manager.save(checkpoint_number=2)
  step.assign(4)
  weight.assign(4.0)
  _save_unrecorded(checkpoint, directory, 4)
  assert tf.train.latest_checkpoint(directory).endswith('ckpt-2')

  fresh, fresh_step, fresh_weight = _checkpoint(0.0)
  resumed_manager = checkpoints.make_manager(fresh, directory)
  assert resumed_manager.latest_checkpoint.endswith('ckpt-4')
  assert [os.path.basename(p) for p in resumed_manager.checkpoints] == [
      'ckpt-2', 'ckpt-4']
  fresh.restore(resumed_manager.latest_checkpoint)
  assert int(fresh_step.numpy()) == 4
  assert float(fresh_weight.numpy()) == 4.0


def test_checkpoint_without_state_file_is_found(tmp_path):
  directory = str(tmp_path)
  checkpoint, step, _ = _checkpoint(1.0)
  step.assign(2)
  _save_unrecorded(checkpoint, directory, 2)
  assert tf.train.latest_checkpoint(directory) is None
  added = checkpoints.record_unlisted_checkpoints(directory)
  assert [os.path.basename(p) for p in added] == ['ckpt-2']
  assert tf.train.latest_checkpoint(directory).endswith('ckpt-2')


def test_index_without_its_data_shards_is_not_a_checkpoint(tmp_path):
  directory = str(tmp_path)
  checkpoint, step, _ = _checkpoint(1.0)
  manager = checkpoints.make_manager(checkpoint, directory)
  step.assign(2)
  manager.save(checkpoint_number=2)
  prefix = _save_unrecorded(checkpoint, directory, 4)
  for shard in tf.io.gfile.glob(prefix + '.data-*'):
    tf.io.gfile.remove(shard)
  assert [s for s, _ in checkpoints.complete_checkpoints(directory)] == [2]
  assert checkpoints.record_unlisted_checkpoints(directory) == []
  assert tf.train.latest_checkpoint(directory).endswith('ckpt-2')


def test_up_to_date_state_is_left_alone(tmp_path):
  directory = str(tmp_path)
  checkpoint, step, _ = _checkpoint(1.0)
  manager = checkpoints.make_manager(checkpoint, directory)
  for number in (2, 4):
    step.assign(number)
    manager.save(checkpoint_number=number)
  state_file = os.path.join(directory, 'checkpoint')
  before = open(state_file).read()
  assert checkpoints.record_unlisted_checkpoints(directory) == []
  assert open(state_file).read() == before
  assert checkpoints.record_unlisted_checkpoints(str(tmp_path / 'none')) == []
