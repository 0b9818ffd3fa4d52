"""Tests of the CenterNet params dataclasses and their proto readers."""

import dataclasses

from google.protobuf import text_format
import pytest

from deepmac_tf.builders import center_net_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import center_net_heads
from deepmac_tf.meta_architectures import center_net_params as params
from deepmac_tf.protos import center_net_pb2


def _center(text=''):
  return text_format.Parse(text, center_net_pb2.CenterNet.ObjectCenterParams())


def _detection(text=''):
  return text_format.Parse(text, center_net_pb2.CenterNet.ObjectDetection())


def test_object_center_defaults():
  result = center_net_builder.object_center_params_from_proto(_center())
  assert result == params.ObjectCenterParams()
  assert result.heatmap_bias_init == pytest.approx(-2.19)
  assert result.min_box_overlap_iou == pytest.approx(0.7)
  assert result.max_box_predictions == 100
  assert result.peak_max_pool_kernel_size == 3
  assert (result.focal_loss_alpha, result.focal_loss_beta) == (2.0, 4.0)
  assert result.center_head_num_filters == (256,)
  assert result.center_head_kernel_sizes == (3,)


def test_object_center_values_from_config():
  result = center_net_builder.object_center_params_from_proto(_center("""
      object_center_loss_weight: 2.0
      min_box_overlap_iou: 0.5
      max_box_predictions: 20
      peak_max_pool_kernel_size: 5
      classification_loss {
        penalty_reduced_logistic_focal_loss { alpha: 3.0 beta: 5.0 }
      }
      center_head_params { num_filters: [64, 32] kernel_sizes: [3, 5] }
  """))
  assert result.object_center_loss_weight == 2.0
  assert result.min_box_overlap_iou == pytest.approx(0.5)
  assert result.max_box_predictions == 20
  assert result.peak_max_pool_kernel_size == 5
  assert (result.focal_loss_alpha, result.focal_loss_beta) == (3.0, 5.0)
  assert result.center_head_num_filters == (64, 32)
  assert result.center_head_kernel_sizes == (3, 5)


@pytest.mark.parametrize('text, field', [
    ('classification_loss { weighted_sigmoid {} }', 'classification_loss'),
    ('use_labeled_classes: true', 'use_labeled_classes'),
    ('keypoint_weights_for_center: 1.0', 'keypoint_weights_for_center'),
    ('center_head_params { num_filters: [8, 8] kernel_sizes: [3] }',
     'center_head_params'),
    ('max_box_predictions: 0', 'max_box_predictions'),
])
def test_object_center_rejects_unsupported(text, field):
  with pytest.raises(ConfigError, match=field):
    center_net_builder.object_center_params_from_proto(_center(text))


def test_object_detection_defaults_and_values():
  assert (center_net_builder.object_detection_params_from_proto(_detection()) ==
          params.ObjectDetectionParams())
  result = center_net_builder.object_detection_params_from_proto(_detection("""
      task_loss_weight: 0.5
      scale_loss_weight: 0.2
      offset_loss_weight: 3.0
      localization_loss { l1_localization_loss {} }
      scale_head_params { num_filters: 64 kernel_sizes: 1 }
  """))
  assert result.task_loss_weight == 0.5
  assert result.scale_loss_weight == pytest.approx(0.2)
  assert result.offset_loss_weight == 3.0
  assert result.scale_head_num_filters == (64,)
  assert result.scale_head_kernel_sizes == (1,)
  assert result.offset_head_num_filters == (256,)
  assert result.offset_head_kernel_sizes == (3,)


def test_object_detection_rejects_other_localization_loss():
  with pytest.raises(ConfigError, match='localization_loss'):
    center_net_builder.object_detection_params_from_proto(
        _detection('localization_loss { weighted_l2 {} }'))


def test_params_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    params.ObjectCenterParams().max_box_predictions = 3


def test_make_prediction_net_layers():
  net = center_net_heads.make_prediction_net(
      7, kernel_sizes=(3, 1), num_filters=(16, 8), bias_fill=0.5)
  kinds = [type(layer).__name__ for layer in net.layers]
  assert kinds == ['Conv2D', 'ReLU', 'Conv2D', 'ReLU', 'Conv2D']
  net.build([None, 4, 4, 5])
  assert net.layers[-1].kernel.shape == (1, 1, 8, 7)
  assert (net.layers[-1].bias.numpy() == 0.5).all()
  with pytest.raises(ValueError):
    center_net_heads.make_prediction_net(2, kernel_sizes=(3,),
                                         num_filters=(4, 4))
