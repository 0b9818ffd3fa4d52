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

--jobs N runs up to N runs at once, each in a child process (this script
with --run_one) whose training log goes to runs/<name>/seed_<i>/log.txt and
whose TensorFlow uses --threads_per_job intra-op threads (default: CPUs / N).
A run that restores or reads another variant's run (maskx_stage_wise,
two-stage) starts once that run of the same seed is done. A failed run
stops new ones from starting; the others finish, the results of what
finished are written, the exit status is 1. Ctrl-C / SIGTERM stops the
children (each saves its step); --resume continues.

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
from deepmac_tf.reproduction import jobs as jobs_lib

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
_JOBS = flags.DEFINE_integer(
    'jobs', 1, 'Runs at the same time, each in its own process with its '
    'training log in runs/<name>/seed_<i>/log.txt (1: one after another in '
    'this process). 2 on a 2-core machine uses both cores fully; a run that '
    'needs another run of its seed (stage-wise, two-stage) waits for it.')
_THREADS = flags.DEFINE_integer(
    'threads_per_job', None, 'TensorFlow intra-op threads of each --jobs '
    'child (default: CPUs // --jobs, at least 1; 0: TensorFlow\'s own '
    'default).')
_RUN_ONE = flags.DEFINE_string(
    'run_one', None, 'Internal (--jobs): train and evaluate the one run '
    'VARIANT:SEED in this process.')


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


def _mean_seconds(seconds_by_name, name):
  """Mean seconds of the finished runs of variant ``name``; None before
  the first (``--jobs``' longest-first order and the ETA use it)."""
  seconds = seconds_by_name.get(name)
  return sum(seconds) / len(seconds) if seconds else None


def _eta(seconds_by_name, remaining_names, jobs=1, in_progress=()):
  """Time left: each remaining run costs what that variant's runs cost
  (this session's or reused ones'; else the mean of all runs so far), less
  what a run in progress (``in_progress``: (name, seconds so far)) has
  spent; ``jobs`` runs at a time share that out
  (``jobs_lib.makespan_seconds``)."""
  if not remaining_names and not in_progress:
    return '0:00:00'
  every = [s for values in seconds_by_name.values() for s in values]
  if not every:
    return 'known after the first run'

  def cost(name):
    own = _mean_seconds(seconds_by_name, name)
    return sum(every) / len(every) if own is None else own

  costs = [cost(name) for name in remaining_names]
  costs += [max(cost(name) - spent, 0.0) for name, spent in in_progress]
  total = int(jobs_lib.makespan_seconds(costs, jobs))
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
  if _JOBS.value < 1:
    raise ConfigError(f'--jobs: must be >= 1, got {_JOBS.value}.')
  if _THREADS.value is not None and _THREADS.value < 0:
    raise ConfigError(
        f'--threads_per_job: must be >= 0, got {_THREADS.value}.')
  experiment = experiments_lib.get(_EXPERIMENT.value)
  steps = _STEPS.value or experiment.steps
  output_dir = os.path.abspath(_OUTPUT_DIR.value or os.path.join(
      'reproduce_output', experiment.name))
  if _RUN_ONE.value:
    return _run_one(experiment, steps, output_dir, _RUN_ONE.value)
  selected = experiment.select(_HEADS.value)
  variants = [v for v in selected if v.template_path()]
  unavailable = [v for v in selected if not v.template_path()]
  for variant in unavailable:
    print(f'Skipping {variant.name}: {variant.note}.')
  if not variants:
    raise ConfigError(f'--heads: none of {", ".join(_HEADS.value)} is '
                      'available yet (see --list).')
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
  records, executed_seconds = {}, {}  # records by plan index
  context = {
      'command': ' '.join(['python', 'scripts/reproduce.py'] +
                          sys.argv[1:]),
      'steps': steps,
      'seeds': _SEEDS.value,
      'data': data.settings(),
      'data_dir': data_dir,
      'priors': box_priors,
  }
  jobs = _JOBS.value
  if jobs > 1:
    context['jobs'] = jobs  # each run's seconds are with `jobs` at once
  variant_of = {v.name: v for v in variants}
  schedule = jobs_lib.Schedule(
      jobs_lib.plan_runs(plan), jobs,
      cost_of=(lambda name: _mean_seconds(executed_seconds, name))
      if jobs > 1 else None)
  children = {}  # jobs_lib.Run -> jobs_lib.Child
  results, paths = None, []

  def tag(run):
    return f'[run {run.index}/{len(plan)}] {run.name} seed {run.seed}'

  def finish(run, record, status, seconds=None):
    # seconds: a child's whole wall time (start-up too), for the ETA.
    nonlocal results, paths
    schedule.finish(run)
    executed_seconds.setdefault(run.name, []).append(
        record['seconds'] if seconds is None else seconds)
    records[run.index] = record
    now = time.time()
    eta = _eta(executed_seconds, [r.name for r in schedule.pending], jobs,
               [(r.name, now - c.start) for r, c in children.items()])
    print(f'{tag(run)}: {status}: seen {_fmt(record["seen"])}, unseen '
          f'{_fmt(record["unseen"])} | ETA {eta}', flush=True)
    context.update(machine=f'{machine_start} at start, {_machine()} now',
                   seconds=round(time.time() - start, 1))
    in_order = [records[i] for i in sorted(records)]
    results = summary.build_results(experiment, variants, in_order,
                                    unavailable, context)
    # After every run, so an interrupted experiment has its figures too.
    results['plots'] = _plots(output_dir, results, variants, examples,
                              in_order)
    paths = summary.write(output_dir, results)

  try:
    while not schedule.over():
      taken = schedule.take()
      if taken is None:  # every slot busy, or the rest waits on a run
        run, child, code = jobs_lib.wait_any(children)
        record = runner.load_finished(child.folder, child.settings)
        if code == 0 and record is not None:
          finish(run, record, f'done in {record["seconds"]:.0f} s (CPU '
                 f'{record["cpu_seconds"]:.0f} s; process {child.seconds:.0f}'
                 ' s)', child.seconds)
        else:
          schedule.finish(run, ok=False)
          print(f'ERROR: {tag(run)} failed (exit status {code}): '
                f'{child.last_error_line()} (log: {child.log_path})',
                file=sys.stderr, flush=True)
        continue
      run, slot = taken
      variant = variant_of[run.name]
      settings = _settings(experiment, variant, run.seed, steps, data)
      path = runner.run_dir(output_dir, run.name, run.seed)
      record = runner.load_finished(path, settings)
      if record is not None:
        finish(run, record, 'finished earlier, reused')
      elif jobs == 1:
        rest = [run.name] + [r.name for r in schedule.pending]
        print(f'{tag(run)}: training {settings["steps"]} steps (ETA for the '
              f'rest {_eta(executed_seconds, rest)})', flush=True)
        logging.set_verbosity(logging.INFO)
        record = runner.execute(experiment, variant, settings, data_dir, path,
                                examples, _LOG_EVERY.value)
        logging.set_verbosity(logging.WARNING)
        finish(run, record, f'done in {record["seconds"]:.0f} s (CPU '
               f'{record["cpu_seconds"]:.0f} s)')
      else:
        children[run] = jobs_lib.Child(_child_command(run, output_dir), path,
                                       settings)
        print(f'{tag(run)}: training {settings["steps"]} steps (job {slot} '
              f'of {jobs}, log: {children[run].log_path})', flush=True)
  except BaseException:
    for run, child, code in jobs_lib.stop_all(children):
      print(f'{tag(run)}: stopped (exit status {code}); --resume continues '
            f'it (log: {child.log_path})', file=sys.stderr, flush=True)
    raise
  if results is not None:
    print(summary.markdown(results).split('\n## Per class')[0])
    print('Written: ' + ', '.join(paths + [os.path.join(output_dir, p)
                                           for p in results['plots']]))
  if schedule.failed:
    print(f'{len(schedule.failed)} run(s) failed, {len(schedule.pending)} '
          'not started: fix the cause (see the ERROR lines) and run the '
          'same command with --resume.', file=sys.stderr)
    return 1
  return 0


def _settings(experiment, variant, seed, steps, data):
  """``runner.run_settings`` of one run of this command (parent and
  ``--run_one`` child alike)."""
  from deepmac_tf.reproduction import runner  # pylint: disable=g-import-not-at-top
  return runner.run_settings(
      experiment, variant, seed,
      experiment.run_steps(variant, steps, _DETECTOR_STEPS.value), data,
      _input_size(experiment), _CONFIG_OVERRIDE.value)


def _threads_per_job():
  if _THREADS.value is not None:
    return _THREADS.value
  return max(1, (os.cpu_count() or 1) // _JOBS.value)


def _child_command(run, output_dir):
  """This script for the one run ``run``, with this command's settings."""
  command = [sys.executable, os.path.abspath(__file__),
             f'--run_one={run.name}:{run.seed}',
             f'--output_dir={output_dir}',
             f'--threads_per_job={_threads_per_job()}']
  for holder in (_EXPERIMENT, _STEPS, _DETECTOR_STEPS, _CONFIG_OVERRIDE,
                 _NUM_TRAIN, _NUM_VAL, _IMAGE_SIZE, _LOG_EVERY):
    if holder.value is not None:
      command.append(f'--{holder.name}={holder.value}')
  if flags.FLAGS['verbose'].value:
    command.append('--verbose')
  return command


def _run_one(experiment, steps, output_dir, which):
  """The ``--run_one VARIANT:SEED`` child: one run, as the parent would
  have run it in process."""
  name, _, seed = which.rpartition(':')
  variant = next((v for v in experiment.variants if v.name == name), None)
  if variant is None or not seed.isdigit():
    raise ConfigError(f'--run_one: expected VARIANT:SEED of experiment '
                      f'{experiment.name!r}, got {which!r}.')
  logging.set_verbosity(logging.INFO)
  threads = _threads_per_job()
  if threads:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.threading.set_intra_op_parallelism_threads(threads)
  logging.info('Run %s: TensorFlow intra-op threads: %s.', which,
               threads or 'TensorFlow\'s default')
  from deepmac_tf.reproduction import examples as examples_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import runner  # pylint: disable=g-import-not-at-top
  data = _data_setting(experiment)
  data_dir = _prepare_data(output_dir, data)
  settings = _settings(experiment, variant, int(seed), steps, data)
  runner.execute(experiment, variant, settings, data_dir,
                 runner.run_dir(output_dir, name, int(seed)),
                 examples_lib.choose_examples(data_dir), _LOG_EVERY.value)
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
