"""Tests for deepmac_tf.data.decoder."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.data.decoder import TfExampleDecoder
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.protos import input_reader_pb2
import record_helpers as rh

PNG = input_reader_pb2.PNG_MASKS
NUMERICAL = input_reader_pb2.NUMERICAL_MASKS
SOURCE = 'record 0 of file x.tfrecord'
PIXEL_BOXES = ((4, 6, 20, 30), (10, 20, 30, 44))


def _decode(serialized, **kwargs):
  return TfExampleDecoder(**kwargs).decode(tf.constant(serialized))


def _error(serialized, **kwargs):
  with pytest.raises(DataError) as info:
    TfExampleDecoder(**kwargs).check_record(serialized, SOURCE)
  message = str(info.value)
  assert message.startswith(SOURCE), message
  return message


@pytest.mark.parametrize('mask_type,stored', [(PNG, 'png'),
                                              (NUMERICAL, 'numerical'),
                                              (input_reader_pb2.DEFAULT,
                                               'numerical')])
def test_both_mask_types_decode(mask_type, stored):
  serialized = rh.simple_example(mask_type=stored)
  out = _decode(serialized, load_instance_masks=True, mask_type=mask_type)
  expected = rh.box_masks(32, 48, PIXEL_BOXES)
  np.testing.assert_array_equal(out[InputFields.INSTANCE_MASKS].numpy(),
                                expected)
  assert out[InputFields.INSTANCE_MASKS].dtype == tf.float32
  assert out[InputFields.IMAGE].dtype == tf.uint8
  assert out[InputFields.IMAGE].shape == (32, 48, 3)
  np.testing.assert_array_equal(out[InputFields.ORIGINAL_IMAGE_SHAPE], [32, 48])
  np.testing.assert_allclose(out[InputFields.BOXES],
                             rh.normalized_boxes(32, 48, PIXEL_BOXES))
  np.testing.assert_array_equal(out[InputFields.CLASSES], [1, 2])
  assert out[InputFields.CLASSES].dtype == tf.int32
  # Defaults: weight 1, not crowd, area = box area in pixels, mask weight 1.
  np.testing.assert_array_equal(out[InputFields.WEIGHTS], [1, 1])
  np.testing.assert_array_equal(out[InputFields.IS_CROWD], [False, False])
  np.testing.assert_allclose(out[InputFields.AREA], [16 * 24, 20 * 24])
  np.testing.assert_array_equal(out[InputFields.MASK_WEIGHTS], [1, 1])
  assert out[InputFields.SOURCE_ID].numpy() == b'img'
  assert out[InputFields.KEY].numpy() == b'key-img'
  assert out[InputFields.FILENAME].numpy() == b'img.png'


def test_png_masks_are_binarized():
  masks = rh.box_masks(32, 48, PIXEL_BOXES) * 255  # 0/255 PNGs.
  out = _decode(rh.simple_example(masks=masks), load_instance_masks=True,
                mask_type=PNG)
  assert set(np.unique(out[InputFields.INSTANCE_MASKS])) == {0.0, 1.0}


def test_jpeg_and_grayscale_images_become_rgb():
  gray = np.full([16, 20], 77, np.uint8)
  out = _decode(rh.make_example(gray, [[0, 0, 1, 1]], classes=[1]))
  assert out[InputFields.IMAGE].shape == (16, 20, 3)
  np.testing.assert_array_equal(out[InputFields.IMAGE][..., 1], gray)
  rgb = np.full([16, 20, 3], 120, np.uint8)
  out = _decode(rh.make_example(rgb, [[0, 0, 1, 1]], classes=[1],
                                image_format='jpeg'))
  assert out[InputFields.IMAGE].shape == (16, 20, 3)
  assert abs(float(tf.reduce_mean(tf.cast(out[InputFields.IMAGE],
                                          tf.float32))) - 120) < 3


def test_without_masks_mask_weights_are_zero():
  out = _decode(rh.simple_example())
  assert InputFields.INSTANCE_MASKS not in out
  np.testing.assert_array_equal(out[InputFields.MASK_WEIGHTS], [0, 0])


def test_optional_per_instance_fields():
  serialized = rh.simple_example(weights=[0.5, 1], is_crowd=[0, 1],
                                 area=[10, 20], mask_weights=[1, 0])
  out = _decode(serialized, load_instance_masks=True, mask_type=PNG)
  np.testing.assert_array_equal(out[InputFields.WEIGHTS], [0.5, 1])
  np.testing.assert_array_equal(out[InputFields.IS_CROWD], [False, True])
  np.testing.assert_array_equal(out[InputFields.AREA], [10, 20])
  np.testing.assert_array_equal(out[InputFields.MASK_WEIGHTS], [1, 0])


def test_image_without_instances():
  image = np.zeros([8, 10, 3], np.uint8)
  for mask_type, stored in ((PNG, 'png'), (NUMERICAL, 'numerical')):
    serialized = rh.make_example(image, np.zeros([0, 4]), classes=[],
                                 masks=np.zeros([0, 8, 10]), mask_type=stored)
    out = _decode(serialized, load_instance_masks=True, mask_type=mask_type)
    assert out[InputFields.INSTANCE_MASKS].shape == (0, 8, 10)
    assert out[InputFields.BOXES].shape == (0, 4)


def test_class_text_mapped_through_label_map(tmp_path):
  label_map = rh.write_label_map(tmp_path / 'labels.pbtxt', ['cat', 'dog'])
  serialized = rh.simple_example(classes=None, class_text=['dog', 'cow'])
  out = _decode(serialized, load_instance_masks=True, mask_type=PNG,
                label_map_path=label_map)
  # 'cow' is not in the label map: dropped with its box and mask.
  np.testing.assert_array_equal(out[InputFields.CLASSES], [2])
  np.testing.assert_allclose(out[InputFields.BOXES],
                             rh.normalized_boxes(32, 48, PIXEL_BOXES[:1]))
  np.testing.assert_array_equal(out[InputFields.INSTANCE_MASKS],
                                rh.box_masks(32, 48, PIXEL_BOXES[:1]))
  by_display = _decode(rh.simple_example(classes=None,
                                         class_text=['CAT', 'DOG']),
                       label_map_path=label_map, use_display_name=True)
  np.testing.assert_array_equal(by_display[InputFields.CLASSES], [1, 2])
  # Labels win when both are stored.
  both = _decode(rh.simple_example(classes=(2, 2), class_text=['cat', 'cat']),
                 label_map_path=label_map)
  np.testing.assert_array_equal(both[InputFields.CLASSES], [2, 2])


def test_masks_missing_while_load_instance_masks():
  for mask_type in (PNG, NUMERICAL):
    message = _error(rh.simple_example(masks=None), load_instance_masks=True,
                     mask_type=mask_type)
    assert 'no image/object/mask but load_instance_masks is set' in message


def test_mask_type_mismatch_names_the_right_type():
  message = _error(rh.simple_example(mask_type='numerical'),
                   load_instance_masks=True, mask_type=PNG)
  assert 'image/object/mask' in message
  assert 'mask_type: NUMERICAL_MASKS' in message
  message = _error(rh.simple_example(mask_type='png'),
                   load_instance_masks=True, mask_type=NUMERICAL)
  assert 'mask_type: PNG_MASKS' in message


def test_mask_count_and_size_mismatches():
  message = _error(rh.simple_example(masks=np.zeros([1, 32, 48])),
                   load_instance_masks=True, mask_type=PNG)
  assert '1 PNG masks' in message and '2 boxes' in message
  message = _error(rh.simple_example(masks=np.zeros([2, 16, 48])),
                   load_instance_masks=True, mask_type=PNG)
  assert '16x48' in message and '32x48' in message
  message = _error(rh.simple_example(masks=np.zeros([3, 32, 48]),
                                     mask_type='numerical'),
                   load_instance_masks=True, mask_type=NUMERICAL)
  assert '4608 values' in message and '3072' in message


def test_bad_labels_and_boxes():
  assert 'class ids start at 1' in _error(rh.simple_example(classes=(0, 1)))
  pixels = rh.make_example(np.zeros([8, 8, 3]), [[0, 0, 5, 5]], classes=[1])
  assert 'normalized' in _error(pixels)
  message = _error(rh.simple_example(classes=None, class_text=['a', 'b']))
  assert 'label_map_path' in message
  assert 'image/object/weight' in _error(rh.simple_example(weights=[1.0]))


def test_not_an_example():
  with pytest.raises(DataError, match='not a serialized tf.train.Example'):
    TfExampleDecoder().check_record(b'\xff\x00garbage', SOURCE)


def test_in_graph_error_names_the_record():
  decoder = TfExampleDecoder(load_instance_masks=True, mask_type=PNG)
  dataset = tf.data.Dataset.from_tensor_slices(
      [rh.simple_example(masks=None)]).map(
          lambda s: decoder.decode(s, tf.constant('record 7 of file y.rec')))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='record 7 of file y.rec: has no image/object/mask'):
    next(iter(dataset))


def test_unknown_mask_type():
  with pytest.raises(ConfigError, match='mask_type'):
    TfExampleDecoder(load_instance_masks=True, mask_type=7)
