"""scripts/benchmark.py: one JSON object with every figure (values are
only checked to be present and positive; speed is never asserted)."""

import json
import os
import subprocess
import sys

import pipeline_fixtures
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'benchmark.py')
FAST = ['--steps=1', '--warmup_steps=1', '--input_batches=2']
# Deep-MARC synthetic config made tiny (tracing dominates): 64 px, two FPN
# levels, few proposals / detections, a narrow default (FCN) mask head.
TINY_DEEPMARC = (
    'model { faster_rcnn { feature_extractor { fpn { min_level: 4 '
    'max_level: 5 } } first_stage_anchor_generator { '
    'multiscale_anchor_generator { min_level: 4 max_level: 5 } } '
    'first_stage_max_proposals: 16 '
    'first_stage_max_proposals_eval: 16 second_stage_batch_size: 16 '
    'second_stage_post_processing { batch_non_max_suppression { '
    'max_total_detections: 4 max_detections_per_class: 4 } } '
    'deepmarc_mask_head { network_type: "mask_rcnn_fcn" num_init_channels: 8 '
    'crop_size: 8 mask_size: 16 num_sampled_masks: 4 } } }')


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, env=env, cwd=ROOT, timeout=600,
                        check=False)
  return proc


def _positive(figure, key='median_ms'):
  assert figure[key] > 0, figure


def _saved_checkpoint(config, model_dir):
  """Saves the tiny model's initial weights as ``model_dir/ckpt-7``."""
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import checkpoints  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  configs = config_lib.get_configs_from_pipeline_file(str(config))
  model, optimizer, _, _ = train_loop.build_training_state(
      configs, tf.distribute.get_strategy())
  checkpoint, _ = checkpoints.make_training_checkpoint(model, optimizer)
  checkpoints.make_manager(checkpoint, str(model_dir)).save(
      checkpoint_number=7)


def test_tiny_deepmac_prints_every_figure(tmp_path):
  """Every figure, inference timed with a trained checkpoint (one run: the
  script's start-up and tracing dominate the suite's time)."""
  config = pipeline_fixtures.tiny_pipeline(tmp_path)
  model_dir = tmp_path / 'trained'
  _saved_checkpoint(config, model_dir)
  out = tmp_path / 'bench.json'
  proc = _run(f'--pipeline_config_path={config}', *FAST,
              '--masks_per_image=2', f'--output_json={out}',
              f'--checkpoint_dir={model_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout)
  assert json.loads(out.read_text()) == result
  assert result['settings']['inference_weights'] == str(model_dir)
  assert 'ckpt-7' in proc.stderr
  _positive(result['train_step'])
  _positive(result['train_step'], 'ms_per_image')
  _positive(result['train_step'], 'num_params')
  _positive(result['inference_checkpoint'], 'ms_per_image')
  _positive(result['inference_saved_model'], 'ms_per_image')
  assert len(result['inference_checkpoint']['num_detections']) == 1
  assert len(result['inference_saved_model']['num_detections']) == 1
  assert result['input_pipeline']['skipped'] is False
  _positive(result['input_pipeline'], 'images_per_s')
  _positive(result['memory'], 'peak_rss_mib')
  assert result['memory']['peak_rss_delta_mib'] >= 0
  assert result['machine']['cpu_count'] >= 1
  assert result['machine']['tensorflow']
  assert result['machine']['precision_policy'] == 'float32'
  assert result['machine']['devices']
  assert result['settings']['image_size'] == [64, 64]
  assert result['settings']['batch_size'] == 2
  assert result['settings']['inputs'] == 'input_pipeline_batch'
  # Deep-MAC's mask branch: inference with 2 of the 10 detection slots over
  # the threshold vs the detection-only build, and the train step with the
  # head on weighted instances vs on every slot, each pair timed in turn.
  inference = result['mask_branch_inference']
  assert inference['detection_slots'] == 10
  assert inference['detections_passing_threshold'] == 2
  masked = inference['timing']['deepmac_thresholded']
  assert masked['detections_with_masks'] == masked['nonzero_mask_slots'] == 2
  for name in ('detection_only', 'deepmac_thresholded', 'deepmac_all_slots'):
    _positive(inference['timing'][name])
  assert result['mask_branch_overhead'] == inference['mask_branch_overhead']
  assert inference['mask_branch_overhead_all_slots'] > -1
  counted = result['mask_branch_flops']
  assert counted['detection_slots'] == 10 and counted['masks_per_image'] == 2
  assert counted['mask_head_gflops_per_instance'] > 0
  assert counted['detection_only_gflops'] > counted['mask_branch_fixed_gflops']
  assert result['mask_branch_overhead_flops'] == pytest.approx(
      (counted['mask_branch_fixed_gflops'] +
       2 * counted['mask_head_gflops_per_instance']) /
      counted['detection_only_gflops'], abs=2e-3)
  assert counted['mask_branch_overhead_all_slots_flops'] == pytest.approx(
      (counted['mask_branch_fixed_gflops'] +
       10 * counted['mask_head_gflops_per_instance']) /
      counted['detection_only_gflops'], abs=2e-3)
  train = result['mask_branch_train_step']
  _positive(train['timing']['valid_only'])
  _positive(train['timing']['all_slots'])
  assert result['train_step_valid_only_over_all_slots'] == round(
      train['timing']['valid_only']['median_ms'] /
      train['timing']['all_slots']['median_ms'], 4)


def test_deepmarc_with_model_garden_reference_prints_ratios(tmp_path):
  config = os.path.join(ROOT, 'configs', 'deepmarc_synthetic_cpu.config')
  proc = _run(f'--pipeline_config_path={config}', *FAST, '--image_size=64',
              '--batch_size=1', '--num_instances=2', '--nosaved_model',
              '--reference=model_garden', f'--config_override={TINY_DEEPMARC}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout)
  # Placeholder input paths: the input figure is skipped with the reason.
  assert result['input_pipeline']['skipped'] is True
  assert 'PATH_TO_BE_CONFIGURED' in result['input_pipeline']['reason']
  assert result['settings']['inputs'] == 'random'
  assert result['ratio_infer'] > 0
  assert result['ratio_train_step'] > 0
  reference = result['reference_model_garden']
  _positive(reference['inference'])
  assert reference['inference']['max_detections'] == 4
  assert result['inference_checkpoint']['max_detections'] == 4
  _positive(reference['train_step'])
  assert result['num_params']['ours'] == result['num_params']['model_garden']
  # Shared detection weights: both models keep the same detections, so the
  # timed work is the same; both timed in turn.
  assert reference['same_num_detections'] is True, reference
  n = reference['inference']['num_detections'][0]
  assert reference['detections_matched_within_1px'] >= 0.9 * n, reference
  assert result['settings']['seed'] == 0
  ours = reference['ours_interleaved']
  assert (ours['inference']['num_detections'] ==
          reference['inference']['num_detections'])
  assert result['ratio_infer'] == round(
      ours['inference']['median_ms'] / reference['inference']['median_ms'], 4)
  assert result['nms_version'] == {'ours': 'batched', 'model_garden': 'v2'}
  # Groundtruth padded to max_number_of_boxes, as the input pipelines do.
  assert result['settings']['num_instances'] == 2
  assert result['settings']['groundtruth_slots'] == 8  # The config's.
  assert reference['ours_interleaved']['train_step']['ms_per_image'] > 0


def test_center_net_has_no_model_garden_reference(tmp_path):
  config = pipeline_fixtures.tiny_pipeline(tmp_path)
  proc = _run(f'--pipeline_config_path={config}', '--reference=model_garden')
  assert proc.returncode == 1
  errors = [l for l in proc.stderr.splitlines() if l.startswith('ERROR:')]
  assert len(errors) == 1 and 'CenterNet' in errors[0], proc.stderr[-2000:]
  assert not proc.stdout.strip()


def test_missing_checkpoint_dir_fails_before_any_work(tmp_path):
  config = pipeline_fixtures.tiny_pipeline(tmp_path)
  proc = _run(f'--pipeline_config_path={config}',
              f'--checkpoint_dir={tmp_path / "nothing"}')
  assert proc.returncode == 1
  errors = [l for l in proc.stderr.splitlines() if l.startswith('ERROR:')]
  assert len(errors) == 1 and '--checkpoint_dir' in errors[0], proc.stderr
  assert 'timing the train step' not in proc.stderr


def test_help_exits_zero():
  proc = _run('--help')
  assert proc.returncode == 0
  assert 'pipeline_config_path' in proc.stdout + proc.stderr
