r"""Trains a model, or evaluates its checkpoints (the OD API's model_main_tf2).

Without --checkpoint_dir it trains: checkpoints model_dir/ckpt-<step> every
--checkpoint_every_n steps and at the last step (keeping
--checkpoint_max_to_keep), progress every --log_every_n_steps, TensorBoard
scalars in model_dir/train, the config used in model_dir/pipeline.config. A
restarted run resumes from the latest checkpoint. With --eval_every_n_steps
it also evaluates during training (model_dir/eval) and keeps the best
checkpoint by --best_checkpoint_metric in model_dir/best/.

With --checkpoint_dir it evaluates each new checkpoint there (metrics in
model_dir/eval) until --eval_timeout seconds pass with none new;
--eval_timeout=0 evaluates the latest checkpoint once and exits. With
--eval_on_train_data it evaluates on the training input instead (one example
in --sample_1_of_n_eval_on_train_examples; metrics in
model_dir/eval_on_train_data/eval).

Every flag of the OD API's model_main_tf2.py is accepted; the Context R-CNN
side-input flags (--use_side_inputs, --side_input_*) end with an ERROR.

Usage:
  python scripts/model_main_tf2.py --pipeline_config_path=pipeline.config \
      --model_dir=runs/deepmac --num_train_steps=2000 --eval_every_n_steps=500
  python scripts/model_main_tf2.py --pipeline_config_path=pipeline.config \
      --model_dir=runs/deepmac --checkpoint_dir=runs/deepmac --eval_timeout=0
"""

import os

from absl import flags
from absl import logging

from deepmac_tf import cli
from deepmac_tf import file_checks
from deepmac_tf import odapi_flags
from deepmac_tf.errors import ConfigError

# TensorFlow is imported lazily (in main) so that --help answers at once.

_PIPELINE = flags.DEFINE_string('pipeline_config_path', None,
                                'Path to the pipeline config (required).')
_MODEL_DIR = flags.DEFINE_string(
    'model_dir', None, 'Where checkpoints, summaries and metrics go '
    '(required).')
_NUM_TRAIN_STEPS = flags.DEFINE_integer(
    'num_train_steps', None, 'Total training steps (default: '
    'train_config.num_steps). A resumed run continues up to it.')
_SAMPLE_1_OF_N_EVAL = flags.DEFINE_integer(
    'sample_1_of_n_eval_examples', None,
    'Evaluate one of every n eval examples (default: all).')
_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', None, 'If set, evaluate the checkpoints written here '
    'instead of training.')
_EVAL_TIMEOUT = flags.DEFINE_integer(
    'eval_timeout', 3600, 'Evaluation mode: stop after this many seconds '
    'with no new checkpoint; 0 evaluates the latest checkpoint once.')
_USE_TPU = flags.DEFINE_bool('use_tpu', False, 'Train on a TPU '
                             '(TPUStrategy; needs --tpu_name).')
_TPU_NAME = flags.DEFINE_string('tpu_name', None,
                                'Name or grpc:// address of the TPU.')
_NUM_WORKERS = flags.DEFINE_integer(
    'num_workers', 1, 'More than 1: MultiWorkerMirroredStrategy with the '
    'cluster from TF_CONFIG.')
_CHECKPOINT_EVERY_N = flags.DEFINE_integer(
    'checkpoint_every_n', 1000, 'Save a checkpoint every n steps (and '
    'always at the last step).')
_RECORD_SUMMARIES = flags.DEFINE_bool(
    'record_summaries', True, 'Write TensorBoard scalars to model_dir/train.')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', None, 'Text-format fragment merged over the config, '
    "e.g. 'train_config { batch_size: 4 }'.")
_CHECKPOINT_MAX_TO_KEEP = flags.DEFINE_integer(
    'checkpoint_max_to_keep', 7, 'How many recent checkpoints to keep.')
_EVAL_EVERY_N_STEPS = flags.DEFINE_integer(
    'eval_every_n_steps', 0, 'Evaluate during training every n steps (and '
    'at the end); 0 = off.')
_BEST_CHECKPOINT_METRIC = flags.DEFINE_string(
    'best_checkpoint_metric', None, 'Metric (higher is better) that picks '
    'the checkpoint kept in model_dir/best/ (default: unseen-class mask mAP '
    'when the config masks some classes, else DetectionMasks_Precision/mAP).')
_LOG_EVERY_N_STEPS = flags.DEFINE_integer(
    'log_every_n_steps', 100, 'Console progress every n steps.')
_EVAL_INPUT_INDEX = flags.DEFINE_integer(
    'eval_input_index', 0, 'Evaluation mode: which eval_input_reader.')
_EVAL_ON_TRAIN_DATA = flags.DEFINE_bool(
    'eval_on_train_data', False, 'Evaluation mode (--checkpoint_dir): '
    'evaluate on train_input_reader instead of eval_input_reader.')
_SAMPLE_1_OF_N_EVAL_ON_TRAIN = flags.DEFINE_integer(
    'sample_1_of_n_eval_on_train_examples', 5, 'With --eval_on_train_data: '
    'evaluate one of every n training examples.')
_SKIP_BAD_RECORDS = flags.DEFINE_bool(
    'skip_bad_records', False, 'Training: skip a record that cannot be read '
    'or decoded (a WARNING line names it, with the running count; the run '
    'ends with the total) instead of stopping at it. Not an OD API flag.')
odapi_flags.define_side_input_flags(flags)


def _required(flag):
  if not flag.value:
    raise ConfigError(f'--{flag.name}: is required.')
  return flag.value


def _train(configs, model_dir):
  from deepmac_tf.training import strategy as strategy_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  strategy = strategy_lib.select_strategy(
      use_tpu=_USE_TPU.value, tpu_name=_TPU_NAME.value,
      num_workers=_NUM_WORKERS.value)
  result = train_loop.train_loop(
      configs, model_dir, num_train_steps=_NUM_TRAIN_STEPS.value,
      strategy=strategy, use_tpu=_USE_TPU.value,
      checkpoint_every_n=_CHECKPOINT_EVERY_N.value,
      checkpoint_max_to_keep=_CHECKPOINT_MAX_TO_KEEP.value,
      record_summaries=_RECORD_SUMMARIES.value,
      log_every_n_steps=_LOG_EVERY_N_STEPS.value,
      eval_every_n_steps=_EVAL_EVERY_N_STEPS.value,
      best_checkpoint_metric=_BEST_CHECKPOINT_METRIC.value,
      sample_1_of_n_eval_examples=_SAMPLE_1_OF_N_EVAL.value or 1,
      skip_bad_records=_SKIP_BAD_RECORDS.value)
  print(f'Trained to step {result.step}. Last checkpoint: {result.checkpoint}')
  if result.skipped_records is not None:
    print(f'Skipped bad record reads (--skip_bad_records): '
          f'{result.skipped_records}')
  print(f'Pipeline config: {os.path.join(model_dir, "pipeline.config")}')
  if _RECORD_SUMMARIES.value:
    print(f'TensorBoard: tensorboard --logdir {model_dir}')
  best_json = os.path.join(model_dir, 'best', 'best_checkpoint.json')
  if os.path.exists(best_json):
    print(f'Best checkpoint: {best_json}')


def _check_eval_on_train_flags():
  if _EVAL_ON_TRAIN_DATA.value and not _CHECKPOINT_DIR.value:
    raise ConfigError(
        '--eval_on_train_data: evaluates checkpoints on the training input, '
        'so it needs --checkpoint_dir (evaluation mode); during training it '
        'is not supported (nor used by the OD API).')
  if (flags.FLAGS['sample_1_of_n_eval_on_train_examples'].present and
      not _EVAL_ON_TRAIN_DATA.value):
    raise ConfigError('--sample_1_of_n_eval_on_train_examples: only used '
                      'with --eval_on_train_data.')
  if _SKIP_BAD_RECORDS.value and _CHECKPOINT_DIR.value:
    raise ConfigError('--skip_bad_records: applies to training; evaluation '
                      '(--checkpoint_dir) reads every eval record.')


def _evaluate(configs, model_dir):
  from deepmac_tf.training import eval_on_train  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import evaluation_driver  # pylint: disable=g-import-not-at-top
  eval_input_index = _EVAL_INPUT_INDEX.value
  sample_1_of_n = _SAMPLE_1_OF_N_EVAL.value or 1
  if _EVAL_ON_TRAIN_DATA.value:
    configs = eval_on_train.train_data_eval_configs(
        configs, _SAMPLE_1_OF_N_EVAL_ON_TRAIN.value)
    model_dir = eval_on_train.output_root(model_dir)
    eval_input_index, sample_1_of_n = 0, 1
  last_step = _NUM_TRAIN_STEPS.value or configs['train_config'].num_steps
  if _EVAL_TIMEOUT.value < 0:
    raise ConfigError(f'--eval_timeout: must be >= 0, got '
                      f'{_EVAL_TIMEOUT.value}.')
  results = evaluation_driver.eval_continuously(
      configs, model_dir, _CHECKPOINT_DIR.value,
      eval_timeout=_EVAL_TIMEOUT.value,
      sample_1_of_n=sample_1_of_n,
      eval_input_index=eval_input_index, last_step=last_step or None)
  output_dir = evaluation_driver.eval_dir(model_dir, eval_input_index)
  print(f'Evaluated {len(results)} checkpoint(s); metrics in {output_dir}')


def main(argv):
  if len(argv) > 1:
    raise ConfigError(f'Unexpected arguments: {" ".join(argv[1:])}')
  pipeline_config_path = _required(_PIPELINE)
  model_dir = _required(_MODEL_DIR)
  odapi_flags.check_side_input_flags(flags.FLAGS)
  _check_eval_on_train_flags()
  logging.set_verbosity(logging.INFO)
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  configs = config_lib.get_configs_from_pipeline_file(
      pipeline_config_path, config_override=_CONFIG_OVERRIDE.value)
  # In a second, before TensorFlow loads (the pre-training checks repeat it).
  file_checks.check_writable_dir(model_dir, '--model_dir')
  if _CHECKPOINT_DIR.value:
    _evaluate(configs, model_dir)
  else:
    _train(configs, model_dir)


if __name__ == '__main__':
  cli.run(main)
