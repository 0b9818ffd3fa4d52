"""eval_config.include_overlap_analysis: overlap and false-positive metrics
plus the plot, for Deep-MAC and detector-free Deep-MAC (untrained tiny models
on the tiny synthetic pipeline). Deep-MARC: test_mask_rcnn_end_to_end.py.
Off by default: test_eval_loop.py checks the exact metric names."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pipeline_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import eval_loop  # pylint: disable=g-import-not-at-top,wrong-import-position

ON = 'eval_config { include_overlap_analysis: true num_visualizations: 0 }'
FP = 'DetectionMasks_FalsePositives/UnseenClasses/'
OVERLAP = 'DetectionMasks_Overlap/UnseenClasses/'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('overlap_eval_data'))


def _evaluate(tmp_path, data_root, override):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, override,
                                         data_root=data_root)
  configs = config_lib.get_configs_from_pipeline_file(path)
  model = model_builder.build(configs['model'], is_training=False)
  out = tmp_path / 'eval'
  metrics = eval_loop.evaluate(model, configs, global_step=3,
                               output_dir=str(out))
  return metrics, out


def _check_box_prompted_keys(metrics):
  shares = [metrics[FP + f'{kind}_fraction']
            for kind in ('background', 'seen_objects', 'unseen_objects')]
  assert all(-1.0 <= s <= 1.0 for s in shares)
  if min(shares) >= 0:
    assert sum(shares) == pytest.approx(1.0)
  assert OVERLAP + 'mIoU (overlapped)' in metrics
  assert 'DetectionMasks_FalsePositives/SeenClasses/background_fraction' in (
      metrics)


def test_deepmac_gets_overlap_ap_false_positives_and_plot(tmp_path,
                                                          data_root):
  metrics, out = _evaluate(tmp_path, data_root, ON)
  for label in ('overlap 0', 'overlap 0-0.1', 'overlap 0.9-1', 'overlapped'):
    assert OVERLAP + f'mAP ({label})' in metrics
    assert OVERLAP + f'num_instances ({label})' in metrics
  counts = sum(metrics[OVERLAP + f'num_instances (overlap {b})']
               for b in ('0', '0-0.1', '0.1-0.2', '0.2-0.3', '0.3-0.4',
                         '0.4-0.5', '0.5-0.6', '0.6-0.7', '0.7-0.8',
                         '0.8-0.9', '0.9-1'))
  assert counts > 0  # every unseen instance falls in exactly one bin
  _check_box_prompted_keys(metrics)
  assert os.path.getsize(out / 'overlap_analysis_step_3.png') > 1000
  assert (out / 'metrics_step_3.json').exists()


def test_detector_free_gets_box_prompted_overlap_metrics(tmp_path,
                                                         data_root):
  metrics, out = _evaluate(
      tmp_path, data_root,
      ON + ' model { center_net { deepmac_mask_estimation { '
      'detector_free: true } } }')
  _check_box_prompted_keys(metrics)
  assert not any('mAP' in k for k in metrics if 'Overlap' in k)
  assert (out / 'overlap_analysis_step_3.png').exists()
