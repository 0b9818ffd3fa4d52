"""The OD API's TF2 sample configs, loaded byte for byte from
tests/fixtures/odapi_configs/ (issue 13, part 4).

Every fixture loads. Every Faster R-CNN / Mask R-CNN one maps each of its
fields (``mask_rcnn_builder.params_from_proto``: honoured, logged as having
no effect, or a ConfigError), every CenterNet one passes the CenterNet
checks or names its keypoint field. One config per backbone family builds
and runs a training step on a small input (ResNet v1 + grid anchors,
ResNet-FPN, Inception-ResNet-v2 Mask R-CNN, Hourglass-104); the other
configs of a family differ from it in sizes and schedules only, so they
are checked at the params level (building ResNet-101 / 152 again costs
10-30 s each on 2 cores and tests nothing new: ``resnet_v1`` takes the
depth as a table entry, checked against tf_keras.applications at 50).
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import config as config_lib
from deepmac_tf.builders import faster_rcnn_options
from deepmac_tf.builders import mask_rcnn_builder
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import optimizer_builder
from deepmac_tf.data.augmentation import build_augmentation_fn
from deepmac_tf.errors import ConfigError
from deepmac_tf.training import fine_tune

ODAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                     'odapi_configs')
SMALL = 128  # input size of the training step (the configs say 512 - 1333)
FIXTURES = sorted(os.listdir(ODAPI))
FASTER_RCNN = [n for n in FIXTURES if n.startswith(('faster_rcnn',
                                                    'mask_rcnn'))]
CENTER_NET = [n for n in FIXTURES if n not in FASTER_RCNN]
KEYPOINTS = [n for n in CENTER_NET if '_kpts_' in n]


def _configs(name):
  return config_lib.get_configs_from_pipeline_file(os.path.join(ODAPI, name))


def _small_second_stage(configs, rois=16, proposals=32):
  """Fewer proposals / sampled ROIs than the paper-scale config (the
  training step's cost; nothing else changes)."""
  f = configs['model'].faster_rcnn
  f.first_stage_max_proposals = proposals
  f.second_stage_batch_size = rois
  return configs


def _groundtruth(with_masks=False):
  groundtruth = {
      'groundtruth_boxes': tf.constant([[[0.2, 0.3, 0.7, 0.8]]]),
      'groundtruth_classes': tf.constant([[3]]),
      'true_image_shape': tf.constant([[SMALL, SMALL, 3]]),
  }
  if with_masks:
    mask = tf.pad(tf.ones([64, 64]), [[26, 38], [38, 26]])
    groundtruth['groundtruth_instance_masks'] = mask[None, None]
  return groundtruth


def _one_training_step(model, configs, apply_gradients=True,
                       with_masks=False):
  """One optimizer step on a random [1, 128, 128, 3] image with one box
  (``apply_gradients=False``: the forward pass and losses of that step)."""
  optimizer, _ = optimizer_builder.build(configs['train_config'].optimizer)
  images = tf.random.stateless_uniform([1, SMALL, SMALL, 3], (1, 2), 0, 255)
  groundtruth = _groundtruth(with_masks)
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


def _finite(losses):
  return losses and all(bool(tf.math.is_finite(v)) for v in losses.values())


# -- every fixture -----------------------------------------------------------

@pytest.mark.parametrize('name', FIXTURES)
def test_every_sample_config_loads_with_its_augmentation(name):
  configs = _configs(name)
  assert configs['model'].WhichOneof('model') in ('center_net', 'faster_rcnn')
  # Its train / eval fields: honoured, logged as no effect, or refused.
  faster_rcnn_options.check_fields(configs['train_config'], 'train_config')
  faster_rcnn_options.check_fields(configs['eval_config'], 'eval_config')
  center_net = configs['model'].center_net
  if center_net.HasField('deepmac_mask_estimation'):
    faster_rcnn_options.check_fields(center_net.deepmac_mask_estimation,
                                     'model.center_net.deepmac_mask_estimation')
  readers = [('train_input_reader', configs['train_input_config'])] + [
      (f'eval_input_reader[{i}]', r)
      for i, r in enumerate(configs['eval_input_configs'])]
  options = configs['train_config'].data_augmentation_options
  if name not in KEYPOINTS:
    for path, reader in readers:
      faster_rcnn_options.check_fields(reader, path)
    build_augmentation_fn(options)
    return
  with pytest.raises(ConfigError, match=(
      r'^train_input_reader\.num_keypoints: only 0 is supported here')):
    faster_rcnn_options.check_fields(readers[0][1], readers[0][0])
  with pytest.raises(ConfigError, match=(
      r'^train_config\.data_augmentation_options\[0\]\.random_horizontal_'
      r'flip\.keypoint_flip_permutation: keypoints are not supported')):
    build_augmentation_fn(options)


@pytest.mark.parametrize('name', FASTER_RCNN)
def test_faster_rcnn_config_maps_every_field(name):
  model = _configs(name)['model'].faster_rcnn
  params = mask_rcnn_builder.params_from_proto(model)
  assert params.backbone == model.feature_extractor.type
  # Honoured by ops.multiclass_nms (100 per class of 300 in the 640 / 1024
  # configs).
  nms = model.second_stage_post_processing.batch_non_max_suppression
  assert (params.max_detections_per_class, params.max_num_detections) == (
      nms.max_detections_per_class, nms.max_total_detections)
  if '_fpn_' in name:
    assert (params.min_level, params.max_level) == (2, 6)
    assert params.decoder_hyperparams.activation == 'relu6'
    assert params.backbone_hyperparams.activation == 'relu6'
    return
  assert (params.min_level, params.max_level) == (4, 4)
  assert params.grid_anchors.scales == (0.25, 0.5, 1.0, 2.0)
  assert params.grid_anchors.num_anchors_per_location == 12
  assert params.rpn_hyperparams.kernel_initializer == {
      'class_name': 'TruncatedNormal',
      'config': {'mean': 0.0, 'stddev': pytest.approx(0.01)}}
  assert params.box_head_hyperparams.kernel_initializer['config'] == {
      'scale': 1.0, 'mode': 'fan_avg', 'distribution': 'uniform'}
  if name.startswith('mask_rcnn'):
    assert (params.roi_crop_size, params.roi_maxpool_stride) == (17, 1)
    assert params.mask_head.mask_size == 33
    assert params.mask_head.crop_size == 11
    assert params.mask_head.num_init_channels == 256  # the OD API's rule
    assert not params.mask_head.class_agnostic
    return
  assert (params.roi_crop_size, params.roi_maxpool_kernel,
          params.roi_maxpool_stride) == (14, 2, 2)
  assert params.mask_head is None
  assert params.clip_anchors_to_image == ('800x1333' not in name)
  assert params.share_box_across_classes == ('800x1333' not in name)


# The OD API TF2 zoo also has Faster R-CNN ResNet-101 / 152 FPN and
# Inception-ResNet-v2 (boxes only) models; their sample config files were
# not in the stored copy of the OD API's configs/tf2, nor in the OD API's
# PyPI sdists (tf-models-research-object-detection 2.5.0.post2 ships 40
# configs/tf2 files, none of these; 2.5.0, 2.5.0.post1, 2.8.0, 2.8.0.post1
# ship none), so they are not fixtures. Here the stored configs with those backbone types map every
# field (variants made here, not the OD API's files).
@pytest.mark.parametrize('type_name', ['faster_rcnn_resnet101_fpn_keras',
                                       'faster_rcnn_resnet152_fpn_keras'])
def test_fpn_backbone_type_variants_map_every_field(type_name):
  model = _configs('faster_rcnn_resnet50_v1_fpn_640x640_coco17_tpu-8.config'
                   )['model'].faster_rcnn
  model.feature_extractor.type = type_name
  params = mask_rcnn_builder.params_from_proto(model)
  assert params.backbone == type_name
  assert (params.min_level, params.max_level) == (2, 6)
  assert params.backbone_hyperparams.activation == 'relu6'


def test_inception_resnet_v2_boxes_only_variant_maps_every_field():
  model = _configs('mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.'
                   'config')['model'].faster_rcnn
  predictor = model.second_stage_box_predictor.mask_rcnn_box_predictor
  for field in ('predict_instance_masks', 'mask_height', 'mask_width',
                'mask_prediction_conv_depth',
                'mask_prediction_num_conv_layers', 'masks_are_class_agnostic',
                'conv_hyperparams'):
    predictor.ClearField(field)
  model.ClearField('second_stage_mask_prediction_loss_weight')
  model.number_of_stages = 2
  params = mask_rcnn_builder.params_from_proto(model)
  assert params.backbone == 'faster_rcnn_inception_resnet_v2_keras'
  assert params.mask_head is None
  assert (params.roi_crop_size, params.roi_maxpool_stride) == (17, 1)


@pytest.mark.parametrize('name', sorted(set(CENTER_NET) - set(KEYPOINTS)))
def test_center_net_config_passes_the_model_checks(name):
  # pylint: disable=protected-access
  model = _configs(name)['model'].center_net
  model_builder._check_center_net_options(model)
  faster_rcnn_options.check_fields(model, 'model.center_net')
  from deepmac_tf.backbones import registry  # pylint: disable=g-import-not-at-top
  assert model.feature_extractor.type in registry.FEATURE_EXTRACTORS


@pytest.mark.parametrize('name', KEYPOINTS)
def test_keypoint_config_loads_and_fails_at_build_naming_the_field(name):
  configs = _configs(name)
  with pytest.raises(ConfigError, match=(
      r'^model\.center_net\.keypoint_\w+: supported by the OD API, not by '
      'deepmac_tf')):
    model_builder.build(configs['model'], is_training=True)


@pytest.mark.parametrize('name', KEYPOINTS)
def test_keypoint_metrics_fail_when_evaluation_starts(name):
  from deepmac_tf.evaluation import eval_setup  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match=(
      r'^eval_config\.parameterized_metric: supported by the OD API')):
    eval_setup.metrics_sets(_configs(name))


def test_external_input_reader_loads_and_fails_at_dataset_build():
  from deepmac_tf.config import validation  # pylint: disable=g-import-not-at-top
  configs = _configs('centernet_resnet50_v2_512x512_coco17_tpu-8.config')
  with pytest.raises(ConfigError, match=(
      r'^train_input_reader\.external_input_reader: supported by the OD '
      'API')):
    validation.validate_input_reader(configs['train_input_config'],
                                     'train_input_reader')


# -- one training step per backbone family -----------------------------------

@pytest.fixture(scope='module')
def resnet50_v1():
  configs = _small_second_stage(
      _configs('faster_rcnn_resnet50_v1_640x640_coco17_tpu-8.config'))
  return configs, model_builder.build(configs['model'], is_training=True)


def test_resnet_v1_grid_anchor_config_trains_one_step(resnet50_v1):
  configs, model = resnet50_v1
  losses = _one_training_step(model, configs)
  assert _finite(losses)
  features = model.predict(model.normalize_images(
      tf.zeros([1, SMALL, SMALL, 3])), training=False)['features']
  assert list(features) == ['4']
  assert features['4'].shape == (1, SMALL // 16, SMALL // 16, 1024)
  head = model._detection_head  # pylint: disable=protected-access
  crops = tf.zeros([2, 7, 7, 1024])
  assert head.box_classifier(crops).shape == (2, 4, 4, 2048)


def test_resnet_v1_restores_an_odapi_classification_checkpoint(resnet50_v1,
                                                               tmp_path):
  """``fine_tune_checkpoint_type: "classification"``: a checkpoint laid out
  as the OD API writes its classification backbone
  (``tf.train.Checkpoint(feature_extractor=<tf_keras.applications.ResNet50>)``)
  restores into our ResNet-50 v1 (first stage + conv5 box classifier, the
  application's layers and names): every variable, outputs equal."""
  configs, model = resnet50_v1
  backbone = model._backbone  # pylint: disable=protected-access
  ours = {l.name for net in (backbone.first_stage, backbone.box_classifier)
          for l in net.layers if l.weights}
  tf_keras.utils.set_random_seed(5)
  app = tf_keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
  assert ours == {l.name for l in app.layers if l.weights}
  for variable in app.non_trainable_variables:  # BN statistics too
    variable.assign(tf.random.uniform(variable.shape, 0.5, 1.5))
  train_config = configs['train_config']
  assert train_config.fine_tune_checkpoint_type == 'classification'
  train_config.fine_tune_checkpoint = tf.train.Checkpoint(
      feature_extractor=app).write(str(tmp_path / 'resnet50'))
  report = fine_tune.restore_fine_tune_checkpoint(model, train_config)
  assert not report.missing and not report.shape_mismatch
  assert len(report.restored) == len(app.variables)
  images = tf.random.stateless_uniform([1, 64, 64, 3], (3, 4), -1, 1)
  conv4 = tf_keras.Model(app.inputs, app.get_layer('conv4_block6_out').output)
  first = backbone.first_stage(images, training=False)
  np.testing.assert_allclose(first, conv4(images, training=False), atol=1e-4)
  np.testing.assert_allclose(backbone.box_classifier(first, training=False),
                             app(images, training=False), atol=1e-4)
  # A checkpoint of another network: one line naming the field.
  train_config.fine_tune_checkpoint = tf.train.Checkpoint(
      feature_extractor=conv4).write(str(tmp_path / 'conv4'))
  with pytest.raises(ConfigError, match=(
      r'^train_config\.fine_tune_checkpoint: .* is not a classification '
      r'checkpoint of this backbone \(\d+ of its \d+ variables missing')):
    fine_tune.restore_fine_tune_checkpoint(model, train_config)


@pytest.fixture(scope='module')
def resnet50_fpn():
  configs = _configs('faster_rcnn_resnet50_v1_fpn_640x640_coco17_tpu-8.config')
  return configs, model_builder.build(configs['model'], is_training=True)


def test_fpn_config_hyperparams_reach_the_layers(resnet50_fpn):
  """RELU_6, batch-norm decay / epsilon, initializer stddev and the L2
  regularizer of the OD API's FPN config are in the built model."""
  configs, model = resnet50_fpn
  # pylint: disable=protected-access
  backbone, decoder = model._backbone, model._decoder
  assert backbone.get_config()['activation'] == 'relu6'
  assert decoder.get_config()['activation'] == 'relu6'
  norms = [l for l in backbone._flatten_layers()
           if hasattr(l, 'moving_variance')]
  assert norms and all(l.momentum == pytest.approx(0.997) and
                       l.epsilon == pytest.approx(0.001) and l.scale
                       for l in norms)
  # truncated_normal stddev 0.03 -> kernels' std 0.03 * 0.88 (truncated at
  # 2 sigma); Model Garden's default (VarianceScaling) is far from it.
  kernel = [v for v in backbone.trainable_variables if 'kernel' in v.name][5]
  assert float(tf.math.reduce_std(kernel)) == pytest.approx(0.0264, rel=0.1)
  assert float(tf.reduce_max(tf.abs(kernel))) <= 0.06 + 1e-6
  # The RPN head: truncated_normal stddev 0.01, its 1x1 layers included.
  model.predict(model.normalize_images(tf.zeros([1, 64, 64, 3])),
                training=False)
  rpn = [v for v in model._rpn_head.trainable_variables
         if 'kernel' in v.name]
  assert len(rpn) == 3
  for v in rpn:
    assert float(tf.math.reduce_std(v)) == pytest.approx(0.0088, rel=0.15)
  # l2_regularizer weight 0.0004 on the backbone + FPN.
  (loss,) = model.regularization_losses()
  kernels = [v for layer in (backbone, decoder)
             for v in layer.trainable_variables
             if 'kernel' in v.name.split('/')[-1]]
  expected = 0.0004 * sum(float(tf.nn.l2_loss(v)) for v in kernels)
  assert float(loss) == pytest.approx(expected, rel=1e-4)
  del configs


def test_fpn_config_trains_one_step(resnet50_fpn):
  configs, model = resnet50_fpn
  assert _finite(_one_training_step(model, configs))


def test_inception_resnet_v2_mask_rcnn_config_runs_a_training_step():
  """The OD API's Mask R-CNN sample config: Inception-ResNet-v2 with grid
  anchors, its mask options on our mask head; forward pass and losses (the
  backward pass of this network costs ~2x more on 2 CPU cores)."""
  configs = _small_second_stage(_configs(
      'mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config'),
      rois=4, proposals=8)
  model = model_builder.build(configs['model'], is_training=True)
  losses = _one_training_step(model, configs, apply_gradients=False,
                              with_masks=True)
  assert _finite(losses)
  assert 'Loss/BoxClassifierLoss/mask_loss' in losses
  features = model.predict(model.normalize_images(
      tf.zeros([1, 64, 64, 3])), training=False)['features']
  assert features['4'].shape == (1, 4, 4, 1088)


# Hourglass-104's backward pass costs ~2.5x the whole Faster R-CNN step on
# 2 CPU cores (measured 147 s vs 56 s on a loaded machine), so it runs the
# step's forward pass and losses.
def test_hourglass_config_runs_a_training_step():
  configs = _configs('centernet_hourglass104_512x512_coco17_tpu-8.config')
  model = model_builder.build(configs['model'], is_training=True)
  assert _finite(_one_training_step(model, configs, apply_gradients=False))


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


def test_keypoint_block_fails_at_build_naming_the_field():
  """The keypoint blocks of the OD API's centernet_*_kpts sample configs."""
  text = '''model {
  center_net {
    num_classes: 90
    feature_extractor { type: "hourglass_104" }
    image_resizer { keep_aspect_ratio_resizer { min_dimension: 512
                                                max_dimension: 512 } }
    object_center_params { classification_loss {
        penalty_reduced_logistic_focal_loss { alpha: 2.0 beta: 4.0 } } }
    keypoint_estimation_task {
      task_name: "human_pose"
      keypoint_class_name: "/m/01g317"
      per_keypoint_offset: true
    }
  }
}
'''
  pipeline = config_lib.get_pipeline_config_from_text(text, source='kpts')
  with pytest.raises(ConfigError, match=(
      r'^model\.center_net\.keypoint_estimation_task: supported by the OD '
      'API, not by deepmac_tf')):
    model_builder.build(pipeline.model, is_training=True)


def test_resnet_v2_center_net_config_trains_one_step():
  configs = _configs('centernet_resnet50_v2_512x512_coco17_tpu-8.config')
  model = model_builder.build(configs['model'], is_training=True)
  assert _finite(_one_training_step(model, configs))
