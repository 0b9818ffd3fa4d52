"""Tests for deepmac_tf.data.image_resizer."""

import re

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.data import image_resizer
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import image_resizer_pb2
import record_helpers as rh

PIXEL_BOXES = ((4, 6, 20, 30), (10, 20, 30, 44))


def _resizer(text):
  config = text_format.Parse(text, image_resizer_pb2.ImageResizer())
  return image_resizer.build(config, 'model.center_net.image_resizer')


def _tensors(height=32, width=48):
  return {
      InputFields.IMAGE: tf.fill([height, width, 3], 100.0),
      InputFields.BOXES: tf.constant(
          rh.normalized_boxes(height, width, PIXEL_BOXES)),
      InputFields.INSTANCE_MASKS: tf.constant(
          rh.box_masks(height, width, PIXEL_BOXES)),
  }


def _assert_boxes_match_masks(out):
  masks = out[InputFields.INSTANCE_MASKS].numpy()
  boxes = out[InputFields.BOXES].numpy()
  height, width = masks.shape[1:]
  for mask, box in zip(masks, boxes):
    ys, xs = np.nonzero(mask)
    tight = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
    np.testing.assert_allclose(tight, box * [height, width, height, width],
                               atol=1.0)


@pytest.mark.parametrize('min_dim,max_dim,in_shape,expected', [
    (40, 100, (32, 48), (40, 60)),   # Shorter side -> min_dimension.
    (40, 50, (32, 48), (33, 50)),    # Longer side capped at max_dimension.
    (20, 64, (64, 16), (64, 16)),    # Cap wins: 80 > 64.
])
def test_keep_aspect_ratio_sizes(min_dim, max_dim, in_shape, expected):
  resizer = _resizer(f'keep_aspect_ratio_resizer {{ min_dimension: {min_dim} '
                     f'max_dimension: {max_dim} }}')
  image, _, true_shape = resizer(tf.zeros(list(in_shape) + [3]))
  assert tuple(image.shape[:2]) == expected
  np.testing.assert_array_equal(true_shape, list(expected) + [3])
  assert resizer.output_size is None


def test_keep_aspect_ratio_pads_bottom_right():
  resizer = _resizer('keep_aspect_ratio_resizer { min_dimension: 40 '
                     'max_dimension: 64 pad_to_max_dimension: true }')
  assert resizer.output_size == (64, 64)
  out = image_resizer.resize_input_tensors(_tensors(), resizer)
  image = out[InputFields.IMAGE].numpy()
  assert image.shape == (64, 64, 3)
  np.testing.assert_array_equal(out[InputFields.TRUE_IMAGE_SHAPE], [40, 60, 3])
  np.testing.assert_allclose(image[:40, :60], 100.0)
  assert np.all(image[40:] == 0) and np.all(image[:, 60:] == 0)
  masks = out[InputFields.INSTANCE_MASKS].numpy()
  assert masks.shape == (2, 64, 64)
  assert set(np.unique(masks)) == {0.0, 1.0}
  assert np.all(masks[:, 40:] == 0) and np.all(masks[:, :, 60:] == 0)
  # Boxes are renormalized to the padded image.
  _assert_boxes_match_masks(out)
  np.testing.assert_allclose(out[InputFields.BOXES][0],
                             [5 / 64, 7.5 / 64, 25 / 64, 37.5 / 64])


def test_per_channel_pad_value_and_grayscale():
  resizer = _resizer('keep_aspect_ratio_resizer { min_dimension: 32 '
                     'max_dimension: 48 pad_to_max_dimension: true '
                     'per_channel_pad_value: [1, 2, 3] '
                     'convert_to_grayscale: true }')
  rgb = tf.concat([tf.fill([32, 48, 1], 30.0), tf.fill([32, 48, 1], 60.0),
                   tf.fill([32, 48, 1], 90.0)], axis=2)
  image, _, _ = resizer(rgb)
  image = image.numpy()
  np.testing.assert_allclose(image[-1, -1], [1, 2, 3])
  np.testing.assert_allclose(image[0, 0, 0], image[0, 0, 1], rtol=1e-6)
  np.testing.assert_allclose(image[0, 0, 1], image[0, 0, 2], rtol=1e-6)


def test_fixed_shape_resizer():
  resizer = _resizer('fixed_shape_resizer { height: 24 width: 24 '
                     'resize_method: NEAREST_NEIGHBOR }')
  assert resizer.output_size == (24, 24)
  out = image_resizer.resize_input_tensors(_tensors(), resizer)
  assert out[InputFields.IMAGE].shape == (24, 24, 3)
  assert out[InputFields.INSTANCE_MASKS].shape == (2, 24, 24)
  np.testing.assert_array_equal(out[InputFields.TRUE_IMAGE_SHAPE], [24, 24, 3])
  np.testing.assert_allclose(out[InputFields.BOXES],
                             _tensors()[InputFields.BOXES])
  _assert_boxes_match_masks(out)


def test_identity_resizer():
  resizer = _resizer('identity_resizer {}')
  tensors = _tensors()
  out = image_resizer.resize_input_tensors(tensors, resizer)
  for key in (InputFields.IMAGE, InputFields.BOXES, InputFields.INSTANCE_MASKS):
    np.testing.assert_array_equal(out[key], tensors[key])
  np.testing.assert_array_equal(out[InputFields.TRUE_IMAGE_SHAPE], [32, 48, 3])


def test_works_in_graph_mode_with_unknown_shapes():
  resizer = _resizer('keep_aspect_ratio_resizer { min_dimension: 16 '
                     'max_dimension: 32 pad_to_max_dimension: true }')
  fn = tf.function(lambda t: image_resizer.resize_input_tensors(t, resizer),
                   input_signature=[{
                       InputFields.IMAGE: tf.TensorSpec([None, None, 3]),
                       InputFields.BOXES: tf.TensorSpec([None, 4]),
                       InputFields.INSTANCE_MASKS: tf.TensorSpec(
                           [None, None, None]),
                   }])
  out = fn(_tensors())
  assert out[InputFields.IMAGE].shape == (32, 32, 3)


@pytest.mark.parametrize('text,message', [
    ('', 'model.center_net.image_resizer: no resizer set'),
    ('keep_aspect_ratio_resizer { min_dimension: 100 max_dimension: 50 }',
     'keep_aspect_ratio_resizer: min_dimension (100) must not exceed'),
    ('keep_aspect_ratio_resizer { per_channel_pad_value: [1] }',
     'per_channel_pad_value'),
    ('fixed_shape_resizer { height: 0 }', 'fixed_shape_resizer: height'),
])
def test_config_errors(text, message):
  with pytest.raises(ConfigError, match=re.escape(message)):
    _resizer(text)
