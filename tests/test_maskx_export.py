"""MaskX R-CNN export: ``detection_masks`` are each detection's class
channel, equal to the checkpointed model's; the box-prompted signature takes
``classes`` with the boxes and says so when they are missing or wrong."""

import os

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
from deepmac_tf.errors import DataError
from deepmac_tf.inference import predictor as predictor_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'configs', 'maskx_synthetic_cpu.config')
TINY = '''
model { faster_rcnn {
  image_resizer { keep_aspect_ratio_resizer {
    min_dimension: 64 max_dimension: 64 pad_to_max_dimension: true } }
  feature_extractor { fpn { additional_layer_depth: 16 } }
  first_stage_box_predictor_depth: 16
  first_stage_max_proposals: 16 first_stage_max_proposals_eval: 16
  second_stage_batch_size: 16 box_head_num_filters: 16 box_head_fc_dims: 32
  second_stage_post_processing { batch_non_max_suppression {
    score_threshold: 0.0 max_detections_per_class: 6
    max_total_detections: 6 } }
  deepmarc_mask_head { num_init_channels: 8 crop_size: 8 mask_size: 16
    weight_transfer { hidden_dim: 16 } mlp_mask_branch { fc_dim: 16 } }
} }
'''
BOXES = np.array([[[0.1, 0.1, 0.6, 0.7], [0.2, 0.3, 1.0, 1.0]]], np.float32)
CLASSES = np.array([[2, 9]], np.int32)  # 1-based: one seen, one unseen


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp('maskx_export')
  return pipeline_fixtures.export_initial_weights(
      root, TINY, CONFIG, num_train=2, num_val=1)


@pytest.fixture(scope='module')
def loaded(exported):  # pylint: disable=redefined-outer-name
  """The export, loaded once for the tests that call its signatures."""
  return tf.saved_model.load(exported['saved_model'])


def _image():
  return np.random.default_rng(0).integers(0, 255, [1, 64, 64, 3],
                                           dtype=np.uint8)


def test_exported_masks_match_the_checkpoint(exported, loaded):  # pylint: disable=redefined-outer-name
  image = _image()
  served = loaded.signatures['serving_default'](input_tensor=tf.constant(
      image))
  prompted = loaded.signatures['image_and_boxes_tensor'](
      input_tensor=tf.constant(image), boxes=tf.constant(BOXES),
      classes=tf.constant(CLASSES))
  model, resizer = exported['model'], exported['resizer']
  resized, _, true_shape = resizer(tf.constant(image[0], tf.float32))
  predictions = model.predict(model.normalize_images(resized[None]), training=False)
  detections = model.postprocess(predictions, true_shape[None])
  count = int(detections['num_detections'][0])
  assert count > 0
  np.testing.assert_allclose(served['detection_masks'],
                             detections['detection_masks'], atol=1e-5)
  np.testing.assert_array_equal(served['detection_classes'],
                                detections['detection_classes'] + 1)
  # Each detection's mask is its class's channel.
  own = model.predict_masks_from_boxes(
      predictions, detections['detection_boxes'][:, :count],
      true_shape[None], classes=detections['detection_classes'][:, :count])
  np.testing.assert_allclose(served['detection_masks'][0, :count],
                             own['detection_masks'][0], atol=1e-5)
  expected = model.predict_masks_from_boxes(
      predictions, tf.constant(BOXES), true_shape[None],
      classes=tf.constant(CLASSES - 1))['detection_masks']
  np.testing.assert_allclose(prompted['detection_masks'], expected,
                             atol=1e-5)
  assert not np.allclose(prompted['detection_masks'][0, 0],
                         prompted['detection_masks'][0, 1])


def test_box_prompts_need_classes(exported, loaded):  # pylint: disable=redefined-outer-name
  fn = loaded.signatures['image_and_boxes_tensor']
  assert set(fn.structured_input_signature[1]) == {'input_tensor', 'boxes',
                                                   'classes'}
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'ids must be in '
                     r'1\.\.10'):
    fn(input_tensor=tf.constant(_image()), boxes=tf.constant(BOXES),
       classes=tf.constant([[0, 11]]))
  with pytest.raises(tf.errors.InvalidArgumentError, match='one per box'):
    fn(input_tensor=tf.constant(_image()), boxes=tf.constant(BOXES),
       classes=tf.constant([[1]]))
  predictor = predictor_lib.DeepMacPredictor(exported['saved_model'])
  assert predictor.can_segment_boxes
  with pytest.raises(DataError, match='class-specific masks'):
    predictor.segment(_image()[0], BOXES[0])
  found = predictor.segment(_image()[0], BOXES[0], classes=CLASSES[0])
  assert found.masks.shape == (2, 64, 64)
