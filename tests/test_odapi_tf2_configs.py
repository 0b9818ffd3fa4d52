"""The OD API's TF2 sample configs, loaded byte for byte from
tests/fixtures/odapi_configs/ (issue 13, part 4; the part done so far):
CenterNet and Faster R-CNN FPN configs load, build and run one training step
at a small input; the backbones and meta-architectures deepmac_tf does not
build fail with one line naming them."""

import os

import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import optimizer_builder
from deepmac_tf.data.augmentation import build_augmentation_fn
from deepmac_tf.errors import ConfigError

ODAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                     'odapi_configs')
SMALL = 128  # input size of the training step (the configs say 512 / 640)


def _configs(name):
  return config_lib.get_configs_from_pipeline_file(os.path.join(ODAPI, name))


def _one_training_step(configs, apply_gradients=True):
  """One optimizer step on a random [1, 128, 128, 3] image with one box
  (``apply_gradients=False``: the forward pass and losses of that step)."""
  model = model_builder.build(configs['model'], is_training=True)
  optimizer, _ = optimizer_builder.build(configs['train_config'].optimizer)
  images = tf.random.stateless_uniform([1, SMALL, SMALL, 3], (1, 2), 0, 255)
  groundtruth = {
      'groundtruth_boxes': tf.constant([[[0.2, 0.3, 0.7, 0.8]]]),
      'groundtruth_classes': tf.constant([[3]]),
      'true_image_shape': tf.constant([[SMALL, SMALL, 3]]),
  }
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True,
                                **({'groundtruth': groundtruth} if hasattr(
                                    model, 'second_stage_for_training')
                                   else {}))
    losses = model.loss(predictions, groundtruth, training=True)
    total = tf.add_n(list(losses.values()))
  if not apply_gradients:
    return losses
  variables = model.trainable_variables
  gradients = tape.gradient(total, variables)
  optimizer.apply_gradients(
      [(g, v) for g, v in zip(gradients, variables) if g is not None])
  return losses


# Hourglass-104's backward pass costs ~2.5x the whole Faster R-CNN step on
# 2 CPU cores (measured 147 s vs 56 s on a loaded machine), so it runs the
# step's forward pass and losses; the Faster R-CNN config applies gradients.
@pytest.mark.parametrize('name,apply_gradients', [
    ('centernet_hourglass104_512x512_coco17_tpu-8.config', False),
    ('faster_rcnn_resnet50_v1_fpn_640x640_coco17_tpu-8.config', True),
])
def test_sample_config_builds_and_trains_one_step(name, apply_gradients):
  configs = _configs(name)
  build_augmentation_fn(configs['train_config'].data_augmentation_options)
  losses = _one_training_step(configs, apply_gradients)
  assert losses and all(bool(tf.math.is_finite(v)) for v in losses.values())


def test_centernet_resnet101_fpn_config_loads():
  """The config the issue found failing at load (random_crop_image); its
  backbone builds in test_model_builder (our ResNet-101-FPN Deep-MAC config),
  which costs ~50 s here, so this checks loading and the augmentation."""
  configs = _configs('centernet_resnet101_v1_fpn_512x512_coco17_tpu-8.config')
  assert configs['model'].center_net.feature_extractor.type == (
      'resnet_v1_101_fpn')
  build_augmentation_fn(configs['train_config'].data_augmentation_options)


def test_unsupported_backbone_is_one_line():
  configs = _configs('mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8'
                     '.config')
  with pytest.raises(ConfigError) as info:
    model_builder.build(configs['model'], is_training=True)
  assert str(info.value) == (
      'model.faster_rcnn.feature_extractor.type: supported by the OD API, not '
      'by deepmac_tf: faster_rcnn_inception_resnet_v2_keras (Deep-MARC builds '
      'FPN backbones: faster_rcnn_resnet{50,101,152}_fpn_keras, resnet*_fpn, '
      'spinenet*).')


def test_ssd_config_is_one_line_naming_the_meta_architecture():
  # The opening of the OD API's ssd_efficientdet_d0_512x512_coco17_tpu-8.
  text = ('model {\n  ssd {\n    inplace_batchnorm_update: true\n'
          '    freeze_batchnorm: false\n    num_classes: 90\n  }\n}\n')
  with pytest.raises(ConfigError) as info:
    config_lib.get_pipeline_config_from_text(text, source='ssd.config')
  assert str(info.value) == (
      'ssd.config:2:3: meta-architecture SSD / EfficientDet (model { ssd { } '
      '}) is supported by the OD API, not by deepmac_tf (here: center_net { } '
      'and faster_rcnn { })')


def test_keypoint_config_loads_and_fails_at_build_naming_the_field():
  """The keypoint blocks of the OD API's centernet_*_kpts sample configs."""
  text = '''model {
  center_net {
    num_classes: 90
    feature_extractor { type: "hourglass_104" }
    image_resizer { keep_aspect_ratio_resizer { min_dimension: 512
                                                max_dimension: 512 } }
    object_center_params { classification_loss {
        penalty_reduced_logistic_focal_loss { alpha: 2.0 beta: 4.0 } } }
    keypoint_label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"
    keypoint_estimation_task {
      task_name: "human_pose"
      loss {
        localization_loss { l1_localization_loss { } }
        classification_loss {
          penalty_reduced_logistic_focal_loss { alpha: 2.0 beta: 4.0 } }
      }
      keypoint_class_name: "/m/01g317"
      keypoint_label_to_std { key: "left_ankle" value: 0.89 }
      per_keypoint_offset: true
    }
  }
}
'''
  pipeline = config_lib.get_pipeline_config_from_text(text, source='kpts')
  with pytest.raises(ConfigError, match=(
      r'^model\.center_net\.keypoint_label_map_path: supported by the OD API, '
      'not by deepmac_tf')):
    model_builder.build(pipeline.model, is_training=True)
