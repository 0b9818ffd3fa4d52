"""Deep-MARC through the same scripts as Deep-MAC, on a tiny synthetic
setting: model_main_tf2.py trains a few steps and evaluates (box and mask
AP, masks split seen / unseen), exporter_main_v2.py exports, and a fresh
process reloads the SavedModel and runs both signatures.

One trained model directory (module fixture) serves every check.
"""

import json
import os
import subprocess
import sys

import pytest

import pipeline_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'configs', 'deepmarc_synthetic_cpu.config')
# 64 px, narrow ResNet-10-FPN, the default FCN mask head at width 8, few
# proposals / detections: seconds per step on 2 cores.
TINY = '''
model { faster_rcnn {
  image_resizer { keep_aspect_ratio_resizer {
    min_dimension: 64 max_dimension: 64 pad_to_max_dimension: true } }
  feature_extractor { fpn { additional_layer_depth: 16 } }
  first_stage_box_predictor_depth: 16
  first_stage_max_proposals: 16 first_stage_max_proposals_eval: 16
  second_stage_batch_size: 16 box_head_num_filters: 16 box_head_fc_dims: 32
  second_stage_post_processing { batch_non_max_suppression {
    max_detections_per_class: 2 max_total_detections: 6 } }
  deepmarc_mask_head { network_type: "mask_rcnn_fcn" num_init_channels: 8
    crop_size: 8 mask_size: 16 }
} }
train_config { batch_size: 2 }
eval_config { num_visualizations: 0 include_overlap_analysis: true }
'''
_RELOAD = '''
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
image = tf.constant(np.random.default_rng(0).integers(0, 255, [1, 50, 60, 3]),
                    tf.uint8)
out = {}
for name, fn in loaded.signatures.items():
  kwargs = {'input_tensor': image}
  if 'boxes' in fn.structured_input_signature[1]:
    kwargs['boxes'] = tf.constant([[[0.1, 0.1, 0.6, 0.7], [0.2, 0.3, 1, 1]]])
  result = fn(**kwargs)
  out[name] = {k: v.shape.as_list() for k, v in result.items()}
  if name == 'serving_default':
    n = int(result['num_detections'][0])
    classes = result['detection_classes'][0, :n].numpy().astype(int)
    print('MOST_PER_CLASS', np.bincount(classes).max() if n else 0, n)
print('SHAPES', __import__('json').dumps(out))
'''


def _start(script, *args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  command = [sys.executable] + (
      ['-c', script] if script.startswith('\n') else
      [os.path.join(REPO, 'scripts', script)])
  return subprocess.Popen(command + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env,
                          cwd=REPO)


def _finish(process, timeout=300):
  stdout, stderr = process.communicate(timeout=timeout)
  assert process.returncode == 0, stderr[-3000:]
  return stdout


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """Trains 2 steps, then evaluates and exports side by side."""
  root = tmp_path_factory.mktemp('deepmarc_e2e')
  pipeline = pipeline_fixtures.tiny_pipeline(
      root, config_override=TINY, template=CONFIG)
  model_dir = root / 'model'
  _finish(_start('model_main_tf2.py', f'--pipeline_config_path={pipeline}',
                 f'--model_dir={model_dir}', '--num_train_steps=2',
                 '--checkpoint_every_n=2', '--log_every_n_steps=1'))
  export_dir = root / 'exported'
  evaluating = _start('model_main_tf2.py', f'--pipeline_config_path={pipeline}',
                      f'--model_dir={model_dir}',
                      f'--checkpoint_dir={model_dir}', '--eval_timeout=0')
  exporting = _start('exporter_main_v2.py', '--input_type=image_tensor',
                     f'--pipeline_config_path={pipeline}',
                     f'--trained_checkpoint_dir={model_dir}',
                     f'--output_directory={export_dir}')
  return {'model_dir': model_dir, 'export_dir': export_dir,
          'eval_stdout': _finish(evaluating), 'export_stdout':
          _finish(exporting)}


def test_train_then_evaluate_splits_seen_and_unseen(trained):
  model_dir = trained['model_dir']
  assert (model_dir / 'ckpt-2.index').exists()
  assert 'Evaluated 1 checkpoint(s)' in trained['eval_stdout']
  with open(model_dir / 'eval' / 'metrics_step_2.json') as f:
    metrics = json.load(f)
  metrics = metrics.get('metrics', metrics)
  # Seen classes come from faster_rcnn.deepmarc_mask_head
  # .allowed_masked_classes_ids (1-5 in the synthetic config).
  for key in ('DetectionBoxes_Precision/mAP', 'DetectionMasks_Precision/mAP',
              'DetectionMasks_SeenClasses/mAP',
              'DetectionMasks_UnseenClasses/mAP',
              # eval_config.include_overlap_analysis (Zhao et al.).
              'DetectionMasks_Overlap/UnseenClasses/mAP (overlapped)',
              'DetectionMasks_Overlap/UnseenClasses/mIoU (overlapped)',
              'DetectionMasks_FalsePositives/UnseenClasses/'
              'seen_objects_fraction'):
    assert key in metrics, key
  assert (model_dir / 'eval' / 'overlap_analysis_step_2.png').exists()


def test_export_and_reload_in_a_fresh_process(trained):
  export_dir = trained['export_dir']
  assert 'Exported checkpoint step 2' in trained['export_stdout']
  reloaded = _finish(_start(_RELOAD, str(export_dir / 'saved_model')))
  line = [l for l in reloaded.splitlines() if l.startswith('SHAPES')]
  shapes = json.loads(line[0][len('SHAPES '):])
  assert set(shapes) == {'serving_default', 'image_and_boxes_tensor'}
  detect = shapes['serving_default']
  assert detect['detection_boxes'] == [1, 6, 4]
  assert detect['detection_masks'] == [1, 6, 16, 16]
  assert detect['detection_multiclass_scores'] == [1, 6, 11]
  # max_detections_per_class: 2 holds in the exported graph (a 2-step model
  # keeps detections: softmax scores near 1 / 11 pass the 0.05 threshold).
  line = [l for l in reloaded.splitlines() if l.startswith('MOST_PER_CLASS')]
  most, num = map(int, line[0].split()[1:])
  assert 0 < num <= 6 and most <= 2, (num, most)
  boxes = shapes['image_and_boxes_tensor']
  assert boxes['detection_masks'] == [1, 2, 16, 16]
  assert boxes['detection_boxes'] == [1, 2, 4]
