"""The generated protobuf modules match their .proto sources and import."""

import importlib
import os

import pytest

from deepmac_tf.protos import generate

PROTO_NAMES = [os.path.basename(p)[:-len('.proto')]
               for p in generate.proto_sources()]


def test_every_proto_has_an_importable_module():
  for name in PROTO_NAMES:
    module = importlib.import_module(f'deepmac_tf.protos.{name}_pb2')
    assert module.DESCRIPTOR.name == f'deepmac_tf/protos/{name}.proto'


def test_generated_modules_match_proto_sources():
  pytest.importorskip('grpc_tools')
  assert generate.stale_modules() == []


def test_stale_module_is_detected(tmp_path):
  """An edited .proto without regeneration is reported as stale."""
  pytest.importorskip('grpc_tools')
  source_dir = tmp_path / 'protos'
  source_dir.mkdir()
  for path in generate.proto_sources():
    text = open(path).read()
    if os.path.basename(path) == 'eval.proto':
      text = text.replace('message EvalConfig {',
                          'message EvalConfig {\n  optional int32 added = 99;')
    (source_dir / os.path.basename(path)).write_text(text)
  assert generate.stale_modules(source_dir=str(source_dir)) == ['eval_pb2.py']


def test_check_command_passes():
  pytest.importorskip('grpc_tools')
  assert generate.main(['--check']) == 0


def test_deepmac_message_has_every_odapi_field():
  from deepmac_tf.protos import center_net_pb2
  fields = {f.name: f.number for f in
            center_net_pb2.CenterNet.DeepMACMaskEstimation.DESCRIPTOR.fields}
  expected = {
      'classification_loss': 1, 'task_loss_weight': 2, 'dim': 3,
      'pixel_embedding_dim': 4, 'allowed_masked_classes_ids': 5,
      'mask_size': 6, 'mask_num_subsamples': 67, 'use_xy': 8,
      'network_type': 9, 'use_instance_embedding': 10,
      'num_init_channels': 11, 'predict_full_resolution_masks': 12,
      'postprocess_crop_size': 13, 'max_roi_jitter_ratio': 14,
      'jitter_mode': 15, 'box_consistency_loss_weight': 16,
      'feature_consistency_threshold': 17, 'feature_consistency_dilation': 18,
      'feature_consistency_loss_weight': 19,
      'box_consistency_loss_normalize': 20, 'box_consistency_tightness': 21,
      'feature_consistency_warmup_steps': 22,
      'feature_consistency_warmup_start': 23, 'use_only_last_stage': 24,
      'augmented_self_supervision_max_translation': 25,
      'augmented_self_supervision_flip_probability': 26,
      'augmented_self_supervision_loss_weight': 27,
      'augmented_self_supervision_warmup_start': 28,
      'augmented_self_supervision_warmup_steps': 29,
      'augmented_self_supervision_loss': 30,
      'augmented_self_supervision_scale_min': 31,
      'augmented_self_supervision_scale_max': 32,
      'pointly_supervised_keypoint_loss_weight': 33,
      'ignore_per_class_box_overlap': 34, 'feature_consistency_type': 35,
      'feature_consistency_comparison': 36,
  }
  odapi_fields = {name: number for name, number in fields.items()
                  if number < 1000}
  assert odapi_fields == expected
  # Our extensions live at field numbers >= 1000, clear of the OD API's.
  assert {name for name, number in fields.items() if number >= 1000} == {
      'detector_free', 'embedding_head_kernel', 'embedding_head_num_filters',
      'mask_detection_score_threshold', 'mask_head_slots', 'teacher_student',
      'weight_transfer'}


def test_deepmac_defaults_match_odapi():
  from deepmac_tf.protos import center_net_pb2
  d = center_net_pb2.CenterNet.DeepMACMaskEstimation()
  assert (d.dim, d.pixel_embedding_dim, d.mask_size, d.num_init_channels) == (
      256, 16, 32, 64)
  assert d.network_type == 'hourglass52'
  assert d.use_xy and d.use_instance_embedding
  assert d.mask_num_subsamples == -1
  assert d.postprocess_crop_size == 256
  assert d.feature_consistency_threshold == pytest.approx(0.4)
  assert d.feature_consistency_dilation == 2
  assert d.augmented_self_supervision_loss == center_net_pb2.LOSS_DICE
  assert d.augmented_self_supervision_scale_min == 1.0
  c = center_net_pb2.CenterNet.ObjectCenterParams()
  assert c.heatmap_bias_init == pytest.approx(-2.19)
  assert (c.max_box_predictions, c.peak_max_pool_kernel_size) == (100, 3)
  assert c.min_box_overlap_iou == pytest.approx(0.7)
  o = center_net_pb2.CenterNet.ObjectDetection()
  assert o.scale_loss_weight == pytest.approx(0.1)
