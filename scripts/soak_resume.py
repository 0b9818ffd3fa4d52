r"""Kill-and-resume soak: SIGKILLs real training and export runs at random
moments and checks that nothing partial is ever picked up.

Each round starts ``model_main_tf2.py`` on the same ``model_dir`` (it
resumes from the latest checkpoint) and SIGKILLs it at one of:

* ``random``: a random moment (model building, tracing or training);
* ``checkpoint``: while a checkpoint is being written (a ``*_temp*`` entry
  or a checkpoint-state temp file appears in model_dir);
* ``export``: an ``exporter_main_v2.py`` re-export over the existing
  export (a complete export is made, not killed, before the first export
  round), at one of three moments in turn: ``write`` (0-3 s after the
  hidden staging folder appears), ``mid-swap`` (the old export renamed
  aside, the new one not yet renamed in: no export folder at all) and
  ``after commit`` (the new export renamed in, the old one not yet
  deleted). The exporter runs unchanged except that each of the swap's
  two renames is followed by a --swap_pause second sleep, so that the
  soak, watching from outside, can land a kill between them (they are
  microseconds apart otherwise).

After every kill it verifies: every checkpoint listed in model_dir loads,
``ckpt-N`` holds step N and optimizer iterations N, all weights finite;
the latest step never goes back; the next run logs ``Resumed from ckpt-K
(step K)`` and continues at step K+1. After an export kill it runs the
recovery every later export runs first, then checks that the export folder
is either the previous export, byte for byte, or the new one, whole (every
part present, the SavedModel's variables readable and finite, the
checkpoint step of the model_dir's latest checkpoint) and loads as a
SavedModel, that a ``mid-swap`` kill got the old export back and an
``after commit`` kill kept the new one, and that no hidden staging or old
folder is left. A final round trains to --num_train_steps, exports over
the existing export and loads the SavedModel.

  python scripts/soak_resume.py --pipeline_config_path=tiny/pipeline.config \
      --work_dir=/tmp/soak --kills=10 --num_train_steps=40
"""

import glob
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
_SWAP_PAUSE = flags.DEFINE_float('swap_pause', 1.0, 'Seconds the exporter '
                                 'sleeps after each rename of the swap (so '
                                 'that mid-swap kills can land).')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The subprocess runner and the checkpoint / resume checks:
# deepmac_tf/training/script_runs.py (shared with
# multi_worker_kill_restart.py).
MODES = ('random', 'checkpoint', 'export')
EXPORT_MOMENTS = ('write', 'mid-swap', 'after commit')

# Runs exporter_main_v2.py (argv[1:]) as __main__ with a sleep after each
# rename of atomic_dir's swap: ``target -> .name.old-*`` and
# ``.name.staging-* -> target``. Nothing else changes.
_EXPORT_SHIM = '''
import os, runpy, sys, time
pause, script = float(sys.argv[1]), sys.argv[2]
real_rename = os.rename
def rename(source, destination, *args, **kwargs):
  real_rename(source, destination, *args, **kwargs)
  if ('.old-' in os.path.basename(str(destination)) or
      '.staging-' in os.path.basename(str(source))):
    time.sleep(pause)
os.rename = rename
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name='__main__')
'''


def _train_args(model_dir, steps):
  return [os.path.join(REPO, 'scripts', 'model_main_tf2.py'),
          f'--pipeline_config_path={_PIPELINE.value}',
          f'--model_dir={model_dir}', f'--num_train_steps={steps}',
          f'--checkpoint_every_n={_CHECKPOINT_EVERY_N.value}',
          '--checkpoint_max_to_keep=3', '--log_every_n_steps=1',
          '--record_summaries=false']


def _export_args(model_dir, output, pause=None):
  shim = [] if pause is None else ['-c', _EXPORT_SHIM, str(pause)]
  return shim + [os.path.join(REPO, 'scripts', 'exporter_main_v2.py'),
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


def _export_phase(output):
  """'write', 'mid-swap', 'after commit' or None (nothing being written),
  from the hidden folders next to ``output``."""
  parent, name = os.path.split(output)
  hidden = [n for n in os.listdir(parent) if n.startswith(f'.{name}.')]
  if any('.old-' in n for n in hidden):
    return 'after commit' if os.path.exists(output) else 'mid-swap'
  return 'write' if any('.staging-' in n for n in hidden) else None


def _wait_and_kill(run, mode, rng, deadline, moment=None):
  """Kills ``run`` at a moment chosen by ``mode`` (and ``moment``, for
  export rounds); returns what was seen."""
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
    # 'write': once the hidden staging folder exists, a random 0-3 s
    # (saving the SavedModel, maybe the swap); 'mid-swap' / 'after commit':
    # as soon as that phase is seen (each lasts --swap_pause seconds).
    seen = f'no export {moment} phase seen before --round_timeout (killed then)'
    while time.time() < deadline and run.process.poll() is None:
      phase = _export_phase(run.output)
      if phase == moment or (moment == 'write' and phase is not None):
        if moment == 'write':
          time.sleep(rng.uniform(0.0, 3.0))
        seen = (f'{moment}: killed at {time.time() - run.started:.1f} s, '
                f'phase seen then: {_export_phase(run.output)}')
        break
      time.sleep(0.005)
  finished = run.process.poll() is not None
  run.kill()
  if finished and mode == 'export' and run.process.returncode == 0:
    return seen + ' (it had finished: a complete export)'
  if finished:
    raise AssertionError(f'the run ended by itself before it was killed '
                         f'(exit {run.process.returncode}):\n'
                         f'{run.text()[-3000:]}')
  return seen


def _export_report(output, before, new_step, moment=None):
  """Recovers as the next export would; checks what the export folder holds.

  Args:
    output: the export folder.
    before: (step, digest) of the export before this round, or None.
    new_step: the checkpoint step this round's export writes.
    moment: the export kill moment ('mid-swap' must get the old export
      back, 'after commit' must keep the new one), or None.

  Returns:
    (step, digest, words) of the export, or None when there is none.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from deepmac_tf.export import atomic_dir
  from deepmac_tf.training import script_runs
  # pylint: enable=g-import-not-at-top
  restored = atomic_dir.recover(output)
  parent, name = os.path.split(output)
  leftovers = glob.glob(os.path.join(parent, f'.{name}.*'))
  if leftovers:
    raise AssertionError(f'leftovers after recovery: {leftovers}')
  if not os.path.exists(output):
    if before is not None:
      raise AssertionError('the previous export vanished')
    return None
  digest = script_runs.export_digest(output)
  if before is not None and digest == before[1]:
    if moment == 'after commit':
      raise AssertionError('killed after the commit, yet the old export is '
                           'in place')
    words = (f'the old export (step {before[0]}), byte for byte'
             f'{", put back by the recovery" if restored else ""}')
    return before[0], digest, words
  if restored or moment == 'mid-swap':
    raise AssertionError(f'killed mid-swap (put back: {restored}), yet the '
                         'export is not the old one byte for byte')
  step = script_runs.verify_export(output)
  if step != new_step:
    raise AssertionError(f'the new export holds step {step}, expected '
                         f'{new_step}')
  tf.saved_model.load(os.path.join(output, 'saved_model'))
  return step, digest, f'the new export (step {step}), whole, loads'


def _export(model_dir, output, before, new_step):
  """A complete (not killed) export; returns _export_report's triple."""
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import script_runs
  # pylint: enable=g-import-not-at-top
  run = script_runs.ScriptRun(_export_args(model_dir, output))
  if run.wait(timeout=_ROUND_TIMEOUT.value) != 0:
    raise AssertionError(f'export failed:\n{run.text()[-3000:]}')
  export = _export_report(output, before, new_step)
  if export is None or (before is not None and export[1] == before[1]):
    raise AssertionError('a complete export did not replace the old one')
  return export


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
  latest, export, started = None, None, time.time()
  export_rounds = 0
  big = 10 ** 6
  checks = ('all listed checkpoints load, ckpt-N = step N = optimizer '
            'iterations, finite')
  for round_index in range(1, _KILLS.value + 1):
    mode = MODES[(round_index - 1) % len(MODES)] if round_index > 1 else (
        'random')
    if mode == 'export' and latest is None:
      mode = 'checkpoint'
    if mode == 'export' and export is None:
      # Every export kill lands on a re-export over an existing export.
      began = time.time()
      export = _export(model_dir, output, None, latest)
      print(f'export over a fresh target (not killed): {export[2]}; '
            f'{time.time() - began:.0f} s', flush=True)
    deadline = time.time() + _ROUND_TIMEOUT.value
    moment = None
    if mode == 'export':
      moment = EXPORT_MOMENTS[export_rounds % len(EXPORT_MOMENTS)]
      export_rounds += 1
      run = run_script(_export_args(model_dir, output, _SWAP_PAUSE.value))
      run.output = output
    else:
      run = run_script(_train_args(model_dir, big))
      run.model_dir = model_dir
    seen = _wait_and_kill(run, mode, rng, deadline, moment)
    resumed = (script_runs.resume_check(run.text(), latest)
               if mode != 'export' else '-')
    step = script_runs.verify_checkpoints(model_dir)
    if latest is not None and (step is None or step < latest):
      raise AssertionError(f'latest step went back: {latest} -> {step}')
    if mode == 'export':
      export = _export_report(output, export, latest, moment)
      exported = export[2]
    else:
      exported = 'none' if export is None else f'unchanged (step {export[0]})'
    latest = step
    print(f'kill {round_index}/{_KILLS.value} [{mode}] {seen}; {resumed}; '
          f'latest checkpoint step {latest} ({checks}); export: {exported}',
          flush=True)
  run = run_script(_train_args(model_dir, _STEPS.value))
  code = run.wait(timeout=_ROUND_TIMEOUT.value)
  if code != 0:
    raise AssertionError(f'final run exited {code}:\n{run.text()[-3000:]}')
  resumed = script_runs.resume_check(run.text(), latest)
  final = script_runs.verify_checkpoints(model_dir)
  if final != max(_STEPS.value, latest or 0):
    raise AssertionError(f'final checkpoint step {final}')
  target = 'the previous export' if export else 'a fresh target'
  export = _export(model_dir, output, export, final)
  print(f'final run: {resumed}; trained to step {final}; exported over '
        f'{target}: {export[2]}. {_KILLS.value} kills, all checks '
        f'passed in {time.time() - started:.0f} s.', flush=True)


if __name__ == '__main__':
  cli.run(main)
