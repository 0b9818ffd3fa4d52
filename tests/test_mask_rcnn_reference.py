"""Side by side with Model Garden's deepmac_maskrcnn: same backbone, input
size and mask head -> same parameter count and output shapes.

Both models are built from one ``MaskRCNNParams``; Model Garden's comes from
``deepmac_tf.benchmarks.model_garden_reference`` (shared with
``scripts/benchmark.py --reference=model_garden``).
"""

import pytest
import tensorflow as tf

from deepmac_tf.meta_architectures import mask_rcnn
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib

SIZE = 128
NUM_CLASSES = 4

pytest.importorskip('official.projects.deepmac_maskrcnn.tasks.deep_mask_head_rcnn')
from deepmac_tf.benchmarks import model_garden_reference  # pylint: disable=g-import-not-at-top,wrong-import-position


def _params(resnet_depth, network_type, num_filters, crop_size):
  return params_lib.MaskRCNNParams(
      num_classes=NUM_CLASSES, backbone=f'resnet{resnet_depth}_fpn',
      mask_head=params_lib.MaskHeadParams(
          network_type=network_type, num_init_channels=num_filters,
          crop_size=crop_size, mask_size=2 * crop_size))


def _num_params(layer):
  return sum(int(tf.size(w)) for w in layer.weights)


@pytest.mark.parametrize('resnet_depth,ours_name,filters,crop', [
    (50, 'mask_rcnn_fcn', 256, 14),
    (18, 'hourglass20', 32, 16),
])
def test_parameter_count_and_output_shapes_match_model_garden(
    resnet_depth, ours_name, filters, crop):
  images = tf.random.uniform([1, SIZE, SIZE, 3], 0, 255)
  params = _params(resnet_depth, ours_name, filters, crop)
  theirs = model_garden_reference.build_reference(params, (SIZE, SIZE))
  their_out = theirs(images, image_shape=tf.constant([[SIZE, SIZE]]),
                     training=False)
  ours = mask_rcnn.MaskRCNNMetaArch(True, params)
  detections = ours.postprocess(ours.predict(ours.preprocess(images),
                                             training=False))
  assert _num_params(ours) == _num_params(theirs)
  for key in ('detection_boxes', 'detection_scores', 'detection_classes',
              'num_detections', 'detection_masks'):
    assert detections[key].shape == their_out[key].shape, key


def test_reference_names_the_mask_head_it_lacks():
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match='resnet4'):
    model_garden_reference.convnet_variant('resnet4')
