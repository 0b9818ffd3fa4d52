"""One reproduction run: config, training, evaluation, example masks.

Training is ``training.train_loop.train_loop`` (``model_main_tf2.py``'s loop)
and evaluation ``training.evaluation_driver.eval_continuously`` (its
``--checkpoint_dir`` path): the library's own code, nothing else. A run
lives in ``<output_dir>/runs/<variant>/seed_<seed>/``:

  pipeline.config   the config it trained with
  model_dir/        checkpoints, TensorBoard, eval metrics JSON
  examples.npz      masks predicted for the experiment's example instances
  run.json          settings, metrics, seconds (written last: the run is done)

A run with a ``run.json`` is finished and is reused when resuming; one
without it restarts from its latest checkpoint (the training loop resumes
model, optimizer and step; the input pipeline starts over).
"""

import json
import os
import resource
import time

import numpy as np

from deepmac_tf import config as config_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import examples as examples_lib
from deepmac_tf.reproduction import experiments as experiments_lib
from deepmac_tf.reproduction import run_config
from deepmac_tf.reproduction import two_stage

RUN_FILE = 'run.json'
EXAMPLES_FILE = 'examples.npz'
_CHECKPOINTS_PER_RUN = 4

_MIOU_PREFIX = 'DetectorFreeMasks/mIoU'
_SEEN_MASK_AP = 'DetectionMasks_SeenClasses/mAP'
_UNSEEN_MASK_AP = 'DetectionMasks_UnseenClasses/mAP'
_BOX_AP = 'DetectionBoxes_Precision/mAP'
_MASK_AP_PER_CLASS = 'DetectionMasks_PerformanceByCategory/mAP/'


def run_dir(output_dir, variant_name, seed):
  return os.path.join(output_dir, 'runs', variant_name, f'seed_{seed}')


def run_settings(experiment, variant, seed, steps, data, input_size,
                 user_override):
  """What defines a run; a finished run is reused only if these match."""
  seen = (run_config.random_seen_split(variant.num_seen_classes, seed)
          if variant.num_seen_classes else None)
  extra = {key: getattr(variant, key)
           for key in ('pseudo_labels_from', 'detector_from')
           if getattr(variant, key)}
  return extra | {
      'experiment': experiment.name,
      'variant': variant.name,
      'label': variant.label,
      'seed': int(seed),
      'steps': int(steps),
      'template': os.path.basename(variant.template_path() or ''),
      'overrides': [o for o in (experiment.override, variant.override,
                                user_override) if o],
      'input_size': input_size,
      'data': data.settings(),
      'random_seen_class_ids': seen,
  }


def headline(metrics, metric, class_names):
  """(seen, unseen, box AP or None, {class name: value}) in 0-100."""
  def pct(key):
    value = metrics.get(key)
    return None if value is None or value < 0 else 100.0 * float(value)
  if metric == experiments_lib.MIOU:
    seen, unseen = pct(f'{_MIOU_PREFIX}_seen'), pct(f'{_MIOU_PREFIX}_unseen')
    per_class = {n: pct(f'{_MIOU_PREFIX}/{n}') for n in class_names}
    box_ap = None
  else:
    seen, unseen = pct(_SEEN_MASK_AP), pct(_UNSEEN_MASK_AP)
    per_class = {n: pct(_MASK_AP_PER_CLASS + n) for n in class_names}
    box_ap = pct(_BOX_AP)
  return seen, unseen, box_ap, per_class


def load_finished(path, settings):
  """The finished run's record, None if unfinished.

  Raises:
    ConfigError: it finished with other settings (naming the first one).
  """
  record_path = os.path.join(path, RUN_FILE)
  if not os.path.exists(record_path):
    return None
  with open(record_path, encoding='utf-8') as f:
    record = json.load(f)
  for key, value in settings.items():
    if record['settings'].get(key) != json.loads(json.dumps(value)):
      raise ConfigError(
          f'{record_path}: finished with {key} = '
          f'{record["settings"].get(key)!r}, this command asks for {value!r}; '
          'use another --output_dir (or the same flags) to resume.')
  return record


def _train(configs, model_dir, steps, log_every):
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  every = max(steps // _CHECKPOINTS_PER_RUN, 1)
  return train_loop.train_loop(
      configs, model_dir, num_train_steps=steps, checkpoint_every_n=every,
      checkpoint_max_to_keep=2, log_every_n_steps=log_every,
      record_summaries=True)


def _evaluate(configs, model_dir):
  from deepmac_tf.training import evaluation_driver  # pylint: disable=g-import-not-at-top
  # The train input is not read by evaluation (a two-stage run's eval
  # config is the variant's own: the stage-1 seen / unseen split).
  results = evaluation_driver.eval_continuously(configs, model_dir, model_dir,
                                                eval_timeout=0)
  return next(iter(results.items()))


def execute(experiment, variant, settings, data_dir, path, examples,
            log_every=100):
  """Trains and evaluates one run; writes and returns its record.

  Args:
    experiment / variant: from ``experiments``.
    settings: ``run_settings(...)``.
    data_dir: the synthetic dataset folder.
    path: the run folder (``run_dir``).
    examples: ``examples.choose_examples`` list (may be empty).
    log_every: training progress cadence.

  Returns:
    The record written to ``path/run.json``: settings, seen / unseen / box AP
    (0-100), per-class values, every metric, seconds.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  start = time.time()
  cpu_start = _cpu_seconds()
  pipeline = run_config.build_pipeline(
      variant.template_path(), data_dir, settings['overrides'],
      settings['steps'], settings['input_size'],
      settings['random_seen_class_ids'])
  os.makedirs(path, exist_ok=True)
  eval_configs, pseudo_labels = None, None
  if variant.pseudo_labels_from:
    pattern, pseudo_labels = two_stage.prepare(
        run_dir(os.path.dirname(os.path.dirname(os.path.dirname(path))),
                variant.pseudo_labels_from, settings['seed']),
        data_dir, path)
    pipeline, eval_pipeline = two_stage.stage_two_pipelines(pipeline,
                                                            pattern)
    eval_configs = config_lib.get_configs_from_pipeline_file(
        config_lib.save_pipeline_config(
            eval_pipeline, os.path.join(path, 'eval_config')))
  if variant.detector_from:
    _restore_detector(pipeline, os.path.dirname(os.path.dirname(
        os.path.dirname(path))), variant.detector_from, settings['seed'])
  config_path = config_lib.save_pipeline_config(pipeline, path)
  configs = config_lib.get_configs_from_pipeline_file(config_path)
  model_dir = os.path.join(path, 'model_dir')
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(settings['seed'])
  result = _train(configs, model_dir, settings['steps'], log_every)
  train_seconds = time.time() - start
  checkpoint, metrics = _evaluate(eval_configs or configs, model_dir)
  if examples and _predicts_masks(pipeline):
    np.savez_compressed(
        os.path.join(path, EXAMPLES_FILE),
        masks=examples_lib.predict_example_masks(configs, checkpoint,
                                                 examples))
  class_names = [c['name'] for c in _categories(configs)]
  seen, unseen, box_ap, per_class = headline(metrics, experiment.metric,
                                             class_names)
  record = {
      'name': variant.name,
      'label': variant.label,
      'seed': settings['seed'],
      'settings': settings,
      'seen_class_ids': run_config.seen_class_ids(
          eval_pipeline if variant.pseudo_labels_from else pipeline),
      'pseudo_labels': pseudo_labels,
      'seen': seen,
      'unseen': unseen,
      'box_ap': box_ap,
      'per_class': per_class,
      'final_losses': result.losses,
      'checkpoint': os.path.relpath(checkpoint, path),
      'train_seconds': round(train_seconds, 1),
      'seconds': round(time.time() - start, 1),
      # On a loaded machine wall seconds overstate the cost; CPU seconds
      # (all threads) / cores is the wall time on a quiet machine at best.
      'cpu_seconds': round(_cpu_seconds() - cpu_start, 1),
      'metrics': {k: float(v) for k, v in sorted(metrics.items())},
  }
  tmp = os.path.join(path, RUN_FILE + '.tmp')
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, os.path.join(path, RUN_FILE))
  return record


def _restore_detector(pipeline, output_dir, detector_variant, seed):
  """Stage-wise training: ``pipeline`` restores the detector of the finished
  ``detector_variant`` run of ``seed`` (its evaluated checkpoint).

  Raises:
    ConfigError: that run has not finished (run its variant first).
  """
  detector_path = run_dir(output_dir, detector_variant, seed)
  record_path = os.path.join(detector_path, RUN_FILE)
  if not os.path.exists(record_path):
    raise ConfigError(
        f'{record_path}: missing; this variant trains its mask branch on the '
        f'frozen detector of the {detector_variant!r} run (seed {seed}): '
        f'run --heads {detector_variant} first (or together, before it).')
  with open(record_path, encoding='utf-8') as f:
    record = json.load(f)
  train_config = pipeline.train_config
  train_config.fine_tune_checkpoint = os.path.join(detector_path,
                                                   record['checkpoint'])
  train_config.fine_tune_checkpoint_type = 'detection'


def _predicts_masks(pipeline):
  try:
    run_config.mask_block(pipeline)
  except ConfigError:
    return False
  return True


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _categories(configs):
  from deepmac_tf.evaluation import eval_setup  # pylint: disable=g-import-not-at-top
  return eval_setup.categories(configs, 0)
