"""The training loop of ``model_main_tf2.py`` (OD API ``train_loop``).

First ``preflight.check_training_inputs`` (paths, label map, a record
sample, model_dir writability: seconds, no model). Then under
``strategy.scope()``: build the model (sync batch norm when the strategy has
more than one replica), the optimizer and schedule, every variable (one
dummy pass) and the OD API checkpoint ``Checkpoint(step, model,
optimizer)``. Resume from ``model_dir``'s latest checkpoint (a checkpoint
of another model is a ``ConfigError`` naming the first mismatching
variable), else restore ``fine_tune_checkpoint``. Then one
``DistributedTrainStep`` per global batch until ``num_train_steps``: a
checkpoint every ``checkpoint_every_n`` steps and at the last step, progress
every ``log_every_n_steps``, evaluation every ``eval_every_n_steps``.

What is saved is always sound:
* nothing is written before the first step succeeded, and ``ckpt-N`` holds
  step N;
* a NaN / Inf loss stops the run unsaved, and a save is refused (the run
  stops) when any weight or optimizer slot is NaN / Inf;
* Ctrl-C and SIGTERM save the current step, then re-raise (``cli.run``
  exits 130 / 143);
* a bad record stops the run with one line naming file and record, after
  saving the last good step; with ``skip_bad_records``
  (``--skip_bad_records``) it is skipped instead, named in a WARNING line
  with the running count, and the run ends with the total;
* multi-worker: a worker that dies (or becomes unreachable) makes the
  others' next collective fail (TF's peer health check aborts them within
  about a minute); they stop with ``WorkerLostError`` (one line: step,
  cause, "restart every worker"), never hang. Nothing is saved then (a save
  needs every worker); the restart resumes from the chief's last checkpoint.
"""

import collections
import math
import os
import time

from absl import logging
import tensorflow as tf
import tf_keras

from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.builders import dataset_builder
from deepmac_tf.builders import faster_rcnn_options
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf.builders import optimizer_builder
from deepmac_tf import config as config_lib
from deepmac_tf.data import record_errors
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import DeepMacError
from deepmac_tf.errors import tf_message_line
from deepmac_tf.training import checkpoints
from deepmac_tf.training import evaluation_driver
from deepmac_tf.training import fine_tune
from deepmac_tf.training import interrupts
from deepmac_tf.training import preflight
from deepmac_tf.training import progress
from deepmac_tf.training import strategy as strategy_lib
from deepmac_tf.training import train_step as train_step_lib

TrainResult = collections.namedtuple(
    'TrainResult', ['step', 'losses', 'checkpoint', 'eval_metrics',
                    'skipped_records'], defaults=(None,))


class NonFiniteLossError(DeepMacError, RuntimeError):
  """A training loss became NaN or Inf; the run stopped."""


class WorkerLostError(DeepMacError, RuntimeError):
  """Multi-worker: another worker died or is unreachable; the run stopped."""


# What a collective raises when a peer is gone (TF's health check aborts
# collectives with UNAVAILABLE; a restarted peer gives FAILED_PRECONDITION).
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.DeadlineExceededError,
                tf.errors.FailedPreconditionError, tf.errors.InternalError)


def _worker_lost(error, step, model_dir):
  first = tf_message_line(error)
  return WorkerLostError(
      f'multi-worker training stopped at step {step}: another worker is gone '
      f'or unreachable ({first[:200]}). Nothing was saved by this failure; '
      f'restart every worker with the same command to resume from the '
      f"chief's latest checkpoint in {model_dir}.")


def non_finite_terms(losses):
  """Names of the loss terms that are NaN or Inf."""
  return sorted(name for name, value in losses.items()
                if not math.isfinite(float(value)))


def _check_flags(checkpoint_every_n, checkpoint_max_to_keep,
                 eval_every_n_steps, num_train_steps):
  if checkpoint_every_n < 1:
    raise ConfigError(f'--checkpoint_every_n: must be >= 1, got '
                      f'{checkpoint_every_n}.')
  if checkpoint_max_to_keep < 1:
    raise ConfigError(f'--checkpoint_max_to_keep: must be >= 1, got '
                      f'{checkpoint_max_to_keep}.')
  if eval_every_n_steps < 0:
    raise ConfigError(f'--eval_every_n_steps: must be >= 0, got '
                      f'{eval_every_n_steps}.')
  if num_train_steps is not None and num_train_steps < 0:
    raise ConfigError(f'--num_train_steps: must be >= 0, got '
                      f'{num_train_steps}.')


def _set_precision(train_config, use_tpu):
  if not train_config.use_bfloat16:
    return
  if use_tpu:
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
    logging.info('train_config.use_bfloat16: mixed bfloat16 on TPU.')
  else:
    logging.warning('train_config.use_bfloat16 applies on TPU only (as in '
                    'the OD API); training in float32.')


def build_training_state(configs, strategy):
  """Model, optimizer, schedule, trainable variables: call in
  ``strategy.scope()``. Shared by the train loop and scripts/benchmark.py."""
  train_config = configs['train_config']
  model_builder.check_train_config(configs['model'], train_config)
  use_sync_bn = strategy.num_replicas_in_sync > 1
  model = model_builder.build(configs['model'], is_training=True,
                              use_sync_batch_norm=use_sync_bn)
  optimizer, schedule = optimizer_builder.build(
      train_config.optimizer, train_config.gradient_clipping_by_norm)
  model_variables.build_model_variables(
      model, *model_variables.input_size_from_configs(configs))
  trainable = train_step_lib.select_trainable_variables(
      model.trainable_variables, train_config.update_trainable_variables,
      train_config.freeze_variables)
  optimizer.build(trainable)
  return model, optimizer, schedule, trainable


def _first_replica(strategy, batch):
  """{key: numpy array} of the first local replica's part of ``batch``."""
  return {key: strategy.experimental_local_results(value)[0].numpy()
          for key, value in batch.items()}


def _pop_skipped_count(strategy, batch):
  """Removes ``SKIPPED_RECORDS`` from ``batch``; returns this worker's
  count so far (the sum over its input pipelines' running counts)."""
  counts = strategy.experimental_local_results(
      batch.pop(dataset_builder.SKIPPED_RECORDS))
  return max(int(tf.reduce_max(c)) if tf.size(c) else 0 for c in counts)


def _report_skipped(count):
  # The input pipeline reads ahead of training: its WARNING lines may count
  # skips in batches that were never trained on (the run stopped first).
  logging.warning('--skip_bad_records: %d bad record read(s) skipped in the '
                  'batches trained on%s.', count, ' (named in the WARNING '
                  'lines above, which may count a few more: the input reads '
                  'ahead; a record is counted each time it is read)'
                  if count else '')


def _category_index(reader):
  if not reader.label_map_path:
    return None
  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  return label_map_util.create_category_index(reader.label_map_path)


def _raise_non_finite(step, losses, saver):
  bad = non_finite_terms(losses)
  values = ', '.join(f'{name}={float(losses[name])}' for name in bad)
  raise NonFiniteLossError(
      f'Non-finite loss at step {step}: {values}. Training stopped and this '
      f'state was not saved; {saver.describe_last()}. '
      f'{saver.rerun_advice(step)}')


def _save_or_raise(saver):
  """Saves the current step; a NaN / Inf weight stops the run instead."""
  _, bad = saver.save()
  if bad:
    raise NonFiniteLossError(
        f'Non-finite weights after step {saver.step} ({len(bad)} variable(s), '
        f'e.g. {bad[0]}): the update diverged. This state was not saved; '
        f'{saver.describe_last()}. {saver.rerun_advice(saver.step)}')


def _save_on_interrupt(saver, error):
  """Saves what is safe to save when interrupted; logs what happened."""
  name = interrupts.signal_name(error)
  path, bad = saver.save()
  if path:
    logging.warning('Interrupted (%s) at step %d: saved %s. Rerun the same '
                    'command to resume.', name, saver.step, path)
  elif bad:
    logging.warning('Interrupted (%s) at step %d: the weights hold NaN / Inf, '
                    'not saved; %s.', name, saver.step, saver.describe_last())
  else:
    logging.warning('Interrupted (%s) at step %d: nothing new to save; %s.',
                    name, saver.step, saver.describe_last())


def train_loop(configs, model_dir, *, num_train_steps=None, strategy=None,
               use_tpu=False, checkpoint_every_n=1000,
               checkpoint_max_to_keep=7, record_summaries=True,
               log_every_n_steps=100, eval_every_n_steps=0,
               best_checkpoint_metric=None, sample_1_of_n_eval_examples=1,
               skip_bad_records=False):
  """Trains until ``num_train_steps`` (``train_config.num_steps`` if None).

  Args:
    configs: dict from ``config.get_configs_from_pipeline_file``.
    model_dir: checkpoints, ``pipeline.config``, ``train/`` and ``eval/``
      summaries, ``best/``.
    num_train_steps: total steps (a resumed run continues to it); 0 and
      ``num_steps: 0`` train until the input ends.
    strategy: a ``tf.distribute`` strategy; default ``select_strategy()``.
    use_tpu: enables bfloat16 when ``train_config.use_bfloat16``.
    checkpoint_every_n / checkpoint_max_to_keep: checkpoint cadence and
      retention (a final checkpoint is always written).
    record_summaries: TensorBoard scalars under ``model_dir/train``.
    log_every_n_steps: console progress cadence.
    eval_every_n_steps: evaluate every N steps (and at the end); 0 = off.
    best_checkpoint_metric: metric for ``model_dir/best`` (default: the
      evaluation module's ``default_best_metric``).
    sample_1_of_n_eval_examples: evaluation subsampling.
    skip_bad_records: skip and count training records that cannot be read
      or decoded instead of stopping (``dataset_builder`` module doc).

  Returns:
    ``TrainResult(step, losses, checkpoint, eval_metrics,
    skipped_records)``: the final step, the last step's losses
    {name: float}, the last checkpoint path, the last evaluation's metrics
    (or None) and, with ``skip_bad_records``, this worker's count of skipped
    record reads (else None).

  Raises:
    ConfigError: bad flags or config (naming them).
    NonFiniteLossError: a loss became NaN or Inf.
    WorkerLostError: multi-worker, another worker died or is unreachable.
  """
  train_config = configs['train_config']
  _check_flags(checkpoint_every_n, checkpoint_max_to_keep, eval_every_n_steps,
               num_train_steps)
  total_steps = (train_config.num_steps if num_train_steps is None
                 else num_train_steps) or None
  # Every check that needs no model, before the (slow) model build.
  inputs = preflight.check_training_inputs(
      configs, model_dir, with_eval=eval_every_n_steps > 0,
      skip_bad_records=skip_bad_records)
  # train_config fields with no effect here (one log line each) or that
  # must keep a value (ConfigError).
  faster_rcnn_options.check_fields(train_config, 'train_config')
  _set_precision(train_config, use_tpu)
  strategy = strategy or strategy_lib.select_strategy(use_tpu=use_tpu)
  output_dir = strategy_lib.writable_dir(strategy, model_dir)
  tf.io.gfile.makedirs(output_dir)

  started = time.perf_counter()
  logging.info('Building the model and optimizer...')
  # The model a checkpoint needs (e.g. the OD API's 1x3 embedding heads).
  configs = checkpoint_layout.configs_for_checkpoint(
      configs, fine_tune.starting_checkpoint(output_dir, train_config))
  with strategy.scope():
    model, optimizer, schedule, trainable = build_training_state(
        configs, strategy)
    checkpoint, step = checkpoints.make_training_checkpoint(model, optimizer)
  logging.info('Model built in %.0f s.', time.perf_counter() - started)
  manager = checkpoints.make_manager(checkpoint, output_dir,
                                     checkpoint_max_to_keep)
  last_saved = checkpoints.restore_latest(checkpoint, manager)
  if last_saved is None:
    fine_tune.restore_fine_tune_checkpoint(model, train_config)
  elif train_config.fine_tune_checkpoint:
    logging.info('Resuming: %s is not applied.', fine_tune.FIELD)
  # No checkpoint is written before a training step has succeeded.
  saver = checkpoints.GuardedSaver(checkpoint, manager, step, last_saved)
  if strategy_lib.is_chief(strategy):
    config_lib.save_pipeline_config(
        config_lib.create_pipeline_proto_from_configs(configs), model_dir)

  dataset = strategy.distribute_datasets_from_function(
      lambda ctx: dataset_builder.build_from_pipeline(
          configs, 'train', input_context=ctx,
          skip_bad_records=skip_bad_records))
  iterator = iter(dataset)
  run_step = train_step_lib.DistributedTrainStep(
      strategy, model, optimizer, step, trainable_variables=trainable,
      add_regularization_loss=train_config.add_regularization_loss)
  evaluator = None
  if eval_every_n_steps > 0:
    evaluator = evaluation_driver.InTrainingEvaluator(
        configs, model_dir, model, optimizer, checkpoint, eval_every_n_steps,
        best_checkpoint_metric, sample_1_of_n_eval_examples,
        best_root=output_dir)
  reporter = progress.ProgressReporter(
      model_dir, total_steps, log_every_n_steps,
      record_summaries and strategy_lib.is_chief(strategy))
  category_index = _category_index(configs['train_input_config'])

  current = saver.step
  losses, metrics = {}, None
  skipped = 0 if skip_bad_records else None
  logging.info('Training from step %d to %s (global batch %d over %d '
               'replica(s)); model_dir %s.', current, total_steps or 'the end '
               'of the input', train_config.batch_size,
               strategy.num_replicas_in_sync, os.path.abspath(model_dir))
  reporter.start(current)
  first_call = True
  with interrupts.sigterm_interrupts():
    try:
      while total_steps is None or current < total_steps:
        try:
          batch = next(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
          logging.info('The training input ended at step %d.', current)
          break
        except tf.errors.OpError as e:
          error = record_errors.input_error(e, inputs.train_files)
          _save_or_raise(saver)
          raise DataError(f'{str(error).rstrip(".")}. Training stopped at '
                          f'step {saver.step}; {saver.describe_last()}.'
                          ) from None
        if skip_bad_records:
          skipped = _pop_skipped_count(strategy, batch)
        if first_call:
          logging.info(progress.tracing_message(output_dir))
          traced = time.perf_counter()
        losses = {name: float(value)
                  for name, value in run_step(batch).items()}
        current = saver.step
        saver.note_loss(current, losses.get('Loss/total_loss', 0.0))
        if non_finite_terms(losses):
          _raise_non_finite(current, losses, saver)
        if first_call:
          first_call = False
          traced = time.perf_counter() - traced
          logging.info('First step done in %.0f s.', traced)
          progress.record_first_step_seconds(output_dir, traced)
          reporter.start(current)
        if reporter.should_report(current):
          reporter.report(current, losses, float(schedule(current - 1)))
          if reporter.wants_images():
            reporter.write_images(current, _first_replica(strategy, batch),
                                  category_index)
        if current % checkpoint_every_n == 0:
          _save_or_raise(saver)
        if evaluator is not None and evaluator.should_evaluate(current,
                                                                total_steps):
          metrics = evaluator(current)
      _save_or_raise(saver)
    except KeyboardInterrupt as e:
      _save_on_interrupt(saver, e)
      raise
    except _PEER_ERRORS as e:
      # The step, a save or an eager all-reduce: any collective fails once a
      # peer is gone.
      if not strategy_lib.is_multi_worker(strategy):
        raise
      raise _worker_lost(e, current, model_dir) from None
    finally:
      reporter.close()
      if skip_bad_records:
        _report_skipped(skipped)
  logging.info('Training done at step %d; last checkpoint %s.', saver.step,
               saver.last_saved)
  return TrainResult(saver.step, losses, saver.last_saved, metrics, skipped)
