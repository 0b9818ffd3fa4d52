"""Evaluation inside training and continuous evaluation of checkpoints.

Both call the evaluation module's contract
(``deepmac_tf.evaluation.eval_loop``):
``evaluate(model, configs, *, global_step, output_dir, summary_writer,
sample_1_of_n, ...) -> {metric name: float}`` and
``default_best_metric(configs) -> str`` (higher is better). Metrics, JSON
files and TensorBoard scalars go to ``model_dir/eval`` (``eval_<i>`` for
``eval_input_reader`` i > 0).
"""

import os

from absl import logging
import tensorflow as tf

from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf.builders import optimizer_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.training import checkpoints
from deepmac_tf.training import moving_average
from deepmac_tf.training import preflight

_HEADLINE_METRICS = ('DetectionBoxes_Precision/mAP',
                     'DetectionMasks_Precision/mAP')


def import_eval_loop(flag):
  """The evaluation module, or a ConfigError naming the flag needing it."""
  try:
    from deepmac_tf.evaluation import eval_loop  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ConfigError(f'{flag}: evaluation needs deepmac_tf.evaluation.'
                      f'eval_loop, which cannot be imported ({e}).') from None
  return eval_loop


def eval_dir(model_dir, eval_input_index=0):
  name = 'eval' if eval_input_index == 0 else f'eval_{eval_input_index}'
  return os.path.join(model_dir, name)


def log_metrics(step, metrics, highlight=None):
  """One line with the headline metrics (all are in the JSON / TensorBoard)."""
  names = [highlight] + list(_HEADLINE_METRICS)
  shown = ', '.join(f'{n} {metrics[n]:.4f}' for n in dict.fromkeys(names)
                    if n in metrics)
  logging.info('Eval at step %s: %s', step, shown or f'{len(metrics)} metrics')


class InTrainingEvaluator:
  """Evaluates the training model every N steps and keeps the best."""

  def __init__(self, configs, model_dir, model, optimizer,
               training_checkpoint, every_n_steps, best_metric=None,
               sample_1_of_n=1, best_root=None):
    self._eval_loop = import_eval_loop('--eval_every_n_steps')
    self._configs = configs
    self._model = model
    self._optimizer = optimizer
    self.every_n_steps = int(every_n_steps)
    self.metric = best_metric or self._eval_loop.default_best_metric(configs)
    self._sample_1_of_n = sample_1_of_n or 1
    self._use_averages = configs['eval_config'].use_moving_averages
    self.output_dir = eval_dir(model_dir)
    self._writer = tf.summary.create_file_writer(self.output_dir)
    # best_root: a scratch folder on non-chief workers (saves are collective).
    self.best = checkpoints.BestCheckpointKeeper(
        training_checkpoint, best_root or model_dir, self.metric)
    logging.info('Evaluating every %d steps; best checkpoint by %s in %s.',
                 self.every_n_steps, self.metric, self.best.directory)

  def should_evaluate(self, step, last_step):
    return self.every_n_steps > 0 and (step % self.every_n_steps == 0 or
                                       step == last_step)

  def __call__(self, step):
    with moving_average.averaged_weights(self._optimizer,
                                         self._model.trainable_variables,
                                         enabled=self._use_averages):
      metrics = self._eval_loop.evaluate(
          self._model, self._configs, global_step=step,
          output_dir=self.output_dir, summary_writer=self._writer,
          sample_1_of_n=self._sample_1_of_n)
    log_metrics(step, metrics, self.metric)
    self.best.update(step, metrics)
    return metrics


def _eval_checkpoint_objects(configs, model):
  objects = {'model': model}
  if configs['eval_config'].use_moving_averages:
    train_config = configs['train_config']
    if not train_config.optimizer.use_moving_average:
      raise ConfigError('eval_config.use_moving_averages: the training config '
                        'has train_config.optimizer.use_moving_average false, '
                        'so checkpoints hold no averages.')
    optimizer, _ = optimizer_builder.build(train_config.optimizer)
    optimizer.build(model.trainable_variables)
    objects['optimizer'] = optimizer
  return objects


def _checkpoint_paths(checkpoint_dir, eval_timeout, wait_interval):
  if eval_timeout == 0:
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if not latest:
      raise ConfigError(f'--checkpoint_dir: no checkpoint in '
                        f'{os.path.abspath(checkpoint_dir)} (--eval_timeout=0 '
                        'evaluates the latest one and exits).')
    return [latest]
  if not tf.io.gfile.isdir(checkpoint_dir):
    logging.warning('--checkpoint_dir %s does not exist (yet).',
                    os.path.abspath(checkpoint_dir))
  logging.info('Waiting for checkpoints in %s; stopping after %s s with none '
               'new (--eval_timeout).', os.path.abspath(checkpoint_dir),
               eval_timeout)
  return tf.train.checkpoints_iterator(checkpoint_dir,
                                       min_interval_secs=wait_interval,
                                       timeout=eval_timeout)


def eval_continuously(configs, model_dir, checkpoint_dir, eval_timeout=3600,
                      sample_1_of_n=1, eval_input_index=0, last_step=None,
                      wait_interval=0):
  """Evaluates each new checkpoint of ``checkpoint_dir``.

  Args:
    configs: pipeline config dict.
    model_dir: metrics go to ``model_dir/eval`` (JSON and TensorBoard).
    checkpoint_dir: where training writes checkpoints.
    eval_timeout: seconds to wait for a new checkpoint before stopping; 0
      evaluates the latest checkpoint once.
    sample_1_of_n: evaluate every n-th example.
    eval_input_index: which ``eval_input_reader``.
    last_step: stop after evaluating a checkpoint at this step or later.
    wait_interval: minimum seconds between two evaluations.

  Returns:
    {checkpoint path: metrics} of every checkpoint evaluated.

  Raises:
    ConfigError: no checkpoint with --eval_timeout=0, a checkpoint of
      another model, or bad eval settings.
    DataError: nothing was evaluated (no checkpoint appeared in time, or
      every one was deleted before it could be restored).
  """
  eval_loop = import_eval_loop('--checkpoint_dir')
  model = objects = checkpoint = None
  output_dir = eval_dir(model_dir, eval_input_index)
  # Inputs and output folder first: seconds, before any model is built.
  preflight.check_eval_inputs(configs, eval_input_index, output_dir)
  writer = tf.summary.create_file_writer(output_dir)
  results = {}
  for path in _checkpoint_paths(checkpoint_dir, eval_timeout, wait_interval):
    try:
      if model is None:  # Built for the first checkpoint's layout.
        model, objects, checkpoint = _model_for_checkpoint(configs, path)
      checkpoint_layout.log_ignored_odapi_objects(path)
    except (tf.errors.OpError, RuntimeError, ValueError):
      if tf.io.gfile.exists(path + '.index'):
        raise
      _warn_vanished(path)
      continue
    # The step first: a checkpoint that rotation deletes right after its
    # restore must not be evaluated as step None.
    step = checkpoints.read_step(path)
    if not _restore(checkpoint, path):
      continue
    logging.info('Evaluating %s (step %s).', path, step)
    with moving_average.averaged_weights(
        objects.get('optimizer'), model.trainable_variables,
        enabled='optimizer' in objects):
      metrics = eval_loop.evaluate(
          model, configs, global_step=step, output_dir=output_dir,
          summary_writer=writer, sample_1_of_n=sample_1_of_n or 1,
          eval_input_index=eval_input_index)
    log_metrics(step, metrics)
    results[path] = metrics
    if last_step and step is not None and step >= last_step:
      logging.info('Evaluated the final step %d; done.', step)
      break
  else:
    if eval_timeout:
      logging.info('No new checkpoint in %s for %s s; evaluation ends.',
                   checkpoint_dir, eval_timeout)
  writer.close()
  if not results:
    raise DataError(f'--checkpoint_dir: no checkpoint of '
                    f'{os.path.abspath(checkpoint_dir)} could be evaluated '
                    f'within --eval_timeout={eval_timeout} s; nothing was '
                    'evaluated.')
  return results


def _model_for_checkpoint(configs, path):
  """(model, checkpoint objects, tf.train.Checkpoint) for evaluating
  checkpoints laid out like ``path`` (see ``checkpoint_layout``)."""
  model_config = checkpoint_layout.model_config_for_checkpoint(
      configs['model'], path)
  model = model_builder.build(model_config, is_training=False)
  model_variables.build_model_variables(
      model, *model_variables.input_size_from_configs(configs))
  objects = _eval_checkpoint_objects(configs, model)
  return model, objects, tf.train.Checkpoint(**objects)


def _warn_vanished(path):
  logging.warning('%s was deleted (checkpoint rotation) before it could be '
                  'evaluated; skipped.', path)


def _restore(checkpoint, path):
  """Restores ``path``; False (with a warning) when training's rotation
  deleted it first.

  Raises:
    ConfigError: the checkpoint belongs to another model.
  """
  try:
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    return True
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    if not tf.io.gfile.exists(path + '.index'):
      _warn_vanished(path)
      return False
    mismatch = checkpoints.first_mismatch(checkpoint, path) or (
        str(e).strip().splitlines()[0][:300])
    raise ConfigError(f'--checkpoint_dir: {path} is a checkpoint of a '
                      f'different model than the pipeline config builds: '
                      f'{mismatch}.') from None
