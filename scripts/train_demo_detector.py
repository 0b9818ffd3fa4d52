"""Trains the detector scripts/run_demo.py starts from, and ships it.

The demo has a few CPU minutes; a CenterNet detector trained from scratch in
that time reaches box AP ~20 on the synthetic val split (WORKSPACE_NOTES.md,
issue 12 item 4). So the project trains the demo's detector once, with this
script, and ships the result in the package
(deepmac_tf/reproduction/demo_detector/: the model's variables, a few MB,
and provenance.json). No download is involved anywhere.

  1. renders the synthetic dataset (--seed, --num_train_images train images,
     --num_val_images val images; the val split is the demo's own when the
     seed and size match, and the detector never trains on it);
  2. writes WORK_DIR/pipeline.config from
     configs/center_net_synthetic_demo_detector.config (the demo's
     backbone and box heads, no mask head);
  3. trains with the library's training loop (scripts/model_main_tf2.py's),
     evaluating box AP on the val split every --eval_every_n_steps; a rerun
     resumes from WORK_DIR/model_dir;
  4. writes the last checkpoint's model variables and provenance.json
     (command, steps, seed, data, box AP, CPU seconds) to --export_dir.

  python scripts/train_demo_detector.py --work_dir demo_detector_run

About 6000 steps, ~30 CPU minutes (2 cores: ~15 minutes on a quiet machine).
"""

import datetime
import json
import os
import resource
import subprocess
import sys
import time

from absl import flags
from absl import logging

from deepmac_tf import cli
from deepmac_tf import config as config_lib
from deepmac_tf.config import validation
from deepmac_tf.reproduction import demo

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUM_STEPS = 4

_WORK_DIR = flags.DEFINE_string(
    'work_dir', 'demo_detector_run',
    'Dataset, pipeline config, checkpoints and evaluations.')
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', demo.ASSET_DIR,
    'Where the detector is written (ckpt-0.* and provenance.json); the '
    'default is the one scripts/run_demo.py uses.')
_NUM_TRAIN = flags.DEFINE_integer('num_train_images', 4000,
                                  'Synthetic training images.')
_NUM_VAL = flags.DEFINE_integer(
    'num_val_images', 100,
    'Synthetic validation images (the demo evaluates on 100).')
_SEED = flags.DEFINE_integer('seed', 0, 'Dataset seed (the demo\'s: 0).')
_TRAIN_STEPS = flags.DEFINE_integer(
    'num_train_steps', None,
    'Training steps (default: the config\'s train_config.num_steps).')
_CHECKPOINT_EVERY = flags.DEFINE_integer('checkpoint_every_n', 1000,
                                         'Checkpoint cadence (steps).')
_EVAL_EVERY = flags.DEFINE_integer(
    'eval_every_n_steps', 1000,
    'Evaluate box AP on the val split every N steps (and at the end).')
_LOG_EVERY = flags.DEFINE_integer('log_every_n_steps', 250,
                                  'Console progress cadence (steps).')
_TEMPLATE = flags.DEFINE_string(
    'pipeline_config_template',
    os.path.join(_REPO, 'configs', 'center_net_synthetic_demo_detector.config'),
    'Pipeline config whose PATH_TO_BE_CONFIGURED placeholders are filled '
    'with the dataset folder.')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', '',
    'Text-format fragment merged into the pipeline config.')

_NOTE = flags.DEFINE_string(
    'provenance_note', '',
    'Free text kept in provenance.json (e.g. how an earlier run differed).')

_BOX_AP = 'DetectionBoxes_Precision/mAP'


def _step(number, title):
  print(f'\n[{number}/{_NUM_STEPS}] {title}', flush=True)


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _git_commit():
  try:
    return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=_REPO,
                          capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def _flags_without_note(args):
  """The command-line flags less --provenance_note (kept on its own)."""
  kept, skip = [], False
  for arg in args:
    if skip:
      skip = False
    elif arg in ('--provenance_note', '-provenance_note'):
      skip = True
    elif not arg.lstrip('-').startswith('provenance_note='):
      kept.append(arg)
  return kept


def _final_metrics(configs, model_dir, step):
  """The evaluation of ``step``'s checkpoint (run now if none is written)."""
  from deepmac_tf.training import evaluation_driver  # pylint: disable=g-import-not-at-top
  path = os.path.join(evaluation_driver.eval_dir(model_dir),
                      f'metrics_step_{step}.json')
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  results = evaluation_driver.eval_continuously(configs, model_dir, model_dir,
                                                eval_timeout=0)
  return next(iter(results.values()))


def _eval_curve(model_dir):
  """{step: box AP (0-100)} of every evaluation written in model_dir."""
  from deepmac_tf.training import evaluation_driver  # pylint: disable=g-import-not-at-top
  eval_dir = evaluation_driver.eval_dir(model_dir)
  curve = {}
  if not os.path.isdir(eval_dir):
    return curve
  for name in os.listdir(eval_dir):
    if name.startswith('metrics_step_') and name.endswith('.json'):
      step = name[len('metrics_step_'):-len('.json')]
      if step.isdigit():
        with open(os.path.join(eval_dir, name), encoding='utf-8') as f:
          value = json.load(f).get(_BOX_AP)
        if value is not None:
          curve[int(step)] = round(100 * value, 1)
  return dict(sorted(curve.items()))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start, cpu_start = time.time(), _cpu_seconds()
  work_dir = os.path.abspath(_WORK_DIR.value)
  data_dir = os.path.join(work_dir, 'synthetic_data')
  model_dir = os.path.join(work_dir, 'model_dir')
  os.makedirs(work_dir, exist_ok=True)

  _step(1, f'Creating the synthetic dataset in {data_dir}')
  demo.ensure_dataset(data_dir, _NUM_TRAIN.value, _NUM_VAL.value, _SEED.value)

  _step(2, 'Writing the pipeline config')
  with open(_TEMPLATE.value, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, data_dir)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=_TEMPLATE.value,
      config_override=_CONFIG_OVERRIDE.value or None)
  config_path = config_lib.save_pipeline_config(pipeline, work_dir)
  configs = config_lib.get_configs_from_pipeline_file(config_path)
  print(f'  {config_path}')

  _step(3, 'Training the detector (box AP on the val split every '
        f'{_EVAL_EVERY.value} steps)')
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  steps = _TRAIN_STEPS.value or configs['train_config'].num_steps
  logging.set_verbosity(logging.INFO)  # the training progress lines
  result = train_loop.train_loop(
      configs, model_dir, num_train_steps=steps,
      checkpoint_every_n=_CHECKPOINT_EVERY.value, checkpoint_max_to_keep=2,
      log_every_n_steps=_LOG_EVERY.value,
      eval_every_n_steps=_EVAL_EVERY.value)
  logging.set_verbosity(logging.WARNING)
  metrics = _final_metrics(configs, model_dir, result.step)
  curve = _eval_curve(model_dir)
  for step, value in curve.items():
    print(f'  step {step:6d}: box AP {value:5.1f}')

  _step(4, f'Writing the detector to {_EXPORT_DIR.value}')
  provenance = {
      'command': ' '.join(['python', 'scripts/train_demo_detector.py'] +
                          _flags_without_note(sys.argv[1:])),
      'pipeline_config': os.path.relpath(_TEMPLATE.value, _REPO),
      'config_override': _CONFIG_OVERRIDE.value,
      'train_steps': result.step,
      'dataset': {'num_train_images': _NUM_TRAIN.value,
                  'num_val_images': _NUM_VAL.value, 'seed': _SEED.value,
                  'trained_on': 'train split', 'evaluated_on': 'val split',
                  'val_split_sha256': demo.val_split_fingerprint(data_dir)},
      'val_box_ap_by_step': {str(k): v for k, v in curve.items()},
      'val_metrics': {k: round(100 * float(v), 1) for k, v in metrics.items()
                      if k.startswith('DetectionBoxes_') and
                      'PerformanceByCategory' not in k},
      'cpu_seconds_this_invocation': round(_cpu_seconds() - cpu_start),
      'wall_seconds_this_invocation': round(time.time() - start),
      'git_commit': _git_commit(),
      'note': _NOTE.value,
      'date': datetime.datetime.now(datetime.timezone.utc).strftime(
          '%Y-%m-%d'),
  }
  prefix = demo.write_model_checkpoint(configs['model'], result.checkpoint,
                                       _EXPORT_DIR.value, provenance)
  size = sum(os.path.getsize(os.path.join(_EXPORT_DIR.value, name))
             for name in os.listdir(_EXPORT_DIR.value)
             if name.startswith(demo.CHECKPOINT_NAME + '.'))
  box_ap = provenance['val_metrics'].get(_BOX_AP)
  print(f'  {prefix} ({size / 2**20:.1f} MB), step {result.step}, box AP '
        f'{box_ap if box_ap is not None else "-"} on the val split')
  print(f'  {os.path.join(_EXPORT_DIR.value, demo.PROVENANCE_NAME)}')
  print(f'\nDone in {time.time() - start:.0f} s '
        f'({_cpu_seconds() - cpu_start:.0f} CPU s).')
  return 0


if __name__ == '__main__':
  cli.run(main)
