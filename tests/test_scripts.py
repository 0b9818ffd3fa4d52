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
  from deepmac_tf.reproduction import demo  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'demo'
  # The tiny test model (same backbone and box heads as the demo's, a
  # smaller mask head) keeps it fast; like the demo's own template
  # (configs/center_net_deepmac_synthetic_demo_from_detector.config) it
  # starts from the shipped detector with the backbone frozen.
  with open(os.path.join(REPO, 'tests', 'fixtures', 'tiny_deepmac.config'),
            encoding='utf-8') as f:
    text = f.read()
  template = tmp_path / 'tiny_from_detector.config'
  template.write_text(text.replace(
      'train_config {\n',
      'train_config {\n'
      f'  fine_tune_checkpoint: "{demo.PLACEHOLDER}"\n'
      '  fine_tune_checkpoint_type: "full"\n'
      '  freeze_variables: "hourglass_10"\n', 1))
  result = _run(os.path.join(REPO, 'scripts', 'run_demo.py'),
                f'--output_dir={out}', '--num_train_images=16',
                '--num_val_images=4', '--num_train_steps=3',
                '--num_overlays=2', f'--pipeline_config_template={template}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'starts from the detector {demo.CHECKPOINT_PREFIX}' in result.stdout
  assert 'trained once by the project' in result.stdout
  assert 'frozen (not trained): variables matching hourglass_10' in (
      result.stdout)
  assert 'Fine-tune checkpoint' in result.stderr
  summary = json.loads((out / 'demo_summary.json').read_text())
  assert os.path.exists(summary['pipeline_config'])
  assert os.path.exists(summary['train_batch_preview'])
  assert 0 < summary['mask_supervised_instances'] < summary[
      'instances_in_batch']
  assert 'train_input_reader: OK' in result.stdout
  assert summary['train_steps'] == 3
  assert summary['detector_checkpoint'] == demo.CHECKPOINT_PREFIX
  assert os.path.exists(os.path.join(summary['model_dir'], 'ckpt-3.index'))
  # Seen vs unseen mask AP, from the evaluation of the trained checkpoint.
  for key in ('DetectionBoxes_Precision/mAP', 'DetectionMasks_SeenClasses/mAP',
              'DetectionMasks_UnseenClasses/mAP'):
    assert key in summary['metrics'], sorted(summary['metrics'])
  with open(summary['metrics_json']) as f:
    assert json.load(f)['DetectionMasks_UnseenClasses/mAP'] == summary[
        'metrics']['DetectionMasks_UnseenClasses/mAP']
  assert 'mask AP, unseen classes' in result.stdout
  assert os.path.exists(os.path.join(summary['saved_model'], 'saved_model.pb'))
  assert len(summary['overlays']) == 2
  for path in summary['overlays']:
    assert os.path.getsize(path) > 0
  assert 'Everything is in' in result.stdout
  # The closing table: seen vs unseen, against the box alone, and a reading.
  assert 'mask from the box alone, no training (mIoU)' in result.stdout
  assert 'What it means:' in result.stdout
  # The written config has no placeholder left and points at the data.
  config_text = (out / 'pipeline.config').read_text()
  assert 'PATH_TO_BE_CONFIGURED' not in config_text
  assert str(out / 'synthetic_data') in config_text


def test_benchmark_roi_crop_prints_json():
  result = _run(os.path.join(REPO, 'scripts', 'benchmark_roi_crop.py'),
                '--batch=1', '--boxes=2', '--crop=4', '--channels=2',
                '--map_sizes=8', '--repeats=1')
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads(result.stdout)
  timings = figures['ms']
  assert 'map8/gather/xla/forward' in timings
  assert 'map8/tf.image.crop_and_resize/graph/forward_backward' in timings
  assert all(value >= 0 for value in timings.values())
