"""model_builder.build: every config in configs/ builds and runs its heads
(each backbone runs once per test process: see ``_predict``), bad settings
fail with the field named."""

import glob
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config
from deepmac_tf.builders import model_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import center_net
from deepmac_tf.meta_architectures import mask_rcnn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs', '*.config')))
SYNTHETIC = os.path.join(REPO, 'configs',
                         'center_net_deepmac_synthetic_cpu.config')


def _model_config(path=SYNTHETIC, override=None):
  return config.get_configs_from_pipeline_file(path, override)['model']


def _architecture_key(path):
  """The model message without which classes train masks: configs that
  share it (e.g. the 1024 COCO / VOC / non-VOC / GPU variants) build the same
  network, so one of them runs the forward pass for all."""
  model_config = _model_config(path)
  if model_config.WhichOneof('model') == 'center_net':
    model_config.center_net.deepmac_mask_estimation.ClearField(
        'allowed_masked_classes_ids')
  else:
    model_config.faster_rcnn.deepmarc_mask_head.ClearField(
        'allowed_masked_classes_ids')
  return model_config.SerializeToString(deterministic=True)


def _first_config_per_architecture():
  first = {}
  for path in CONFIGS:
    first.setdefault(_architecture_key(path), path)
  return first


_FIRST_PER_ARCHITECTURE = _first_config_per_architecture()


def _is_center_net(path):
  return _model_config(path).WhichOneof('model') == 'center_net'


# 128 px is the smallest input Hourglass-104 takes (5 halvings after its
# stride-4 stem) and SpineNet takes (levels up to 7). One fixed image for
# every config, so a backbone's outputs serve every config that has it.
_IMAGES = tf.constant(np.random.RandomState(0).uniform(
    0, 255, [1, 128, 128, 3]).astype(np.float32))
_TRUE_SHAPES = tf.constant([[128, 128, 3]])


@pytest.fixture(scope='module')
def backbone_outputs():
  """{backbone key: (normalized inputs, backbone outputs)} of the backbones
  that already ran in this test process."""
  return {}


def _backbone_key(model_config):
  """Configs with the same ``feature_extractor`` message build the same
  backbone (CenterNet's feature extractor; Faster R-CNN's backbone + FPN,
  whose levels, widths and hyperparameters are all in that message)."""
  arch = model_config.WhichOneof('model')
  extractor = getattr(model_config, arch).feature_extractor
  return arch, extractor.SerializeToString(deterministic=True)


class _RecordedBackbone:
  """Stands in for a model's backbone: gives the outputs the same backbone
  gave for the same inputs in an earlier test."""

  def __init__(self, inputs, outputs):
    self._inputs = inputs
    self._outputs = outputs

  def __call__(self, inputs, training=None):
    del training
    np.testing.assert_array_equal(inputs.numpy(), self._inputs.numpy())
    return self._outputs


def _predict(model, model_config, backbone_outputs):  # pylint: disable=redefined-outer-name
  """``model.predict`` on ``_IMAGES``, the backbone run once per backbone.

  The first config of a backbone runs the whole forward pass; a later one
  (e.g. the 512 px ablations, which share Hourglass-104 and differ in the
  mask head) runs its own heads on the recorded backbone outputs: its
  backbone is built (``model_builder.build``) but not run again.
  """
  inputs = model.normalize_images(_IMAGES)
  key = _backbone_key(model_config)
  if model_config.WhichOneof('model') == 'center_net':
    attribute = '_feature_extractor'
    outputs_key = center_net.EXTRACTED_FEATURES
  else:
    attribute, outputs_key = '_features', mask_rcnn.FEATURES
  if key not in backbone_outputs:
    predictions = model.predict(inputs, training=False)
    backbone_outputs[key] = (inputs, predictions[outputs_key])
    return predictions
  with mock.patch.object(model, attribute,
                         _RecordedBackbone(*backbone_outputs[key])):
    return model.predict(inputs, training=False)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[os.path.basename(p) for p in CONFIGS])
def test_every_config_builds_and_runs_a_small_forward_pass(
    path, backbone_outputs):  # pylint: disable=redefined-outer-name
  model_config = _model_config(path)
  representative = _FIRST_PER_ARCHITECTURE[_architecture_key(path)]
  if representative != path:
    # Same network as an earlier config (which runs the forward pass):
    # build this one with its own mask classes, no second forward pass.
    assert model_builder.build(model_config, is_training=True) is not None
    return
  if model_config.WhichOneof('model') == 'faster_rcnn':
    _check_deepmarc_config_runs(model_config, backbone_outputs)
    return
  # Few detections keep the mask-head part of the forward pass cheap; the
  # model is otherwise exactly the config's.
  model_config.center_net.object_center_params.max_box_predictions = 4
  model = model_builder.build(model_config, is_training=True)
  predictions = _predict(model, model_config, backbone_outputs)
  stages = model.feature_extractor.num_feature_outputs
  if not model_config.center_net.deepmac_mask_estimation.detector_free:
    assert len(predictions['object_center']) == stages
    center = predictions['object_center'][-1]
    assert center.shape[:3] == (1, 32, 32)
    assert center.shape[-1] == model_config.center_net.num_classes
  if model_config.center_net.HasField('deepmac_mask_estimation'):
    assert len(predictions['PIXEL_EMBEDDING']) == stages
    side = 128 // model.feature_extractor.out_stride  # 4; 2 for small_conv
    assert predictions['PIXEL_EMBEDDING'][-1].shape[:3] == (1, side, side)
  deepmac_config = model_config.center_net.deepmac_mask_estimation
  if deepmac_config.detector_free:
    # No detection heads: masks come from given boxes only.
    assert 'object_center' not in model._prediction_head_dict  # pylint: disable=protected-access
    masks = model.predict_masks_from_boxes(
        predictions, tf.constant([[[0.1, 0.2, 0.6, 0.7]]]),
        _TRUE_SHAPES)['detection_masks']
    assert masks.shape == (1, 1, deepmac_config.mask_size,
                           deepmac_config.mask_size)
    return
  detections = model.postprocess(predictions, _TRUE_SHAPES)
  assert detections['detection_boxes'].shape == (1, 4, 4)
  assert np.isfinite(detections['detection_scores'].numpy()).all()
  if model_config.center_net.HasField('deepmac_mask_estimation'):
    mask_size = model_config.center_net.deepmac_mask_estimation.mask_size
    assert detections['detection_masks'].shape == (1, 4, mask_size,
                                                   mask_size)


def _check_deepmarc_config_runs(model_config, backbone_outputs):  # pylint: disable=redefined-outer-name
  # Few proposals / detections keep the second stage cheap.
  frcnn = model_config.faster_rcnn
  frcnn.first_stage_max_proposals_eval = 16
  frcnn.second_stage_post_processing.batch_non_max_suppression.max_total_detections = 4
  model = model_builder.build(model_config, is_training=True)
  predictions = _predict(model, model_config, backbone_outputs)
  detections = model.postprocess(predictions, _TRUE_SHAPES)
  assert detections['detection_boxes'].shape == (1, 4, 4)
  assert np.isfinite(detections['detection_scores'].numpy()).all()
  if not frcnn.HasField('deepmarc_mask_head'):  # A box-only detector.
    assert 'detection_masks' not in detections
    return
  mask_size = frcnn.deepmarc_mask_head.mask_size
  assert detections['detection_masks'].shape == (1, 4, mask_size, mask_size)


def test_center_net_without_deepmac_is_a_plain_detector():
  from deepmac_tf.meta_architectures import center_net  # pylint: disable=g-import-not-at-top
  model_config = _model_config()
  model_config.center_net.ClearField('deepmac_mask_estimation')
  model = model_builder.build(model_config, is_training=True)
  assert type(model) is center_net.CenterNetMetaArch  # pylint: disable=unidiomatic-typecheck


def test_deepmac_config_gives_deepmac_meta_arch():
  from deepmac_tf.meta_architectures import deepmac  # pylint: disable=g-import-not-at-top
  model = model_builder.build(_model_config(), is_training=True)
  assert isinstance(model, deepmac.DeepMACMetaArch)


@pytest.mark.parametrize('override,message', [
    ('model { center_net { feature_extractor { type: "hourglass_11" } } }',
     r'model\.center_net\.feature_extractor\.type: unknown feature extractor '
     r"'hourglass_11'"),
    ('model { center_net { deepmac_mask_estimation { network_type: '
     '"hourglas20" } } }', r'network_type.*hourglas20'),
    ('model { center_net { deepmac_mask_estimation { mask_size: 18 } } }',
     r'deepmac_mask_estimation\.mask_size: 18 cannot be taken by network_type '
     r'"hourglass20"'),
    ('model { center_net { deepmac_mask_estimation { '
     'allowed_masked_classes_ids: 11 } } }', r'allowed_masked_classes_ids: 11'),
    ('model { center_net { mask_estimation_task { } } }',
     r'model\.center_net\.mask_estimation_task: not supported'),
    ('model { center_net { deepmac_mask_estimation { '
     'augmented_self_supervision_loss_weight: 1.0 } } }',
     r'augmented_self_supervision_loss_weight'),
])
def test_bad_settings_name_the_field(override, message):
  with pytest.raises(ConfigError, match=message):
    model_builder.build(_model_config(override=override), is_training=True)


def test_faster_rcnn_problems_name_the_field():
  pipeline = config.get_pipeline_config_from_text(
      'model { faster_rcnn { num_classes: 3 } }')
  with pytest.raises(ConfigError,
                     match=r'^model\.faster_rcnn\.feature_extractor\.type'):
    model_builder.build(pipeline.model, is_training=True)
