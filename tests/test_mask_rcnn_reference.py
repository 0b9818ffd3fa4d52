"""Side by side with Model Garden's deepmac_maskrcnn: same backbone, input
size and mask head -> same parameter count and output shapes.

Both models are built from one ``MaskRCNNParams``; Model Garden's comes from
``deepmac_tf.benchmarks.model_garden_reference`` (shared with
``scripts/benchmark.py --reference=model_garden``).
"""

import numpy as np
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
  detections = ours.postprocess(ours.predict(ours.normalize_images(images),
                                             training=False))
  assert _num_params(ours) == _num_params(theirs)
  for key in ('detection_boxes', 'detection_scores', 'detection_classes',
              'num_detections', 'detection_masks'):
    assert detections[key].shape == their_out[key].shape, key


def test_reference_names_the_mask_head_it_lacks():
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match='resnet4'):
    model_garden_reference.convnet_variant('resnet4')


@pytest.fixture(scope='module')
def reference18():
  """Model Garden's ResNet-18 model, built and run once (its inference
  traced) for the weight-sharing tests: (params, images, reference, its
  detections before any sharing)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(5)
  params = _params(18, 'mask_rcnn_fcn', 16, 14)
  images = tf.random.uniform([1, SIZE, SIZE, 3], 0, 255, seed=2)
  reference = model_garden_reference.ReferenceModel(params, (SIZE, SIZE))
  return params, images, reference, reference.infer(images)


def test_shared_detection_weights_give_the_same_detections(reference18):  # pylint: disable=redefined-outer-name
  """The benchmark's fairness premise: with our backbone / FPN / RPN /
  box-head weights, Model Garden's model keeps our detections."""
  params, images, reference, before = reference18
  ours = mask_rcnn.MaskRCNNMetaArch(False, params)
  mine = ours.postprocess(ours.predict(ours.normalize_images(images),
                                       training=False))
  reference.share_detection_weights(ours)
  after = reference.infer(images)
  n = int(mine['num_detections'][0])
  assert n > 0 and int(after['num_detections'][0]) == n
  # Same set of detections. Float round-off (eager here, a tf.function
  # there) grows with the huge activations of random weights (inference
  # batch norm does not normalize yet): ~1e-3 on softmax scores. It may
  # swap near-tied neighbours in the score order and trade detections
  # that tie at the cut-off (the 100th score), so those are not compared.
  theirs = np.concatenate([
      after['detection_boxes'][0, :n] / SIZE,
      after['detection_scores'][0, :n, None],
      tf.cast(after['detection_classes'][0, :n, None] - 1, tf.float32)], -1)
  cut_off = max(float(mine['detection_scores'][0, n - 1]),
                float(theirs[-1, 4])) + 5e-3
  compared = 0
  for box, score, cls in zip(mine['detection_boxes'][0, :n].numpy(),
                             mine['detection_scores'][0, :n].numpy(),
                             mine['detection_classes'][0, :n].numpy()):
    if score < cut_off:
      continue
    compared += 1
    mine_row = np.concatenate([box, [score, cls]])
    close = ((np.abs(theirs[:, :4] - box).max(axis=1) < 1e-3) &
             (np.abs(theirs[:, 4] - score) < 5e-3) & (theirs[:, 5] == cls))
    assert close.any(), mine_row
  assert compared >= n // 2
  assert not np.allclose(before['detection_scores'], after['detection_scores'])


def test_sharing_weights_names_a_mismatch(reference18):  # pylint: disable=redefined-outer-name
  reference = reference18[2]
  other = mask_rcnn.MaskRCNNMetaArch(False, _params(34, 'mask_rcnn_fcn', 16,
                                                    14))
  other(tf.zeros([1, SIZE, SIZE, 3]))
  with pytest.raises(ValueError, match='backbone'):
    reference.share_detection_weights(other)


def test_random_groundtruth_pads_like_the_input_pipeline():
  from deepmac_tf.benchmarks import random_inputs  # pylint: disable=g-import-not-at-top
  batch = random_inputs.groundtruth_batch(2, 32, 32, 3, NUM_CLASSES,
                                          pad_to=5)
  assert batch['groundtruth_boxes'].shape == (2, 5, 4)
  assert batch['groundtruth_instance_masks'].shape == (2, 5, 32, 32)
  np.testing.assert_array_equal(batch['groundtruth_weights'][:, 3:], 0)
  np.testing.assert_array_equal(batch['groundtruth_classes'][:, 3:], 0)
  assert (batch['groundtruth_classes'].numpy()[:, :3] > 0).all()
  np.testing.assert_array_equal(batch['num_groundtruth_boxes'], [3, 3])
  assert float(tf.reduce_sum(batch['groundtruth_instance_masks'][:, 3:])) == 0
  # Model Garden's labels: padding becomes -1, as its parser pads.
  reference = model_garden_reference.ReferenceModel(
      _params(18, 'mask_rcnn_fcn', 16, 14), (32, 32))
  labels = reference.labels(batch)
  np.testing.assert_array_equal(labels['gt_classes'][:, 3:], -1)
  np.testing.assert_array_equal(labels['gt_boxes'][:, 3:], -1)


def test_interleaved_timing_runs_each_call_in_turn():
  from deepmac_tf.benchmarks import timing  # pylint: disable=g-import-not-at-top
  order = []
  figures = timing.time_interleaved(
      {'a': lambda: order.append('a') or tf.constant(1),
       'b': lambda: order.append('b') or tf.constant(2)}, 1, 2)
  assert order == ['a', 'b'] * 3
  assert set(figures) == {'a', 'b'}
  assert figures['a']['steps'] == 2 and figures['a']['median_ms'] >= 0
