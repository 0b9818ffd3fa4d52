"""scripts/model_main_tf2.py end to end in a subprocess: train a few steps,
evaluate the latest checkpoint once (--eval_timeout=0), and user errors."""

import glob
import json
import os
import subprocess
import sys

import pytest

import pipeline_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'model_main_tf2.py')


def _run(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


def test_train_then_evaluate_once(tmp_path):
  pipeline = pipeline_fixtures.tiny_pipeline(tmp_path)
  model_dir = tmp_path / 'model'
  trained = _run(f'--pipeline_config_path={pipeline}',
                 f'--model_dir={model_dir}', '--num_train_steps=3',
                 '--checkpoint_every_n=2', '--log_every_n_steps=1',
                 '--checkpoint_max_to_keep=2',
                 "--config_override=train_config { batch_size: 2 }")
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert 'Step 3/3 (100%)' in trained.stderr
  assert 'ETA' in trained.stderr and 'steps/s' in trained.stderr
  assert 'Last checkpoint: ' in trained.stdout
  # max_to_keep 2: ckpt-0 dropped, ckpt-2 and the final ckpt-3 kept.
  kept = sorted(os.path.basename(p) for p in
                glob.glob(str(model_dir / 'ckpt-*.index')))
  assert kept == ['ckpt-2.index', 'ckpt-3.index']
  assert (model_dir / 'pipeline.config').exists()
  assert glob.glob(str(model_dir / 'train' / 'events.out.tfevents.*'))

  pytest.importorskip('deepmac_tf.evaluation.eval_loop')
  evaluated = _run(f'--pipeline_config_path={pipeline}',
                   f'--model_dir={model_dir}', f'--checkpoint_dir={model_dir}',
                   '--eval_timeout=0')
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  with open(model_dir / 'eval' / 'metrics_step_3.json') as f:
    metrics = json.load(f)
  metrics = metrics.get('metrics', metrics)
  assert 'DetectionMasks_Precision/mAP' in metrics
  assert 'Evaluated 1 checkpoint(s)' in evaluated.stdout


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
