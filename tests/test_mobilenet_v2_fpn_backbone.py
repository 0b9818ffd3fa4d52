"""MobileNetV2-FPN CenterNet feature extractors (the OD API's
``mobilenet_v2_fpn`` / ``mobilenet_v2_fpn_sep_conv``), their config fields,
their OD API classification checkpoints and a CenterNet training step.

Small inputs and ``depth_multiplier: 0.35`` keep every test a few seconds.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import config as config_lib
from deepmac_tf.backbones import registry
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf.builders import optimizer_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import pipeline_pb2
from deepmac_tf.training import fine_tune

# MobileNetV2 at alpha 0.35: channels of block_2_add, block_5_add,
# block_9_add, out_relu (24 / 32 / 64 x 0.35 rounded up to a multiple of 8;
# the last conv keeps 1280 for alpha <= 1).
SKIP_CHANNELS = (8, 16, 24, 1280)


def _top_down_params(skip_channels, separable):
  """The FPN's parameters, counted from its layer shapes."""
  c2, c3, c4, c5 = skip_channels
  total = c5 * 64 + 64  # top 1x1 conv
  for lateral_in, filters, out in ((c4, 64, 32), (c3, 32, 24), (c2, 24, 24)):
    total += lateral_in * filters + filters  # lateral 1x1 conv
    if separable:
      total += 9 * filters + filters * out + out  # depthwise + pointwise
    else:
      total += 9 * filters * out + out
    total += 4 * out  # batch norm
  return total


@pytest.fixture(scope='module')
def extractor():
  tf_keras.utils.set_random_seed(1)
  return registry.build_feature_extractor(
      'mobilenet_v2_fpn_sep_conv', depth_multiplier=0.35)


def test_shape_stride_and_input_range(extractor):
  images = tf.random.stateless_uniform([2, 64, 96, 3], (1, 2), 0, 255)
  (features,) = extractor(extractor.preprocess(images), training=False)
  assert extractor.out_stride == 4 and extractor.num_feature_outputs == 1
  assert features.shape == (2, 16, 24, 24)
  assert np.isfinite(features.numpy()).all()
  # [0, 255] -> [-1, 1], as MobileNetV2 expects (the OD API's preprocess).
  np.testing.assert_allclose(
      extractor.preprocess(tf.constant([[[[0.0, 127.5, 255.0]]]])),
      [[[[-1.0, 0.0, 1.0]]]])


def test_parameter_count_is_mobilenet_v2_plus_top_down(extractor):
  base = extractor.classification_backbone
  assert [base.get_layer(n).output.shape[-1] for n in (
      'block_2_add', 'block_5_add', 'block_9_add', 'out_relu')] == list(
          SKIP_CHANNELS)
  assert extractor.count_params() == base.count_params() + _top_down_params(
      SKIP_CHANNELS, separable=True)
  regular = registry.build_feature_extractor('mobilenet_v2_fpn',
                                             depth_multiplier=0.35)
  regular(tf.zeros([1, 32, 32, 3]))
  assert regular.count_params() == base.count_params() + _top_down_params(
      SKIP_CHANNELS, separable=False)
  assert not any('separable' in type(l).__name__.lower()
                 for stage in regular._stages for l in stage)  # pylint: disable=protected-access


def test_every_variable_gets_a_gradient(extractor):
  images = tf.random.stateless_uniform([1, 64, 64, 3], (3, 4), 0, 255)
  with tf.GradientTape() as tape:
    (features,) = extractor(extractor.preprocess(images), training=True)
    loss = tf.reduce_mean(tf.square(features))
  gradients = tape.gradient(loss, extractor.trainable_variables)
  assert len(gradients) == len(extractor.trainable_variables) > 100
  assert all(g is not None and bool(tf.reduce_any(g != 0)) for g in gradients)


# An OD API-style CenterNet MobileNetV2-FPN config: the type name, head and
# resizer settings of the OD API's centernet_mobilenetv2_fpn sample configs
# (their files are not stored here, so this is not a byte-for-byte copy),
# at a small size.
_CONFIG = '''
model {
  center_net {
    num_classes: 3
    feature_extractor {
      type: "mobilenet_v2_fpn_sep_conv"
      depth_multiplier: 0.35
    }
    image_resizer {
      keep_aspect_ratio_resizer {
        min_dimension: 64
        max_dimension: 64
        pad_to_max_dimension: true
      }
    }
    use_depthwise: true
    object_detection_task {
      task_loss_weight: 1.0
      offset_loss_weight: 1.0
      scale_loss_weight: 0.1
      localization_loss { l1_localization_loss { } }
    }
    object_center_params {
      object_center_loss_weight: 1.0
      classification_loss {
        penalty_reduced_logistic_focal_loss { alpha: 2.0 beta: 4.0 }
      }
      min_box_overlap_iou: 0.7
      max_box_predictions: 20
    }
  }
}
train_config {
  batch_size: 1
  optimizer {
    adam_optimizer {
      learning_rate {
        cosine_decay_learning_rate {
          learning_rate_base: 5e-3
          total_steps: 300000
          warmup_learning_rate: 1e-4
          warmup_steps: 5000
        }
      }
    }
    use_moving_average: false
  }
  num_steps: 300000
  fine_tune_checkpoint_type: "classification"
}
'''


def _pipeline(text=_CONFIG):
  return config_lib.get_pipeline_config_from_text(text, source='mnv2.config')


@pytest.fixture(scope='module')
def center_net():
  pipeline = _pipeline()
  model = model_builder.build(pipeline.model, is_training=True)
  model_variables.build_model_variables(model, 64, 64)
  return pipeline, model


def test_config_builds_depthwise_heads_and_trains_one_step(center_net):
  pipeline, model = center_net
  # pylint: disable=protected-access
  for heads in model._prediction_head_dict.values():
    hidden, _, output = heads[0].layers
    assert isinstance(hidden, tf_keras.layers.SeparableConv2D)
    assert type(output) is tf_keras.layers.Conv2D  # pylint: disable=unidiomatic-typecheck
  optimizer, _ = optimizer_builder.build(pipeline.train_config.optimizer)
  images = tf.random.stateless_uniform([1, 64, 64, 3], (5, 6), 0, 255)
  groundtruth = {'groundtruth_boxes': tf.constant([[[0.2, 0.3, 0.7, 0.8]]]),
                 'groundtruth_classes': tf.constant([[2]]),
                 'true_image_shape': tf.constant([[64, 64, 3]])}
  before = [v.numpy() for v in model.trainable_variables]
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True)
    losses = model.loss(predictions, groundtruth, training=True)
    total = tf.add_n(list(losses.values()))
  gradients = tape.gradient(total, model.trainable_variables)
  optimizer.apply_gradients(zip(gradients, model.trainable_variables))
  assert all(bool(tf.math.is_finite(v)) for v in losses.values())
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, model.trainable_variables)]
  assert all(changed)


def _odapi_classification_checkpoint(path, alpha=0.35, seed=7):
  """A checkpoint as the OD API writes a classification backbone:
  ``tf.train.Checkpoint(feature_extractor=<MobileNetV2>)``, seeded."""
  tf_keras.utils.set_random_seed(seed)
  network = tf_keras.applications.MobileNetV2(
      include_top=False, weights=None, alpha=alpha,
      input_shape=(None, None, 3))
  for variable in network.non_trainable_variables:  # BN statistics too
    variable.assign(tf.random.uniform(variable.shape, 0.5, 1.5))
  return network, tf.train.Checkpoint(feature_extractor=network).write(path)


def test_classification_checkpoint_restores_the_base_network(center_net,
                                                             tmp_path):
  pipeline, model = center_net
  network, path = _odapi_classification_checkpoint(str(tmp_path / 'cls'))
  train_config = pipeline_pb2.TrainEvalPipelineConfig().train_config
  train_config.CopyFrom(pipeline.train_config)
  train_config.fine_tune_checkpoint = path
  report = fine_tune.restore_fine_tune_checkpoint(model, train_config)
  assert not report.missing and not report.shape_mismatch
  assert len(report.restored) == len(network.variables)
  images = tf.random.stateless_uniform([1, 64, 64, 3], (8, 9), -1, 1)
  base = model.feature_extractor.classification_backbone
  np.testing.assert_allclose(base(images, training=False),
                             network(images, training=False), atol=1e-5)


def test_mismatched_classification_checkpoint_is_one_line(center_net,
                                                          tmp_path):
  pipeline, model = center_net
  _, path = _odapi_classification_checkpoint(str(tmp_path / 'wide'),
                                             alpha=0.5)
  train_config = pipeline_pb2.TrainEvalPipelineConfig().train_config
  train_config.CopyFrom(pipeline.train_config)
  train_config.fine_tune_checkpoint = path
  with pytest.raises(ConfigError) as info:
    fine_tune.restore_fine_tune_checkpoint(model, train_config)
  message = str(info.value)
  assert '\n' not in message
  assert message.startswith(
      'train_config.fine_tune_checkpoint: ') and (
          'is not a classification checkpoint of this backbone' in message)


@pytest.mark.parametrize('extractor_text, error', [
    ('type: "hourglass_20" depth_multiplier: 0.5',
     r'^model\.center_net\.feature_extractor\.depth_multiplier: hourglass_20 '
     'does not take it'),
    ('type: "resnet_v2_50" upsampling_interpolation: "bilinear"',
     r'^model\.center_net\.feature_extractor\.upsampling_interpolation: '
     'resnet_v2_50 does not take it'),
    ('type: "mobilenet_v2_fpn_sep_conv" use_separable_conv: false',
     r'^model\.center_net\.feature_extractor\.use_separable_conv: '
     'mobilenet_v2_fpn_sep_conv always uses separable convs'),
    ('type: "mobilenet_v2_fpn" use_depthwise: true',
     r'^model\.center_net\.feature_extractor\.use_depthwise: no feature '
     'extractor here'),
])
def test_extractor_fields_not_taken_are_one_line(extractor_text, error):
  text = _CONFIG.replace(
      'type: "mobilenet_v2_fpn_sep_conv"\n      depth_multiplier: 0.35',
      extractor_text)
  with pytest.raises(ConfigError, match=error):
    model_builder.build_feature_extractor(
        _pipeline(text).model.center_net.feature_extractor)
