r"""A worker killed mid-run: the run fails loudly, the restart resumes.

Starts a two-worker ``model_main_tf2.py --num_workers=2`` run on 127.0.0.1
(``TF_CONFIG``, MultiWorkerMirroredStrategy, one process per worker),
SIGKILLs one worker once the chief has logged step --kill_at_step, and
checks that the other worker ends by itself within --fail_timeout seconds
with a non-zero status and an ``ERROR:`` line (no hang, no traceback), and
that the checkpoints left behind are sound (every listed one loads,
``ckpt-N`` = step N = optimizer iterations, finite). Then it restarts both
workers with the same command and checks that they resume from the last
checkpoint, continue at the next step and finish at --num_train_steps.

  python scripts/multi_worker_kill_restart.py \
      --pipeline_config_path=tiny/pipeline.config --work_dir=/tmp/mw_kill
"""

import os
import time

from absl import flags

from deepmac_tf import cli

_PIPELINE = flags.DEFINE_string('pipeline_config_path', None,
                                'Pipeline config to train (required).')
_WORK_DIR = flags.DEFINE_string('work_dir', None, 'model/ goes here '
                                '(required; must not hold a model yet).')
_KILL_AT_STEP = flags.DEFINE_integer(
    'kill_at_step', 4, 'SIGKILL a worker once the chief logged this step.')
_KILL_WORKER = flags.DEFINE_integer('kill_worker', 1, 'Which worker to '
                                    'kill (0 = the chief).')
_STEPS = flags.DEFINE_integer('num_train_steps', 8, 'Steps of the run.')
_CHECKPOINT_EVERY_N = flags.DEFINE_integer('checkpoint_every_n', 2,
                                           'Checkpoint cadence.')
_FAIL_TIMEOUT = flags.DEFINE_integer(
    'fail_timeout', 180, 'Seconds the surviving worker may take to end '
    'after the kill (longer = a hang).')
_RUN_TIMEOUT = flags.DEFINE_integer('run_timeout', 900,
                                    'Seconds a phase may take.')


def error_lines(text):
  """The ``ERROR:`` lines of a log, and whether it holds a traceback."""
  lines = [line for line in text.splitlines() if line.startswith('ERROR:')]
  return lines, 'Traceback (most recent call last)' in text


def _start_workers(model_dir):
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import script_runs
  # pylint: enable=g-import-not-at-top
  workers = [f'127.0.0.1:{port}' for port in script_runs.free_ports(2)]
  args = [os.path.join(script_runs.REPO, 'scripts', 'model_main_tf2.py'),
          f'--pipeline_config_path={_PIPELINE.value}',
          f'--model_dir={model_dir}', f'--num_train_steps={_STEPS.value}',
          f'--checkpoint_every_n={_CHECKPOINT_EVERY_N.value}',
          '--num_workers=2', '--log_every_n_steps=1',
          '--record_summaries=false']
  return [script_runs.ScriptRun(
      args, env=dict(os.environ,
                     TF_CONFIG=script_runs.tf_config(workers, index)))
          for index in range(2)]


def _stop_all(runs):
  for run in runs:
    if run.process.poll() is None:
      run.kill()


def main(argv):
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import ConfigError
  from deepmac_tf.training import script_runs
  # pylint: enable=g-import-not-at-top
  if len(argv) > 1:
    raise ConfigError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not _PIPELINE.value or not _WORK_DIR.value:
    raise ConfigError('--pipeline_config_path and --work_dir are required.')
  if not 0 < _KILL_AT_STEP.value < _STEPS.value:
    raise ConfigError(f'--kill_at_step: must be in 1..{_STEPS.value - 1}.')
  if _KILL_WORKER.value not in (0, 1):
    raise ConfigError('--kill_worker: 0 or 1.')
  model_dir = os.path.abspath(os.path.join(_WORK_DIR.value, 'model'))
  if os.path.exists(model_dir):
    raise ConfigError(f'--work_dir: {model_dir} exists; give a fresh folder.')
  started = time.time()
  victim_index = _KILL_WORKER.value
  runs = _start_workers(model_dir)
  try:
    deadline = time.time() + _RUN_TIMEOUT.value
    if not runs[0].wait_for(rf'Step {_KILL_AT_STEP.value}/', deadline):
      raise AssertionError(f'the chief never logged step '
                           f'{_KILL_AT_STEP.value}:\n{runs[0].text()[-3000:]}')
    victim, survivor = runs[victim_index], runs[1 - victim_index]
    victim.kill()
    killed = time.time()
    print(f'phase 1: two workers on 127.0.0.1; worker {victim_index} '
          f'SIGKILLed after the chief logged step {_KILL_AT_STEP.value} '
          f'({killed - started:.0f} s after the start).', flush=True)
    try:
      code = survivor.wait(timeout=_FAIL_TIMEOUT.value)
    except Exception:  # pylint: disable=broad-except
      raise AssertionError(
          f'worker {1 - victim_index} still running {_FAIL_TIMEOUT.value} s '
          f'after the kill (a hang):\n{survivor.text()[-3000:]}') from None
    ended = time.time() - killed
    errors, traceback = error_lines(survivor.text())
    if code == 0 or not errors or traceback:
      raise AssertionError(
          f'worker {1 - victim_index} exited {code} '
          f'{"with a traceback" if traceback else "without an ERROR line"}'
          f':\n{survivor.text()[-8000:]}')
    print(f'  worker {1 - victim_index} ended by itself {ended:.1f} s after '
          f'the kill, exit {code}, no traceback:\n  {errors[-1]}', flush=True)
  finally:
    _stop_all(runs)
  latest = script_runs.verify_checkpoints(model_dir)
  if latest is None:
    raise AssertionError('no checkpoint was written before the kill')
  print(f'  checkpoints: latest step {latest} (every listed checkpoint loads, '
        'ckpt-N = step N = optimizer iterations, finite).', flush=True)

  restarted = time.time()
  runs = _start_workers(model_dir)
  try:
    codes = [run.wait(timeout=_RUN_TIMEOUT.value) for run in runs]
  finally:
    _stop_all(runs)
  for index, (run, code) in enumerate(zip(runs, codes)):
    if code != 0:
      raise AssertionError(f'restarted worker {index} exited {code}:\n'
                           f'{run.text()[-3000:]}')
  resumed = script_runs.resume_check(runs[0].text(), latest)
  if 'continued' not in resumed:
    raise AssertionError(f'the restarted chief did not resume from step '
                         f'{latest}: {resumed}\n{runs[0].text()[-3000:]}')
  final = script_runs.verify_checkpoints(model_dir)
  if final != _STEPS.value:
    raise AssertionError(f'final checkpoint step {final}, expected '
                         f'{_STEPS.value}')
  print(f'phase 2: both workers restarted with the same command: the chief '
        f'{resumed}; both exited 0 at step {final} '
        f'({time.time() - restarted:.0f} s); checkpoints sound. All checks '
        f'passed in {time.time() - started:.0f} s.', flush=True)


if __name__ == '__main__':
  cli.run(main)
