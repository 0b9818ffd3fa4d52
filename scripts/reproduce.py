"""Reproduces one of the paper's findings on the built-in synthetic dataset.

  python scripts/reproduce.py --experiment mask_heads --seeds 3
      (= --heads resnet4,hourglass20; --output_dir reproduce_output/mask_heads)

Each (head or method) x seed is one run through the library's own code: a
pipeline config from configs/ with overrides, the training loop of
scripts/model_main_tf2.py, and its evaluation (mIoU at groundtruth boxes for
detector-free experiments, COCO mask AP seen / unseen for detection models).
Writes into --output_dir:

  results.json     every run's settings and metrics, and `summary` rows
                   (name, seen/unseen mean and std over seeds, n_seeds,
                   seconds)
  results.md       the table, mean ± std, with the paper's numbers beside
                   (mIoU experiments: also the no-training references, a
                   mask drawn from the box alone, see reproduction/priors.py)
  seen_unseen.png  bars with seed spread; examples.png: every head on the
                   same unseen-class instances; per_class.png
  runs/<name>/seed_<i>/   config, checkpoints, run.json
  data/            the synthetic dataset of the experiment

An interrupted experiment continues with --resume: finished runs are reused,
an unfinished one continues from its latest checkpoint.

Experiments (--list shows their heads / methods): mask_heads (Fig. 3,
Table 4), hourglass_ablation (Tables 5-6), embeddings (Table 10),
gt_vs_proposals (Tables 1-2), seen_classes (MaskX R-CNN Fig. 3),
methods (Table 2), maskx (MaskX R-CNN Tables 1-2, end to end),
maskx_stage_wise (MaskX R-CNN Table 1: one detector run, --detector_steps,
then four mask branches trained on it frozen).
"""

import dataclasses
import os
import sys
import time

from absl import flags
from absl import logging

from deepmac_tf import cli
from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import experiments as experiments_lib

_EXPERIMENT = flags.DEFINE_string(
    'experiment', None, 'One of: ' + ', '.join(experiments_lib.EXPERIMENTS))
_HEADS = flags.DEFINE_list(
    'heads', [], 'Variants to run, by name or mask-head network_type '
    '(default: the experiment\'s default set; --list shows them).')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per variant (0, 1, ...).')
_STEPS = flags.DEFINE_integer(
    'steps', None, 'Training steps per run (default: the experiment\'s).')
_DETECTOR_STEPS = flags.DEFINE_integer(
    'detector_steps', None, 'Stage-wise experiments (maskx_stage_wise): '
    'training steps of the detector run that the mask variants restore '
    '(default: the experiment\'s); --steps is the mask branches\'.')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Where results go (default: '
    'reproduce_output/<experiment>).')
_RESUME = flags.DEFINE_boolean(
    'resume', False, 'Reuse the finished runs in --output_dir and continue '
    'the unfinished one.')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', '', 'Text-format fragment merged into every run\'s '
    'config (after the experiment\'s own overrides).')
_NUM_TRAIN = flags.DEFINE_integer(
    'num_train_images', None, 'Synthetic training images (default: the '
    'experiment\'s).')
_NUM_VAL = flags.DEFINE_integer(
    'num_val_images', None, 'Synthetic validation images (default: the '
    'experiment\'s).')
_IMAGE_SIZE = flags.DEFINE_integer(
    'image_size', None, 'Synthetic image size and model input size '
    '(default: the experiment\'s).')
_LOG_EVERY = flags.DEFINE_integer('log_every_n_steps', 100,
                                  'Training progress cadence (steps).')
_LIST = flags.DEFINE_boolean('list', False,
                             'List experiments and their variants, then exit.')


def _print_list():
  for experiment in experiments_lib.EXPERIMENTS.values():
    print(f'{experiment.name} ({experiment.paper_ref}, {experiment.steps} '
          f'steps): {experiment.title}')
    for variant in experiment.variants:
      default = (not experiment.default_variants or
                 variant.name in experiment.default_variants)
      state = '' if variant.template_path() else f'  [{variant.note}]'
      print(f'  {"*" if default else " "} {variant.name:28s} '
            f'{variant.label}{state}')
  print('(* = run without --heads)')


def _data_setting(experiment):
  data = experiment.data
  changes = {k: v for k, v in (('num_train_images', _NUM_TRAIN.value),
                               ('num_val_images', _NUM_VAL.value),
                               ('image_size', _IMAGE_SIZE.value))
             if v is not None}
  return dataclasses.replace(data, **changes)


def _input_size(experiment):
  return _IMAGE_SIZE.value or experiment.input_size


def _prepare_data(output_dir, data):
  """Renders the experiment's dataset once; returns its folder."""
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  data_dir = os.path.join(output_dir, 'data', data.folder_name())
  done = os.path.join(data_dir, 'DONE')
  if not os.path.exists(done):
    print(f'Rendering the synthetic dataset into {data_dir}', flush=True)
    synthetic.create_dataset(data_dir, data.num_train_images,
                             data.num_val_images, seed=data.seed,
                             config=data.scene_config(), show_progress=False)
    open(done, 'w').close()
  return data_dir


def _check_fresh(output_dir):
  runs = os.path.join(output_dir, 'runs')
  if _RESUME.value or not os.path.isdir(runs):
    return
  for _, _, files in os.walk(runs):
    if files:
      raise ConfigError(f'--output_dir {output_dir} already holds runs: pass '
                        '--resume to continue them, or choose another '
                        '--output_dir.')


def _eta(seconds_by_name, remaining_names):
  """Time left: each remaining run costs what that variant's runs cost
  (this session's or reused ones'; else the mean of all runs so far)."""
  if not remaining_names:
    return '0:00:00'
  every = [s for values in seconds_by_name.values() for s in values]
  if not every:
    return 'known after the first run'
  total = 0.0
  for name in remaining_names:
    own = seconds_by_name.get(name) or every
    total += sum(own) / len(own)
  total = int(total)
  return f'{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}'


def _machine():
  load = ', '.join(f'{v:.1f}' for v in os.getloadavg())
  return f'{os.cpu_count()} CPUs, load average {load}'


def main(argv):
  del argv
  if _LIST.value:
    _print_list()
    return 0
  if not _EXPERIMENT.value:
    raise ConfigError('--experiment: required; one of '
                      f'{", ".join(experiments_lib.EXPERIMENTS)}.')
  if _SEEDS.value < 1:
    raise ConfigError(f'--seeds: must be >= 1, got {_SEEDS.value}.')
  for flag in (_STEPS, _DETECTOR_STEPS):
    if flag.value is not None and flag.value < 1:
      raise ConfigError(f'--{flag.name}: must be >= 1, got {flag.value}.')
  experiment = experiments_lib.get(_EXPERIMENT.value)
  selected = experiment.select(_HEADS.value)
  variants = [v for v in selected if v.template_path()]
  unavailable = [v for v in selected if not v.template_path()]
  for variant in unavailable:
    print(f'Skipping {variant.name}: {variant.note}.')
  if not variants:
    raise ConfigError(f'--heads: none of {", ".join(_HEADS.value)} is '
                      'available yet (see --list).')
  steps = _STEPS.value or experiment.steps
  output_dir = os.path.abspath(_OUTPUT_DIR.value or os.path.join(
      'reproduce_output', experiment.name))
  os.makedirs(output_dir, exist_ok=True)
  _check_fresh(output_dir)
  return _run_experiment(experiment, variants, unavailable, steps, output_dir)


def _run_experiment(experiment, variants, unavailable, steps, output_dir):
  # Imported here so that --help stays fast.
  from deepmac_tf.reproduction import examples as examples_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import runner  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import summary  # pylint: disable=g-import-not-at-top
  start = time.time()
  machine_start = _machine()
  data = _data_setting(experiment)
  data_dir = _prepare_data(output_dir, data)
  examples = examples_lib.choose_examples(data_dir)
  box_priors = _box_priors(experiment, variants, data_dir)
  plan = [(variant, seed) for seed in range(_SEEDS.value)
          for variant in variants]
  records, executed_seconds = [], {}
  context = {
      'command': ' '.join(['python', 'scripts/reproduce.py'] +
                          sys.argv[1:]),
      'steps': steps,
      'seeds': _SEEDS.value,
      'data': data.settings(),
      'data_dir': data_dir,
      'priors': box_priors,
  }
  for index, (variant, seed) in enumerate(plan, start=1):
    settings = runner.run_settings(experiment, variant, seed,
                                   experiment.run_steps(
                                       variant, steps, _DETECTOR_STEPS.value),
                                   data,
                                   _input_size(experiment),
                                   _CONFIG_OVERRIDE.value)
    path = runner.run_dir(output_dir, variant.name, seed)
    tag = f'[run {index}/{len(plan)}] {variant.name} seed {seed}'
    record = runner.load_finished(path, settings)
    if record is None:
      remaining = [v.name for v, _ in plan[index - 1:]]
      print(f'{tag}: training {settings["steps"]} steps (ETA for the rest '
            f'{_eta(executed_seconds, remaining)})', flush=True)
      logging.set_verbosity(logging.INFO)
      record = runner.execute(experiment, variant, settings, data_dir, path,
                              examples, _LOG_EVERY.value)
      logging.set_verbosity(logging.WARNING)
      executed_seconds.setdefault(variant.name, []).append(record['seconds'])
      status = (f'done in {record["seconds"]:.0f} s (CPU '
                f'{record["cpu_seconds"]:.0f} s)')
    else:
      status = 'finished earlier, reused'
      executed_seconds.setdefault(variant.name, []).append(record['seconds'])
    records.append(record)
    print(f'{tag}: {status}: seen {_fmt(record["seen"])}, unseen '
          f'{_fmt(record["unseen"])} | ETA '
          f'{_eta(executed_seconds, [v.name for v, _ in plan[index:]])}',
          flush=True)
    context.update(machine=f'{machine_start} at start, {_machine()} now',
                   seconds=round(time.time() - start, 1))
    results = summary.build_results(experiment, variants, records,
                                    unavailable, context)
    # After every run, so an interrupted experiment has its figures too.
    results['plots'] = _plots(output_dir, results, variants, examples,
                              records)
    paths = summary.write(output_dir, results)
  print(summary.markdown(results).split('\n## Per class')[0])
  print('Written: ' + ', '.join(paths + [os.path.join(output_dir, p)
                                         for p in results['plots']]))
  return 0


def _box_priors(experiment, variants, data_dir):
  """The no-training references (mIoU experiments with the default
  split; a random split per seed has no single reference)."""
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import priors  # pylint: disable=g-import-not-at-top
  if experiment.metric != experiments_lib.MIOU or any(
      v.num_seen_classes for v in variants):
    return {}
  return priors.box_priors(data_dir, synthetic.SEEN_CLASS_IDS)


def _fmt(value):
  return '-' if value is None else f'{value:.1f}'


def _plots(output_dir, results, variants, examples, records):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import plots  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import runner  # pylint: disable=g-import-not-at-top
  masks = {}
  for variant in variants:
    seeds = sorted(r['seed'] for r in records if r['name'] == variant.name)
    if not seeds:
      continue
    path = os.path.join(runner.run_dir(output_dir, variant.name, seeds[0]),
                        runner.EXAMPLES_FILE)
    if os.path.exists(path):
      masks[variant.name] = np.load(path)['masks']
  seen_ids = set(records[0]['seen_class_ids']) if records else set()
  seen_names = {c.name for c in synthetic.CLASSES if c.id in seen_ids}
  return plots.write_all(output_dir, results, examples, masks, seen_names)


if __name__ == '__main__':
  cli.run(main)
