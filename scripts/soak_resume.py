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
# The subprocess runner and the checkpoint / resume checks:
# deepmac_tf/training/script_runs.py (shared with
# multi_worker_kill_restart.py).
MODES = ('random', 'checkpoint', 'export')


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


def _checkpoint_writing(model_dir, leftovers=()):
  """A checkpoint is being written: TF's ``ckpt-N_temp`` folder, or the
  temp file of the ``checkpoint`` state file (not counting ``leftovers``,
  what an earlier kill left behind)."""
  names = os.listdir(model_dir) if os.path.isdir(model_dir) else []
  return any(((n.startswith('ckpt-') and '_temp' in n) or
              (n.startswith('checkpoint') and n != 'checkpoint')) and
             n not in leftovers for n in names)


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
    # The write of a later checkpoint (one is complete: the checkpoint state
    # file lists it), so that the run makes progress across rounds; killing
    # every first write kept a run at no checkpoint for 6 rounds.
    state = os.path.join(model_dir, 'checkpoint')
    # A temp file left by a kill during an earlier write is no new write.
    leftovers = (set(os.listdir(model_dir)) if os.path.isdir(model_dir)
                 else set())
    while time.time() < deadline and run.process.poll() is None:
      if (_checkpoint_writing(model_dir, leftovers) and
          os.path.exists(state)):
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


def main(argv):
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import ConfigError
  from deepmac_tf.training import script_runs
  # pylint: enable=g-import-not-at-top
  run_script = script_runs.ScriptRun
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
      run = run_script(_export_args(model_dir, output))
      run.output = output
    else:
      run = run_script(_train_args(model_dir, big))
      run.model_dir = model_dir
    seen = _wait_and_kill(run, mode, rng, deadline)
    resumed = (script_runs.resume_check(run.text(), latest)
               if mode != 'export' else '-')
    step = script_runs.verify_checkpoints(model_dir)
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
  run = run_script(_train_args(model_dir, _STEPS.value))
  code = run.wait(timeout=_ROUND_TIMEOUT.value)
  if code != 0:
    raise AssertionError(f'final run exited {code}:\n{run.text()[-3000:]}')
  resumed = script_runs.resume_check(run.text(), latest)
  final = script_runs.verify_checkpoints(model_dir)
  if final != max(_STEPS.value, latest or 0):
    raise AssertionError(f'final checkpoint step {final}')
  run = run_script(_export_args(model_dir, output))
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
