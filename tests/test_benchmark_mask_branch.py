"""benchmarks.mask_branch: the config variants and the score threshold."""

import numpy as np

from deepmac_tf import config as config_lib
from deepmac_tf.benchmarks import mask_branch

import pipeline_fixtures


def _model_config(tmp_path):
  path = pipeline_fixtures.tiny_pipeline(tmp_path)
  return config_lib.get_configs_from_pipeline_file(str(path))['model']


def test_threshold_lets_the_asked_count_pass():
  scores = np.array([0.9, 0.1, 0.5, 0.3, 0.7], np.float32)
  threshold, passing = mask_branch.threshold_passing(scores, 2)
  assert passing == 2 and 0.5 < threshold < 0.7
  assert np.sum(scores >= np.float32(threshold)) == 2
  assert mask_branch.threshold_passing(scores, 5) == (0.0, 5)
  assert mask_branch.threshold_passing(scores, 9) == (0.0, 5)


def test_config_variants(tmp_path):
  model_config = _model_config(tmp_path)
  assert mask_branch.is_deepmac(model_config)
  assert mask_branch.is_deepmac_detector(model_config)
  detection_only = mask_branch.detection_only_config(model_config)
  assert not mask_branch.is_deepmac(detection_only)
  assert model_config.center_net.HasField('deepmac_mask_estimation')
  assert detection_only.center_net.object_detection_task == (
      model_config.center_net.object_detection_task)
  variant = mask_branch.with_mask_settings(model_config, score_threshold=0.25,
                                           slots='ALL_SLOTS')
  settings = variant.center_net.deepmac_mask_estimation
  assert settings.mask_detection_score_threshold == 0.25
  assert settings.mask_head_slots == type(settings).ALL_SLOTS
  assert model_config.center_net.deepmac_mask_estimation.mask_head_slots == 0
