"""scripts/reproduce.py --jobs N: runs in child processes, dependencies,
failures, interrupts, ETA (deepmac_tf.reproduction.jobs)."""

import json
import os
import signal
import sys
import time

from absl import flags
from absl.testing import flagsaver
import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import experiments
from deepmac_tf.reproduction import jobs
from deepmac_tf.reproduction import runner
import test_reproduce  # tests/ is on the path: its TINY setting and loader

# TINY without its --heads.
TINY = [a for a in test_reproduce.TINY if not a.startswith('--heads')]

# Stands in for a `--run_one` child: argv = mode, run folder, record JSON.
# Modes: ok[:SECONDS] (sleep, then write run.json), fail (a traceback),
# after:FILE:TEXT:SECONDS (wait until FILE holds TEXT, sleep, then ok).
# SIGTERM writes `stopped` (as a real child saves its step) and exits 143.
_FAKE_CHILD = r'''
import os, signal, sys, time
mode, path, record = sys.argv[1:4]
def stop(signum, frame):
  with open(os.path.join(path, 'stopped'), 'w') as f:
    f.write(str(signum))
  sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
print('fake child ' + 'listening', flush=True)  # not in the log's header
if mode == 'fail':
  print('Traceback (most recent call last):')
  print('ValueError: the fake run broke')
  print('(after the traceback)', flush=True)
  sys.exit(1)
if mode.startswith('after:'):
  _, wait_for, text, seconds = mode.split(':')
  while not (os.path.exists(wait_for) and text in open(wait_for).read()):
    time.sleep(0.05)
  time.sleep(float(seconds))
elif ':' in mode:
  time.sleep(float(mode.split(':')[1]))
with open(os.path.join(path, 'run.json.tmp'), 'w') as f:
  f.write(record)
os.replace(os.path.join(path, 'run.json.tmp'), os.path.join(path, 'run.json'))
'''


def _script():
  return test_reproduce._script_module()  # pylint: disable=protected-access


def _main(*argv):
  script = _script()  # defines the flags
  with flagsaver.flagsaver():
    flags.FLAGS(['reproduce.py', *argv])
    return script.main([])


def _fake_children(monkeypatch, modes, started=None):
  """Replaces each child by _FAKE_CHILD; ``modes``: {(name, seed): mode}
  (default ok). ``started`` collects (name, seed, finished dependencies)."""
  script = _script()

  def child_command(run, output_dir):
    experiment = experiments.get(flags.FLAGS.experiment)
    variant = next(v for v in experiment.variants if v.name == run.name)
    steps = flags.FLAGS.steps or experiment.steps
    settings = script._settings(experiment, variant, run.seed, steps,  # pylint: disable=protected-access
                                script._data_setting(experiment))  # pylint: disable=protected-access
    path = runner.run_dir(output_dir, run.name, run.seed)
    if started is not None:
      needs_done = all(
          os.path.exists(os.path.join(runner.run_dir(output_dir, n, run.seed),
                                      runner.RUN_FILE)) for n in run.needs)
      started.append((run.name, run.seed, needs_done))
    record = {
        'name': run.name, 'label': variant.label, 'seed': run.seed,
        'settings': json.loads(json.dumps(settings)),
        'seen_class_ids': [1, 2, 3, 4, 5], 'pseudo_labels': None,
        'seen': 50.0 + run.seed, 'unseen': 40.0, 'box_ap': None,
        'per_class': {'star': 40.0}, 'final_losses': {}, 'checkpoint': 'c',
        'train_seconds': 1.0, 'seconds': 2.0, 'cpu_seconds': 1.5,
        'metrics': {}}
    return [sys.executable, '-c', _FAKE_CHILD,
            modes.get((run.name, run.seed), 'ok'), path, json.dumps(record)]

  monkeypatch.setattr(script, '_child_command', child_command)


_FAKE_DATA = ['--steps=1', '--num_train_images=2', '--num_val_images=2',
              '--image_size=32']


def test_tiny_experiment_with_two_jobs_writes_logs_and_resumes(
    tmp_path, monkeypatch, capsys):
  """One real --run_one child (TensorFlow start-up dominates: the scheduling
  of several children is checked with stand-in children below)."""
  out = str(tmp_path / 'out')
  assert _main(*TINY, '--heads=resnet4', '--seeds=1', '--jobs=2',
               f'--output_dir={out}') == 0
  printed = capsys.readouterr().out
  log = os.path.join(runner.run_dir(out, 'resnet4', 0), jobs.LOG_FILE)
  assert ('[run 1/1] resnet4 seed 0: training 1 steps (job 1 of 2, log: '
          f'{log})') in printed
  with open(log) as f:
    text = f.read()
  threads = max(os.cpu_count() // 2, 1)
  assert '--run_one=resnet4:0' in text
  assert f'--threads_per_job={threads}' in text
  assert f'Run resnet4:0: TensorFlow intra-op threads: {threads}' in text
  assert 'Training done at step 1' in text
  assert printed.count(': done in ') == 1
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  assert [r['name'] for r in results['runs']] == ['resnet4']
  assert [r['name'] for r in results['summary']] == ['resnet4']
  assert results['jobs'] == 2
  assert results['runs'][0]['settings']['steps'] == 1

  # --resume reuses the run: no child starts.
  def no_child(*args):
    raise AssertionError(f'a child started: {args}')

  monkeypatch.setattr(jobs, 'Child', no_child)
  assert _main(*TINY, '--heads=resnet4', '--seeds=1', '--jobs=2',
               '--resume', f'--output_dir={out}') == 0
  printed = capsys.readouterr().out
  assert printed.count('finished earlier, reused') == 1
  with open(os.path.join(out, 'results.json')) as f:
    assert json.load(f)['runs'] == results['runs']


def test_dependent_runs_wait_for_their_detector(tmp_path, monkeypatch,
                                                capsys):
  out = str(tmp_path / 'out')
  started = []
  _fake_children(monkeypatch, {('detector', 0): 'ok:0.5',
                               ('detector', 1): 'ok:0.5'}, started)
  assert _main('--experiment=maskx_stage_wise', '--detector_steps=1',
               '--heads=detector,class_agnostic,transfer', '--seeds=2',
               '--jobs=2', f'--output_dir={out}', *_FAKE_DATA) == 0
  # Both detectors first (the dependents cannot start), then the rest.
  assert started[:2] == [('detector', 0, True), ('detector', 1, True)]
  assert len(started) == 6 and all(done for _, _, done in started)
  printed = capsys.readouterr().out
  assert printed.count(': done in ') == 6
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  # Plan order, whatever order the runs finished in.
  assert [(r['name'], r['seed']) for r in results['runs']] == [
      ('detector', 0), ('class_agnostic', 0), ('transfer', 0),
      ('detector', 1), ('class_agnostic', 1), ('transfer', 1)]
  for name, seed, _ in started:
    assert os.path.exists(os.path.join(runner.run_dir(out, name, seed),
                                       jobs.LOG_FILE))


def test_failed_run_lets_the_others_finish_and_exits_non_zero(
    tmp_path, monkeypatch, capsys):
  out = str(tmp_path / 'out')
  failed_log = os.path.join(runner.run_dir(out, 'resnet4', 0), jobs.LOG_FILE)
  _fake_children(monkeypatch, {
      ('resnet4', 0): 'fail',
      ('hourglass10', 0): f'after:{failed_log}:ValueError:2'})
  assert _main('--experiment=mask_heads',
               '--heads=resnet4,hourglass10,hourglass20', '--seeds=1',
               '--jobs=2', f'--output_dir={out}', *_FAKE_DATA) == 1
  captured = capsys.readouterr()
  errors = [l for l in captured.err.splitlines() if l.startswith('ERROR')]
  assert errors == [
      'ERROR: [run 1/3] resnet4 seed 0 failed (exit status 1): ValueError: '
      f'the fake run broke (log: {failed_log})']
  assert '[run 2/3] hourglass10 seed 0: done in' in captured.out
  assert '[run 3/3]' not in captured.out  # nothing new after a failure
  assert 'run the same command with --resume' in captured.err
  with open(os.path.join(out, 'results.json')) as f:
    assert [r['name'] for r in json.load(f)['runs']] == ['hourglass10']


def test_interrupt_stops_every_child_once(tmp_path, monkeypatch, capsys):
  out = str(tmp_path / 'out')
  _fake_children(monkeypatch, {('resnet4', 0): 'ok:60',
                               ('hourglass10', 0): 'ok:60'})

  def interrupted_wait(children):
    # Once both children listen for SIGTERM, Ctrl-C reaches the parent.
    deadline = time.time() + 30
    while time.time() < deadline and not all(
        'fake child listening' in open(c.log_path).read()
        for c in children.values()):
      time.sleep(0.05)
    raise KeyboardInterrupt

  monkeypatch.setattr(jobs, 'wait_any', interrupted_wait)
  with pytest.raises(KeyboardInterrupt):
    _main('--experiment=mask_heads', '--heads=resnet4,hourglass10',
          '--seeds=1', '--jobs=2', f'--output_dir={out}', *_FAKE_DATA)
  for name in ('resnet4', 'hourglass10'):
    path = runner.run_dir(out, name, 0)
    with open(os.path.join(path, 'stopped')) as f:
      assert f.read() == str(int(signal.SIGTERM))
    assert not os.path.exists(os.path.join(path, runner.RUN_FILE))
  err = capsys.readouterr().err
  assert err.count('stopped (exit status 143); --resume continues it') == 2


def test_schedule_waits_for_dependencies_and_reuses_slots():
  experiment = experiments.get('maskx_stage_wise')
  variants = experiment.select(['detector', 'transfer'])
  runs = jobs.plan_runs([(v, s) for s in range(2) for v in variants])
  assert [(r.index, r.name, r.seed, r.needs) for r in runs] == [
      (1, 'detector', 0, ()), (2, 'transfer', 0, ('detector',)),
      (3, 'detector', 1, ()), (4, 'transfer', 1, ('detector',))]
  # Without its detector in the plan, a variant does not wait (the runner
  # reads a finished detector run or says it is missing).
  assert jobs.plan_runs([(variants[1], 0)])[0].needs == ()
  schedule = jobs.Schedule(runs, jobs=2)
  assert schedule.take() == (runs[0], 1)
  assert schedule.take() == (runs[2], 2)  # transfer 0 waits for detector 0
  assert schedule.take() is None  # both slots busy
  schedule.finish(runs[2])
  # Detector 1 done: transfer 1 overtakes transfer 0 (still waiting).
  assert schedule.take() == (runs[3], 2)
  assert schedule.take() is None
  schedule.finish(runs[0])
  assert schedule.take() == (runs[1], 1)
  schedule.finish(runs[3], ok=False)
  assert not schedule.over()  # transfer 0 still runs
  schedule.finish(runs[1])
  assert schedule.over() and schedule.failed == [runs[3]]
  # One job: plan order, one at a time.
  serial = jobs.Schedule(runs, jobs=1)
  order = []
  while not serial.over():
    run, slot = serial.take()
    assert slot == 1 and serial.take() is None
    order.append(run.index)
    serial.finish(run)
  assert order == [1, 2, 3, 4]
  with pytest.raises(ValueError):
    jobs.Schedule(runs, jobs=0)


def test_longest_expected_run_starts_first():
  # ResNet-4 / HG-20 x 3 seeds on 2 jobs, HG-20 runs 1.5x as long.
  runs = jobs.plan_runs([(v, s) for s in range(3) for v in (
      experiments.get('mask_heads').select(['resnet4', 'hourglass20']))])
  cost = {'resnet4': 100.0, 'hourglass20': 150.0}
  seconds = {}  # what the script knows: costs of finished variants
  schedule = jobs.Schedule(runs, jobs=2, cost_of=seconds.get)
  now, ends, started = 0.0, {}, []

  def start_all():
    while (taken := schedule.take()) is not None:
      run = taken[0]
      started.append((run.name, run.seed))
      ends[run] = now + cost[run.name]

  start_all()
  while ends:
    run = min(ends, key=ends.get)
    now = ends.pop(run)
    seconds[run.name] = cost[run.name]
    schedule.finish(run)
    start_all()
  # Plan order first (nothing known); once ResNet-4's cost is known the
  # unknown (so possibly longer) HG-20 goes first, then the longer HG-20.
  assert started == [('resnet4', 0), ('hourglass20', 0), ('hourglass20', 1),
                     ('hourglass20', 2), ('resnet4', 1), ('resnet4', 2)]
  assert now == 400.0  # plan order would end at 450 (three HG-20 in a row)
  assert schedule.over() and not schedule.failed


def test_a_failure_stops_new_starts():
  runs = [jobs.Run(i, 'resnet4', i) for i in range(1, 4)]
  schedule = jobs.Schedule(runs, jobs=2)
  first, _ = schedule.take()
  second, _ = schedule.take()
  schedule.finish(first, ok=False)
  assert schedule.take() is None and not schedule.over()
  schedule.finish(second)
  assert schedule.over() and schedule.pending == [runs[2]]


def test_eta_shares_the_remaining_runs_over_jobs():
  eta = _script()._eta  # pylint: disable=protected-access
  seconds = {'resnet4': [100.0]}
  assert eta(seconds, ['resnet4'] * 3) == '0:05:00'
  assert eta(seconds, ['resnet4'] * 3, jobs=2) == '0:02:30'
  # Never less than the longest remaining run.
  assert eta(seconds, ['resnet4'], jobs=2) == '0:01:40'
  # A run in progress costs what it has left.
  assert eta(seconds, ['resnet4'], 2, [('resnet4', 40.0)]) == '0:01:40'
  assert eta(seconds, ['resnet4'] * 2, 2, [('resnet4', 40.0)]) == '0:02:10'
  assert eta(seconds, [], 2, [('resnet4', 130.0)]) == '0:00:00'
  assert jobs.makespan_seconds([], 2) == 0.0


def test_bad_jobs_flags_are_config_errors(tmp_path):
  out = f'--output_dir={tmp_path}'
  with pytest.raises(ConfigError, match=r'^--jobs: must be >= 1, got 0\.$'):
    _main('--experiment=mask_heads', '--jobs=0', out)
  with pytest.raises(ConfigError, match='--threads_per_job: must be >= 0'):
    _main('--experiment=mask_heads', '--threads_per_job=-1', out)
  with pytest.raises(ConfigError, match='--run_one: expected VARIANT:SEED'):
    _main('--experiment=mask_heads', '--run_one=resnet5:0', out)
  with pytest.raises(ConfigError, match='--run_one: expected VARIANT:SEED'):
    _main('--experiment=mask_heads', '--run_one=resnet4', out)


def test_child_command_carries_the_settings_and_threads(monkeypatch):
  script = _script()
  monkeypatch.setattr(script.os, 'cpu_count', lambda: 4)
  run = jobs.Run(1, 'hourglass20', 2)
  with flagsaver.flagsaver():
    flags.FLAGS(['reproduce.py', *TINY, '--jobs=2', '--detector_steps=5'])
    command = script._child_command(run, '/o')  # pylint: disable=protected-access
    assert command[:2] == [sys.executable, test_reproduce.SCRIPT]
    assert {'--run_one=hourglass20:2', '--output_dir=/o',
            '--threads_per_job=2', '--steps=1', '--detector_steps=5',
            '--image_size=32', '--experiment=mask_heads'} <= set(command)
    assert any(a.startswith('--config_override=model {') for a in command)
    assert not any(a.startswith(('--heads', '--seeds', '--jobs', '--resume'))
                   for a in command)
    flags.FLAGS(['reproduce.py', *TINY, '--jobs=8'])
    assert '--threads_per_job=1' in script._child_command(run, '/o')  # pylint: disable=protected-access
    flags.FLAGS(['reproduce.py', *TINY, '--jobs=2', '--threads_per_job=0'])
    assert '--threads_per_job=0' in script._child_command(run, '/o')  # pylint: disable=protected-access


def test_last_error_line_of_a_log():
  assert jobs.last_error_line(
      'step 1\nERROR: bad config\nTraceback\nValueError: x\n') == (
          'ERROR: bad config')
  assert jobs.last_error_line(
      'Traceback (most recent call last):\n  File "x"\n'
      'tensorflow.python.framework.errors_impl.InvalidArgumentError: y\n'
      'done\n') == (
          'tensorflow.python.framework.errors_impl.InvalidArgumentError: y')
  assert jobs.last_error_line('a\nKilled\n\n') == 'Killed'
  assert jobs.last_error_line('') == '(the log is empty)'
