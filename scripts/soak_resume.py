r"""Kill-and-resume soak: SIGKILLs real training and export runs at random
moments and checks that nothing partial is ever picked up.

Each round starts ``model_main_tf2.py`` on the same ``model_dir`` (it
resumes from the latest checkpoint) and SIGKILLs it at one of:

* ``random``: a random moment (model building, tracing or training);
* ``checkpoint``: while a checkpoint is being written (a ``*_temp*`` entry
  or a checkpoint-state temp file appears in model_dir);
* ``export``: an ``exporter_main_v2.py`` re-export over the same output
  folder, at a random moment (building, writing the staging folder, swap).

After every kill it verifies: every checkpoint listed in model_dir loads,
``ckpt-N`` holds step N and optimizer iterations N, all weights finite;
the latest step never goes back; the next run logs ``Resumed from ckpt-K
(step K)`` and continues at step K+1; an interrupted export is either the
previous export or absent (after the recovery the next export runs), never
a mix, and no hidden staging folder outlives the next export. A final
round trains to --num_train_steps, exports and loads the SavedModel.

  python scripts/soak_resume.py --pipeline_config_path=tiny/pipeline.config \
      --work_dir=/tmp/soak --kills=10 --num_train_steps=40
"""

import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

from absl import flags

from deepmac_tf import cli

_PIPELINE = flags.DEFINE_string('pipeline_config_path', None,
                                'Pipeline config to train (required).')
_WORK_DIR = flags.DEFINE_string('work_dir', None, 'model/ and exported/ go '
                                'here (required; must not hold a model yet).')
_KILLS = flags.DEFINE_integer('kills', 10, 'SIGKILLs before the final run.')
_STEPS = flags.DEFINE_integer('num_train_steps', 40, 'Steps of the final '
                              'run (kills stop before it).')
_CHECKPOINT_EVERY_N = flags.DEFINE_integer('checkpoint_every_n', 2,
                                           'Checkpoint cadence of the runs.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed of the kill moments.')
_ROUND_TIMEOUT = flags.DEFINE_integer('round_timeout', 600,
                                      'Seconds a round may take.')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ('random', 'checkpoint', 'export')


class _Run:
  """A subprocess whose stderr lines are collected by a thread."""

  def __init__(self, args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    self.started = time.time()
    self.process = subprocess.Popen(
        [sys.executable] + args, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append(line.rstrip('\n'))

  def text(self):
    return '\n'.join(self.lines)

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    self.process.wait()
    self._reader.join(timeout=10)

  def wait(self, timeout):
    self.process.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return self.process.returncode


def _train_args(model_dir, steps):
  return [os.path.join(REPO, 'scripts', 'model_main_tf2.py'),
          f'--pipeline_config_path={_PIPELINE.value}',
          f'--model_dir={model_dir}', f'--num_train_steps={steps}',
          f'--checkpoint_every_n={_CHECKPOINT_EVERY_N.value}',
          '--checkpoint_max_to_keep=3', '--log_every_n_steps=1',
          '--record_summaries=false']


def _export_args(model_dir, output):
  return [os.path.join(REPO, 'scripts', 'exporter_main_v2.py'),
          '--input_type=image_tensor',
          f'--pipeline_config_path={os.path.join(model_dir, "pipeline.config")}',
          f'--trained_checkpoint_dir={model_dir}',
          f'--output_directory={output}']


def _checkpoint_writing(model_dir):
  """A checkpoint is being written: TF's ``ckpt-N_temp`` folder, or the
  temp file of the ``checkpoint`` state file."""
  names = os.listdir(model_dir) if os.path.isdir(model_dir) else []
  return any((n.startswith('ckpt-') and '_temp' in n) or
             (n.startswith('checkpoint') and n != 'checkpoint')
             for n in names)


def _wait_and_kill(run, mode, rng, deadline):
  """Kills ``run`` at a moment chosen by ``mode``; returns what was seen."""
  if mode == 'random':
    # Half the kills before training starts (build, restore, tracing), half
    # during training steps.
    if rng.random() < 0.5:
      delay = rng.uniform(3.0, 40.0)
      while (time.time() < run.started + delay and
             run.process.poll() is None and 'Step ' not in run.text()):
        time.sleep(0.05)
      seen = f'at {time.time() - run.started:.1f} s (before training)'
    else:
      while (time.time() < deadline and run.process.poll() is None and
             'Step ' not in run.text()):
        time.sleep(0.05)
      time.sleep(rng.uniform(0.0, 10.0))
      seen = f'at {time.time() - run.started:.1f} s (while training)'
  elif mode == 'checkpoint':
    model_dir = run.model_dir
    seen = 'no checkpoint write seen before --round_timeout (killed then)'
    # The write of a later checkpoint (ckpt-N with an earlier one on disk),
    # so that the run makes progress across rounds.
    had = set(glob.glob(os.path.join(model_dir, 'ckpt-*.index')))
    while time.time() < deadline and run.process.poll() is None:
      if _checkpoint_writing(model_dir):
        if had or glob.glob(os.path.join(model_dir, 'ckpt-*.index')):
          seen = 'during a checkpoint write'
          break
      time.sleep(0.002)
  else:  # export
    # Into the write phase: once the hidden staging folder exists, a random
    # 0-3 s (saving the SavedModel, the swap), or the deadline.
    parent = os.path.dirname(run.output)
    name = os.path.basename(run.output)
    seen = 'no export write seen before --round_timeout (killed then)'
    while time.time() < deadline and run.process.poll() is None:
      if glob.glob(os.path.join(parent, f'.{name}.staging-*')):
        time.sleep(rng.uniform(0.0, 3.0))
        seen = ('while writing the export '
                f'({time.time() - run.started:.1f} s)')
        break
      time.sleep(0.01)
  finished = run.process.poll() is not None
  run.kill()
  if finished and mode == 'export' and run.process.returncode == 0:
    return seen + ' (it had finished: a complete export)'
  if finished:
    raise AssertionError(f'the run ended by itself before it was killed '
                         f'(exit {run.process.returncode}):\n'
                         f'{run.text()[-3000:]}')
  return seen


def _checkpoint_report(model_dir):
  """Verifies every listed checkpoint; returns the latest step (or None)."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None:
    return None
  latest = None
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    step = int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE'))
    iterations = int(reader.get_tensor(
        'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'))
    number = int(path.rsplit('-', 1)[1])
    if not step == number == iterations:
      raise AssertionError(f'{path}: step {step}, optimizer iterations '
                           f'{iterations}')
    for key, dtype in reader.get_variable_to_dtype_map().items():
      if dtype.is_floating and not np.all(np.isfinite(reader.get_tensor(key))):
        raise AssertionError(f'{path}: {key} is not finite')
    latest = step
  if not state.model_checkpoint_path.endswith(f'ckpt-{latest}'):
    raise AssertionError(f'latest {state.model_checkpoint_path} is not the '
                         f'last listed checkpoint (step {latest})')
  for index in glob.glob(os.path.join(model_dir, 'ckpt-*.index')):
    tf.train.load_checkpoint(index[:-len('.index')])  # no partial files
  return latest


def _export_report(output, before):
  """Recovers as the next export would; checks the export is whole.

  Returns:
    The exported checkpoint step, or None when there is no export.
  """
  from deepmac_tf.export import atomic_dir  # pylint: disable=g-import-not-at-top
  restored = atomic_dir.recover(output)
  parent, name = os.path.split(output)
  leftovers = glob.glob(os.path.join(parent, f'.{name}.*'))
  if leftovers:
    raise AssertionError(f'leftovers after recovery: {leftovers}')
  if not os.path.exists(output):
    if before is not None:
      raise AssertionError('the previous export vanished')
    return None
  for part in ('saved_model/saved_model.pb', 'pipeline.config',
               'checkpoint/checkpoint'):
    if not os.path.exists(os.path.join(output, part)):
      raise AssertionError(f'{output}: {part} is missing')
  with open(os.path.join(output, 'saved_model', 'assets.extra',
                         'export_metadata.json'), encoding='utf-8') as f:
    step = json.load(f)['checkpoint_step']
  note = ' (old export put back)' if restored else ''
  return step, note


def _resume_check(run, latest):
  text = run.text()
  if latest is None:
    return 'fresh start'
  wanted = f'(step {latest})'
  if 'Resumed from' not in text or wanted not in text:
    return 'killed before it logged its resume'
  match = re.search(r'Step (\d+)/', text)
  if match and int(match.group(1)) != latest + 1:
    raise AssertionError(f'resumed at step {latest} but the first progress '
                         f'line is step {match.group(1)}')
  return f'resumed at step {latest}' + (
      f', continued at step {latest + 1}' if match else '')


def main(argv):
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise ConfigError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not _PIPELINE.value or not _WORK_DIR.value:
    raise ConfigError('--pipeline_config_path and --work_dir are required.')
  model_dir = os.path.abspath(os.path.join(_WORK_DIR.value, 'model'))
  output = os.path.abspath(os.path.join(_WORK_DIR.value, 'exported'))
  if os.path.exists(model_dir):
    raise ConfigError(f'--work_dir: {model_dir} exists; give a fresh folder.')
  rng = random.Random(_SEED.value)
  latest, export_step, started = None, None, time.time()
  big = 10 ** 6
  for round_index in range(1, _KILLS.value + 1):
    mode = MODES[(round_index - 1) % len(MODES)] if round_index > 1 else (
        'random')
    if mode == 'export' and latest is None:
      mode = 'checkpoint'
    deadline = time.time() + _ROUND_TIMEOUT.value
    if mode == 'export':
      run = _Run(_export_args(model_dir, output))
      run.output = output
    else:
      run = _Run(_train_args(model_dir, big))
      run.model_dir = model_dir
    seen = _wait_and_kill(run, mode, rng, deadline)
    resumed = _resume_check(run, latest) if mode != 'export' else '-'
    step = _checkpoint_report(model_dir)
    if latest is not None and (step is None or step < latest):
      raise AssertionError(f'latest step went back: {latest} -> {step}')
    export = _export_report(output, export_step)
    if export is not None:
      export_step = export[0]
    latest = step
    print(f'kill {round_index}/{_KILLS.value} [{mode}] {seen}; {resumed}; '
          f'latest checkpoint step {latest} (all listed checkpoints load, '
          'ckpt-N = step N = optimizer iterations, finite); export: '
          f'{"none" if export is None else "step %s%s" % export}', flush=True)
  run = _Run(_train_args(model_dir, _STEPS.value))
  code = run.wait(timeout=_ROUND_TIMEOUT.value)
  if code != 0:
    raise AssertionError(f'final run exited {code}:\n{run.text()[-3000:]}')
  resumed = _resume_check(run, latest)
  final = _checkpoint_report(model_dir)
  if final != max(_STEPS.value, latest or 0):
    raise AssertionError(f'final checkpoint step {final}')
  run = _Run(_export_args(model_dir, output))
  if run.wait(timeout=_ROUND_TIMEOUT.value) != 0:
    raise AssertionError(f'final export failed:\n{run.text()[-3000:]}')
  exported = _export_report(output, export_step)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.saved_model.load(os.path.join(output, 'saved_model'))
  print(f'final run: {resumed}; trained to step {final}; exported step '
        f'{exported[0]} and loaded it. {_KILLS.value} kills, all checks '
        f'passed in {time.time() - started:.0f} s.', flush=True)


if __name__ == '__main__':
  cli.run(main)
