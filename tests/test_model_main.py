"""scripts/model_main_tf2.py end to end in subprocesses: a run killed with
SIGKILL resumes (progress, checkpoints kept, summaries), the model_dir it
leaves is evaluated once (--eval_timeout=0, also on the training data), and
user errors."""

import glob
import json
import os
import subprocess
import sys

import pipeline_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'model_main_tf2.py')


def _run(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


def _killed_and_resumed(root):
  """One model_dir for the training and evaluation checks: a run killed with
  SIGKILL (no chance to save) after ckpt-4, then resumed 2 more steps with
  summaries, per-step progress and --checkpoint_max_to_keep=2.

  Returns (pipeline, model_dir, last checkpoint step before the kill, the
  resumed run's CompletedProcess).
  """
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  pipeline = pipeline_fixtures.tiny_pipeline(root)
  model_dir = root / 'model'
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.Popen(
      [sys.executable, SCRIPT, f'--pipeline_config_path={pipeline}',
       f'--model_dir={model_dir}', '--num_train_steps=100000',
       '--checkpoint_every_n=2', '--record_summaries=false'],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
  try:
    deadline = time.time() + 300
    while not glob.glob(str(model_dir / 'ckpt-4.index')):
      assert process.poll() is None, 'training ended before it was killed'
      assert time.time() < deadline, 'no ckpt-4 within 300 s'
      time.sleep(0.2)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  steps = sorted(int(p.rsplit('-', 1)[-1].split('.')[0])
                 for p in glob.glob(str(model_dir / 'ckpt-*.index')))
  last = steps[-1]
  assert last >= 4 and last % 2 == 0, steps
  resumed = _run(f'--pipeline_config_path={pipeline}',
                 f'--model_dir={model_dir}',
                 f'--num_train_steps={last + 2}', '--checkpoint_every_n=2',
                 '--log_every_n_steps=1', '--checkpoint_max_to_keep=2')
  return pipeline, model_dir, last, resumed


def test_sigkill_resume_progress_checkpoints_then_evaluate_once(tmp_path):
  """A run killed with SIGKILL restarts where it left; the model_dir it
  leaves (one training run serves every check: they cost seconds each) has
  the progress, checkpoints and summaries, and evaluates."""
  pipeline, model_dir, last, trained = _killed_and_resumed(tmp_path)
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert f'ckpt-{last}' in trained.stderr and f'(step {last})' in trained.stderr
  assert f'Step {last + 1}/{last + 2}' in trained.stderr
  assert f'Step {last - 1}/' not in trained.stderr
  final = last + 2
  assert f'Step {final}/{final} (100%)' in trained.stderr
  assert 'ETA' in trained.stderr and 'steps/s' in trained.stderr
  assert 'Last checkpoint: ' in trained.stdout
  # max_to_keep 2: the older checkpoints (the killed run's too) are dropped.
  kept = sorted(int(os.path.basename(p)[len('ckpt-'):-len('.index')])
                for p in glob.glob(str(model_dir / 'ckpt-*.index')))
  assert len(kept) == 2 and kept[-1] == final, kept
  assert (model_dir / 'pipeline.config').exists()
  assert glob.glob(str(model_dir / 'train' / 'events.out.tfevents.*'))

  evaluated = _run(f'--pipeline_config_path={pipeline}',
                   f'--model_dir={model_dir}', f'--checkpoint_dir={model_dir}',
                   '--eval_timeout=0')
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  with open(model_dir / 'eval' / f'metrics_step_{final}.json') as f:
    metrics = json.load(f)
  metrics = metrics.get('metrics', metrics)
  assert 'DetectionMasks_Precision/mAP' in metrics
  assert 'Evaluated 1 checkpoint(s)' in evaluated.stdout

  # The OD API's --eval_on_train_data: the training input, 1 example in n.
  on_train = _run(f'--pipeline_config_path={pipeline}',
                  f'--model_dir={model_dir}', f'--checkpoint_dir={model_dir}',
                  '--eval_timeout=0', '--eval_on_train_data',
                  '--sample_1_of_n_eval_on_train_examples=2')
  assert on_train.returncode == 0, on_train.stderr[-3000:]
  train_metrics = model_dir / 'eval_on_train_data' / 'eval'
  assert (train_metrics / f'metrics_step_{final}.json').exists()
  assert str(train_metrics) in on_train.stdout


def test_user_errors_are_one_line(tmp_path):
  missing = _run('--pipeline_config_path=/nope/pipeline.config',
                 f'--model_dir={tmp_path}')
  assert missing.returncode == 1
  assert 'ERROR:' in missing.stderr and 'Traceback' not in missing.stderr
  no_model_dir = _run('--pipeline_config_path=x.config')
  assert no_model_dir.returncode == 1
  assert 'ERROR: --model_dir: is required.' in no_model_dir.stderr
  pipeline = pipeline_fixtures.tiny_pipeline(tmp_path)
  no_checkpoint = _run(f'--pipeline_config_path={pipeline}',
                       f'--model_dir={tmp_path / "m"}',
                       f'--checkpoint_dir={tmp_path / "empty"}',
                       '--eval_timeout=0')
  assert no_checkpoint.returncode == 1
  assert 'ERROR: --checkpoint_dir: no checkpoint in' in no_checkpoint.stderr
  # OD API flags that do not apply: one ERROR line, before TF loads.
  for flags, message in [
      (['--use_side_inputs'], '--use_side_inputs: Context R-CNN side inputs '
       'are supported by the OD API, not by deepmac_tf'),
      (['--side_input_names=a'], '--side_input_names: Context R-CNN'),
      (['--eval_on_train_data'], '--eval_on_train_data: evaluates '
       'checkpoints on the training input, so it needs --checkpoint_dir'),
      (['--sample_1_of_n_eval_on_train_examples=3'],
       '--sample_1_of_n_eval_on_train_examples: only used with '
       '--eval_on_train_data')]:
    result = _run(f'--pipeline_config_path={pipeline}',
                  f'--model_dir={tmp_path / "m"}', *flags)
    assert result.returncode == 1, flags
    assert f'ERROR: {message}' in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
