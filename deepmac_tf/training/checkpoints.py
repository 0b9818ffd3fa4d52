"""Training checkpoints (OD API layout) and the best-checkpoint keeper.

The training checkpoint is ``tf.train.Checkpoint(step=<int64 variable>,
model=model, optimizer=optimizer)`` -- the OD API's names, so its evaluator
and exporter (and ours, which restore ``tf.train.Checkpoint(model=model)``)
read the same files. Files are ``model_dir/ckpt-<step>``.

The best checkpoint by an evaluation metric (higher is better) is saved apart
in ``model_dir/best/ckpt-<step>`` (one kept) with ``model_dir/best/
best_checkpoint.json``: ``{"step", "metric", "value", "checkpoint"}``.
"""

import json
import math
import os

from absl import logging
import tensorflow as tf

CHECKPOINT_NAME = 'ckpt'
BEST_DIR = 'best'
BEST_JSON = 'best_checkpoint.json'


def make_training_checkpoint(model, optimizer, step=None):
  """Returns ``(checkpoint, step)``; ``step`` is an int64 scalar variable."""
  if step is None:
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
  return tf.train.Checkpoint(step=step, model=model,
                             optimizer=optimizer), step


def make_manager(checkpoint, directory, max_to_keep=7):
  """``CheckpointManager`` writing ``directory/ckpt-<step>``."""
  return tf.train.CheckpointManager(checkpoint, directory,
                                    max_to_keep=max_to_keep,
                                    checkpoint_name=CHECKPOINT_NAME)


def restore_latest(checkpoint, manager):
  """Resumes from the manager's latest checkpoint.

  Returns:
    The path restored, or None when the directory has no checkpoint.
  """
  path = manager.latest_checkpoint
  if not path:
    return None
  checkpoint.restore(path).assert_existing_objects_matched()
  logging.info('Resumed from %s (step %d).', path,
               int(checkpoint.step.numpy()))
  return path


def read_step(checkpoint_path):
  """The ``step`` saved in a training checkpoint, or None if it has none."""
  try:
    return int(tf.train.load_variable(checkpoint_path,
                                      'step/.ATTRIBUTES/VARIABLE_VALUE'))
  except (tf.errors.NotFoundError, ValueError):
    return None


class BestCheckpointKeeper:
  """Keeps the checkpoint with the highest value of one metric."""

  def __init__(self, checkpoint, model_dir, metric):
    self.metric = metric
    self.directory = os.path.join(model_dir, BEST_DIR)
    self._manager = make_manager(checkpoint, self.directory, max_to_keep=1)
    self.best = self._read_json()

  @property
  def json_path(self):
    return os.path.join(self.directory, BEST_JSON)

  def _read_json(self):
    if not tf.io.gfile.exists(self.json_path):
      return None
    with tf.io.gfile.GFile(self.json_path) as f:
      best = json.load(f)
    if best.get('metric') != self.metric:
      logging.warning('%s tracks %r; now tracking %r from scratch.',
                      self.json_path, best.get('metric'), self.metric)
      return None
    return best

  def update(self, step, metrics):
    """Saves the current state if ``metrics[metric]`` beats the best so far.

    Args:
      step: the training step evaluated.
      metrics: {metric name: float} from the evaluation.

    Returns:
      True when this became the best checkpoint.
    """
    if self.metric not in metrics:
      logging.warning(
          'Best checkpoint: metric %r is not among the evaluation metrics '
          '(%s); not tracking the best checkpoint this time. Choose one with '
          '--best_checkpoint_metric.', self.metric,
          ', '.join(sorted(metrics)[:12]))
      return False
    value = float(metrics[self.metric])
    if math.isnan(value):
      return False
    if self.best is not None and value <= float(self.best['value']):
      return False
    path = self._manager.save(checkpoint_number=step)
    self.best = {'step': int(step), 'metric': self.metric, 'value': value,
                 'checkpoint': path}
    tmp = self.json_path + '.tmp'
    with tf.io.gfile.GFile(tmp, 'w') as f:
      json.dump(self.best, f, indent=2)
    tf.io.gfile.rename(tmp, self.json_path, overwrite=True)
    logging.info('New best checkpoint %s: %s = %.4f at step %d.', path,
                 self.metric, value, step)
    return True
