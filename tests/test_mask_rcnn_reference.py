"""Side by side with Model Garden's deepmac_maskrcnn: same backbone, input
size and mask head -> same parameter count and output shapes.

Model Garden's model is built here only, as the reference.
"""

import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.meta_architectures import mask_rcnn
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib

SIZE = 128
NUM_CLASSES = 4

deep_mask_config = pytest.importorskip(
    'official.projects.deepmac_maskrcnn.configs.deep_mask_head_rcnn')
deep_mask_task = pytest.importorskip(
    'official.projects.deepmac_maskrcnn.tasks.deep_mask_head_rcnn')


def _reference(resnet_depth, variant, num_filters, crop_size):
  config = deep_mask_config.DeepMaskHeadRCNN(
      num_classes=NUM_CLASSES + 1, input_size=[SIZE, SIZE, 3],
      include_mask=True, use_gt_boxes_for_masks=True)
  config.backbone.resnet.model_id = resnet_depth
  config.mask_head.convnet_variant = variant
  config.mask_head.num_filters = num_filters
  config.mask_head.class_agnostic = True
  config.mask_roi_aligner.crop_size = crop_size
  return deep_mask_task.build_maskrcnn(
      tf_keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3]), config)


def _ours(resnet_depth, network_type, num_filters, crop_size):
  return mask_rcnn.MaskRCNNMetaArch(True, params_lib.MaskRCNNParams(
      num_classes=NUM_CLASSES, backbone=f'resnet{resnet_depth}_fpn',
      mask_head=params_lib.MaskHeadParams(
          network_type=network_type, num_init_channels=num_filters,
          crop_size=crop_size, mask_size=2 * crop_size)))


def _num_params(layer):
  return sum(int(tf.size(w)) for w in layer.weights)


@pytest.mark.parametrize('resnet_depth,variant,ours_name,filters,crop', [
    (50, 'default', 'mask_rcnn_fcn', 256, 14),
    (18, 'hourglass20', 'hourglass20', 32, 16),
])
def test_parameter_count_and_output_shapes_match_model_garden(
    resnet_depth, variant, ours_name, filters, crop):
  images = tf.random.uniform([1, SIZE, SIZE, 3], 0, 255)
  theirs = _reference(resnet_depth, variant, filters, crop)
  their_out = theirs(images, image_shape=tf.constant([[SIZE, SIZE]]),
                     training=False)
  ours = _ours(resnet_depth, ours_name, filters, crop)
  detections = ours.postprocess(ours.predict(ours.preprocess(images),
                                             training=False))
  assert _num_params(ours) == _num_params(theirs)
  for key in ('detection_boxes', 'detection_scores', 'detection_classes',
              'num_detections', 'detection_masks'):
    assert detections[key].shape == their_out[key].shape, key
