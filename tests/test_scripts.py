"""Every script answers --help, and the main job (the demo) runs end to end."""

import glob
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(REPO, 'scripts', '*.py')))


def _run(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.mark.parametrize('script', SCRIPTS,
                         ids=[os.path.basename(s) for s in SCRIPTS])
def test_help_exits_zero(script):
  result = _run(script, '--help')
  assert result.returncode == 0, result.stderr[-2000:]
  assert '--' in result.stdout
  assert 'Traceback' not in result.stderr


def test_demo_runs_end_to_end(tmp_path):
  out = tmp_path / 'demo'
  result = _run(os.path.join(REPO, 'scripts', 'run_demo.py'),
                f'--output_dir={out}', '--num_train_images=24',
                '--num_val_images=8', '--num_batches=1')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((out / 'demo_summary.json').read_text())
  assert os.path.exists(summary['pipeline_config'])
  assert os.path.exists(summary['train_batch_preview'])
  assert 0 < summary['mask_supervised_instances'] < summary[
      'instances_in_batches']
  assert 'train_input_reader: OK' in result.stdout
  assert 'Everything is in' in result.stdout
  # The written config has no placeholder left and points at the data.
  config_text = (out / 'pipeline.config').read_text()
  assert 'PATH_TO_BE_CONFIGURED' not in config_text
  assert str(out / 'synthetic_data') in config_text
