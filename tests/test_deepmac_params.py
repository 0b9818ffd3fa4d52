"""Tests of DeepMACParams, its proto reader and the one Deep-MAC validator
(builders/deepmac_builder.py; spec sections 2.2, 8.2)."""

import glob
import os

from google.protobuf import text_format
import pytest

from deepmac_tf.builders import deepmac_builder
from deepmac_tf.config import config_util
from deepmac_tf.errors import ConfigError
from deepmac_tf.losses import mask_losses
from deepmac_tf.meta_architectures import deepmac
from deepmac_tf.protos import center_net_pb2

CONFIG_DIR = os.path.join(os.path.dirname(__file__), os.pardir, 'configs')

_PROTO_TEXT = """
  dim: 153
  task_loss_weight: 5.0
  pixel_embedding_dim: 8
  use_xy: false
  use_instance_embedding: false
  network_type: "cond_inst3"
  num_init_channels: 8
  classification_loss { weighted_dice_classification_loss {
    squared_normalization: false is_prediction_probability: false } }
  jitter_mode: EXPAND_SYMMETRIC_XY
  max_roi_jitter_ratio: 0.0
  predict_full_resolution_masks: true
  allowed_masked_classes_ids: [99]
  augmented_self_supervision_warmup_start: 13
  augmented_self_supervision_warmup_steps: 14
  augmented_self_supervision_loss: LOSS_MSE
  augmented_self_supervision_max_translation: 2.5
  augmented_self_supervision_flip_probability: 0.9
  augmented_self_supervision_scale_min: 0.42
  augmented_self_supervision_scale_max: 1.42
  ignore_per_class_box_overlap: true
  feature_consistency_type: CONSISTENCY_FEATURE_MAP
  feature_consistency_comparison: COMPARISON_NORMALIZED_DOTPROD
"""


def _proto(text=_PROTO_TEXT):
  return text_format.Parse(text,
                           center_net_pb2.CenterNet.DeepMACMaskEstimation())


def test_proto_parse_spec_values():
  params = deepmac_builder.deepmac_params_from_proto(_proto())
  assert params.num_init_channels == 8
  assert params.mask_size == 32  # default
  assert params.dim == 153
  assert params.task_loss_weight == 5.0
  assert params.network_type == 'cond_inst3'
  assert params.classification_loss == mask_losses.MaskClassificationLoss(
      'dice')
  assert params.roi_jitter_mode == 'expand_symmetric_xy'
  assert params.box_consistency_loss_normalize == 'normalize_auto'
  assert params.use_only_last_stage is False
  assert params.predict_full_resolution_masks is True
  assert params.allowed_masked_classes_ids == (99,)
  assert params.augmented_self_supervision_warmup_start == 13
  assert params.augmented_self_supervision_warmup_steps == 14
  assert params.augmented_self_supervision_loss == 'loss_mse'
  assert params.augmented_self_supervision_max_translation == 2.5
  assert params.augmented_self_supervision_flip_probability == pytest.approx(
      0.9)
  assert params.augmented_self_supervision_scale_min == pytest.approx(0.42)
  assert params.augmented_self_supervision_scale_max == pytest.approx(1.42)
  assert params.ignore_per_class_box_overlap is True
  assert params.feature_consistency_type == 'consistency_feature_map'
  assert (params.feature_consistency_comparison ==
          'comparison_normalized_dotprod')
  assert params.detector_free is False


def test_defaults_equal_proto_defaults():
  proto = _proto('classification_loss { weighted_sigmoid {} }')
  assert deepmac_builder.deepmac_params_from_proto(proto) == deepmac.DeepMACParams()
  assert deepmac_builder.deepmac_params_from_proto(
      proto, detector_free=True).detector_free


@pytest.mark.parametrize('field', [
    'feature_consistency_loss_weight',
    'augmented_self_supervision_loss_weight',
    'pointly_supervised_keypoint_loss_weight'])
def test_unsupported_weak_losses_fail_loudly(field):
  proto = _proto()
  setattr(proto, field, 0.5)
  with pytest.raises(ConfigError, match=f'deepmac_mask_estimation.{field}.*'
                     'not supported'):
    deepmac_builder.deepmac_params_from_proto(proto)


@pytest.mark.parametrize('text, field', [
    ('', 'classification_loss'),
    ('classification_loss { weighted_softmax {} }', 'classification_loss'),
    ('classification_loss { weighted_sigmoid {} } mask_num_subsamples: 4',
     'mask_num_subsamples'),
    (('classification_loss { weighted_sigmoid {} } max_roi_jitter_ratio: 0.1 '
      'predict_full_resolution_masks: true'), 'max_roi_jitter_ratio'),
    ('classification_loss { weighted_sigmoid {} } network_type: "resnet99"',
     'network_type'),
    ('classification_loss { weighted_sigmoid {} } mask_size: 24',
     'mask_size'),
    (('classification_loss { weighted_sigmoid {} } '
      'network_type: "embedding_projection" use_instance_embedding: false'),
     'use_xy'),
    (('classification_loss { weighted_dice_classification_loss {} } '
      'box_consistency_loss_weight: 1.0 '
      'box_consistency_loss_normalize: NORMALIZE_BALANCED'),
     'box_consistency_loss_normalize'),
    ('classification_loss { weighted_sigmoid {} } num_init_channels: 0',
     r'deepmac_mask_estimation\.num_init_channels: must be positive'),
    (('classification_loss { weighted_sigmoid {} } network_type: "cond_inst2" '
      'use_instance_embedding: false dim: 8'),
     r'deepmac_mask_estimation\.dim: cond_inst2 .* set dim: 1281'),
    (('classification_loss { weighted_sigmoid {} } network_type: "cond_inst2" '
      'dim: 1281'), r'deepmac_mask_estimation\.use_instance_embedding'),
])
def test_bad_settings_name_the_field(text, field):
  with pytest.raises(ConfigError, match=field):
    deepmac_builder.deepmac_params_from_proto(_proto(text))


@pytest.mark.parametrize('path', sorted(glob.glob(
    os.path.join(CONFIG_DIR, 'center_net_deepmac_*.config'))))
def test_shipped_configs_parse(path):
  config = config_util.get_pipeline_config_from_file(path)
  params = deepmac_builder.deepmac_params_from_proto(
      config.model.center_net.deepmac_mask_estimation)
  assert params.classification_loss.kind == 'sigmoid'
  assert params.box_consistency_loss_weight == 0.0


def test_mask_size_checks_and_allowed_ids_name_the_field():
  text = 'classification_loss { weighted_sigmoid {} } mask_size: 24'
  with pytest.raises(ConfigError, match=r'deepmac_mask_estimation\.mask_size: '
                     r'24 cannot be taken by network_type "hourglass52".*'
                     r'multiple of 32'):
    deepmac_builder.deepmac_params_from_proto(_proto(text))
  text = ('classification_loss { weighted_sigmoid {} } '
          'allowed_masked_classes_ids: 91')
  with pytest.raises(ConfigError, match='allowed_masked_classes_ids: 91'):
    deepmac_builder.deepmac_params_from_proto(_proto(text), num_classes=90)
  assert deepmac_builder.deepmac_params_from_proto(
      _proto(text)).allowed_masked_classes_ids == (91,)


@pytest.mark.parametrize('network,mask_size,ok', [
    ('hourglass10', 16, True), ('hourglass10', 15, False),
    ('hourglass20', 32, True), ('hourglass20', 30, False),
    ('hourglass52', 64, True), ('hourglass100', 16, False),
    ('hourglass20_uniform_size', 7, True), ('resnet4', 7, True),
])
def test_mask_size_for_hourglass_heads(network, mask_size, ok):
  text = (f'classification_loss {{ weighted_sigmoid {{}} }} '
          f'network_type: "{network}" mask_size: {mask_size}')
  if ok:
    deepmac_builder.deepmac_params_from_proto(_proto(text))
  else:
    with pytest.raises(ConfigError, match=f'mask_size: {mask_size} cannot'):
      deepmac_builder.deepmac_params_from_proto(_proto(text))
