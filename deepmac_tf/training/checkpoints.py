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

from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.errors import ConfigError
from deepmac_tf.training import fine_tune

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
  """``CheckpointManager`` writing ``directory/ckpt-<step>``.

  A run killed after it wrote ``ckpt-N``'s files but before it recorded
  them in the ``checkpoint`` state file leaves ``ckpt-N`` complete yet
  unlisted; the state file is repaired first so the manager resumes from
  (and later rotates) ``ckpt-N``.
  """
  record_unlisted_checkpoints(directory)
  return tf.train.CheckpointManager(checkpoint, directory,
                                    max_to_keep=max_to_keep,
                                    checkpoint_name=CHECKPOINT_NAME)


def complete_checkpoints(directory):
  """``[(step, prefix)]`` of the ``ckpt-<step>`` files in ``directory``
  whose index and every data shard exist, oldest first.

  TensorFlow writes a checkpoint's index last (after its data shards), so
  an index with all its shards is a whole checkpoint.
  """
  found = []
  for index in tf.io.gfile.glob(
      os.path.join(directory, f'{CHECKPOINT_NAME}-*.index')):
    prefix = index[:-len('.index')]
    step = _checkpoint_step(prefix)
    if step is None:
      continue
    shards = tf.io.gfile.glob(prefix + '.data-*-of-*')
    if not shards:
      continue
    expected = int(shards[0].rsplit('-of-', 1)[-1])
    if len(shards) != expected:
      continue
    found.append((step, prefix))
  return sorted(found)


def _checkpoint_step(prefix):
  """N of a ``.../ckpt-N`` prefix; None for another name."""
  tail = os.path.basename(prefix).rsplit('-', 1)[-1]
  return int(tail) if tail.isdigit() else None


def record_unlisted_checkpoints(directory):
  """Adds to ``directory/checkpoint`` the whole checkpoints newer than its
  latest entry (a kill between writing and recording); returns the
  prefixes added (empty when the state file was up to date)."""
  if not tf.io.gfile.isdir(directory):
    return []
  state = tf.train.get_checkpoint_state(directory)
  listed = list(state.all_model_checkpoint_paths) if state else []
  latest = state.model_checkpoint_path if state else ''

  latest_step = (_checkpoint_step(latest) if latest else None)
  latest_step = -1 if latest_step is None else latest_step
  added = [prefix for step, prefix in complete_checkpoints(directory)
           if step > latest_step]
  if not added:
    return []
  # The manager keeps (and later rotates) only entries with a timestamp.
  timestamps = list(state.all_model_checkpoint_timestamps) if state else []
  if len(timestamps) != len(listed):
    timestamps = [_written_at(p) for p in listed]
  paths = [os.path.basename(p) for p in listed + added]
  tf.compat.v1.train.update_checkpoint_state(
      directory, os.path.basename(added[-1]),
      all_model_checkpoint_paths=paths,
      all_model_checkpoint_timestamps=(
          timestamps + [_written_at(p) for p in added]))
  logging.warning(
      '%s was written but not recorded in %s/checkpoint (the run was '
      'stopped while saving); recorded it, resuming from it.',
      ', '.join(os.path.basename(p) for p in added), directory)
  return added


def _written_at(prefix):
  """The modification time of a checkpoint's index file (seconds)."""
  index = prefix + '.index'
  if not os.path.isabs(index):
    return 0.0
  try:
    return tf.io.gfile.stat(index).mtime_nsec / 1e9
  except tf.errors.NotFoundError:
    return 0.0


def first_mismatch(checkpoint, path):
  """The first model variable that ``path`` lacks or holds with another
  shape, as text; None when every model variable matches.

  Args:
    checkpoint: the training ``tf.train.Checkpoint`` (its variables exist).
    path: a checkpoint prefix.
  """
  saved = dict(tf.train.list_variables(path))
  ours = fine_tune.variables_by_checkpoint_key(checkpoint)
  for key in sorted(ours):
    if not key.startswith('model/'):
      continue
    shape = ours[key].shape.as_list()
    if key not in saved:
      return f'{_short_key(key)} is not in the checkpoint'
    if list(saved[key]) != shape:
      return (f'{_short_key(key)} has shape {list(saved[key])} in the '
              f'checkpoint but {shape} in the model')
  ours_keys = {k for k in ours if k.startswith('model/')}
  for key in sorted(saved):
    if (key.startswith('model/') and key.endswith(fine_tune.VARIABLE_SUFFIX)
        and key not in ours_keys):
      return f'{_short_key(key)} is in the checkpoint but not in the model'
  return None


def _short_key(key):
  return key.replace(fine_tune.VARIABLE_SUFFIX, '')


def restore_latest(checkpoint, manager):
  """Resumes from the manager's latest checkpoint.

  Returns:
    The path restored, or None when the directory has no checkpoint.

  Raises:
    ConfigError: the checkpoint belongs to a different model (naming the
      first mismatching variable) or holds NaN / Inf weights.
  """
  path = manager.latest_checkpoint
  if not path:
    return None
  directory = os.path.dirname(path)
  mismatch = first_mismatch(checkpoint, path)
  if mismatch is None:
    try:
      checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      mismatch = str(e).strip().splitlines()[0][:300]
  if mismatch is not None:
    raise ConfigError(
        f'model_dir {directory} holds a checkpoint of a different model '
        f'({os.path.basename(path)}): {mismatch}; use a new --model_dir or '
        '--checkpoint_dir.')
  checkpoint_layout.log_ignored_odapi_objects(path)
  bad = non_finite_variables(checkpoint_variables(checkpoint))
  if bad:
    raise ConfigError(
        f'{path} holds NaN / Inf values ({_names(bad)}); it cannot be '
        f'resumed. Delete it (and its "checkpoint" entry) or use a new '
        '--model_dir.')
  logging.info('Resumed from %s (step %d).', path,
               int(checkpoint.step.numpy()))
  return path


def checkpoint_variables(checkpoint):
  """Every variable a training checkpoint saves (model and optimizer)."""
  return list(fine_tune.variables_by_checkpoint_key(checkpoint).values())


def non_finite_variables(variables):
  """Names of the floating-point variables holding a NaN or an Inf."""
  bad = []
  for variable in variables:
    if not variable.dtype.is_floating:
      continue
    if not bool(tf.reduce_all(tf.math.is_finite(variable))):
      bad.append(variable.name)
  return bad


def _names(names, limit=3):
  more = f', ... ({len(names)} in all)' if len(names) > limit else ''
  return ', '.join(names[:limit]) + more


class GuardedSaver:
  """Saves ``ckpt-<step>`` only when every saved variable is finite.

  The checkpoint number is always the step variable's value, so checkpoint
  N holds step N.
  """

  # A total loss this many times the lowest of the run, computed on the
  # last saved weights, means that checkpoint has diverged too (only used
  # to word the advice of a divergence error; saves check finiteness).
  DIVERGED_FACTOR = 1e3

  def __init__(self, checkpoint, manager, step_variable, last_saved=None):
    self._checkpoint = checkpoint
    self._manager = manager
    self._step = step_variable
    self.last_saved = last_saved
    self.saved_step = read_step(last_saved) if last_saved else None
    self._resumed_step = self.saved_step
    # (step, total loss) of the first step after the last save: the loss
    # of the saved weights; and the lowest finite total loss of this run.
    self._loss_on_saved = None
    self._lowest = None

  @property
  def step(self):
    return int(self._step.numpy())

  def non_finite(self):
    """Names of saved variables holding NaN / Inf (empty when all finite)."""
    return non_finite_variables(checkpoint_variables(self._checkpoint))

  def save(self):
    """Saves the current step unless it is saved already or step is 0.

    Returns:
      (path or None, names of non-finite variables): nothing is written when
      any variable is NaN / Inf.
    """
    step = self.step
    if step == 0 or step == self.saved_step:
      return None, []
    bad = self.non_finite()
    if bad:
      return None, bad
    self.last_saved = self._manager.save(checkpoint_number=step)
    self.saved_step = step
    return self.last_saved, []

  def note_loss(self, step, total):
    """Records step ``step``'s total loss (computed on the weights of step
    ``step - 1``)."""
    if self.saved_step is not None and step == self.saved_step + 1:
      self._loss_on_saved = (step, total)
    if math.isfinite(total) and (self._lowest is None or total < self._lowest):
      self._lowest = total

  def describe_last(self):
    if self.last_saved:
      return f'the last good checkpoint is {self.last_saved}'
    return 'no checkpoint was saved'

  def rerun_advice(self, failed_step):
    """What to do after a divergence at ``failed_step``: rerun from the last
    checkpoint, or, when that checkpoint is itself far off (its loss is
    non-finite or DIVERGED_FACTOR times the run's lowest, or this run
    resumed from it and failed at its first step), a new model_dir."""
    fix = ('Lower the learning rate or set '
           'train_config.gradient_clipping_by_norm, then')
    if not self.last_saved:
      return f'{fix} rerun (it starts from the beginning).'
    why = None
    step, total = self._loss_on_saved or (None, None)
    if total is not None and not math.isfinite(total):
      why = f'the loss on its weights was already {total} (step {step})'
    elif (total is not None and self._lowest is not None and
          total > self.DIVERGED_FACTOR * self._lowest):
      why = (f'the loss on its weights was {total:.4g} (step {step}) against '
             f'{self._lowest:.4g} earlier in this run')
    elif (self._resumed_step is not None and
          self.saved_step == self._resumed_step and
          failed_step == self._resumed_step + 1):
      why = ('this run resumed from it and diverged at its first step'
             + (f' (loss on its weights {total:.4g})' if total is not None
                else ''))
    if why is None:
      return f'{fix} rerun (it resumes from that checkpoint).'
    return (f'{fix} train in a new --model_dir: that checkpoint has likely '
            f'diverged too ({why}), so a rerun from it fails again.')


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
