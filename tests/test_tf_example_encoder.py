"""Tests for deepmac_tf.data.tf_example_encoder."""

import hashlib
import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from deepmac_tf.data import tf_example_encoder as enc
from deepmac_tf.data.fields import TfExampleFields as F
from deepmac_tf.errors import DataError

HEIGHT, WIDTH = 6, 8


def _jpeg_bytes():
  buffer = io.BytesIO()
  Image.new('RGB', (WIDTH, HEIGHT), (10, 200, 30)).save(buffer, format='JPEG')
  return buffer.getvalue()


def _masks():
  masks = np.zeros([2, HEIGHT, WIDTH], np.uint8)
  masks[0, 1:4, 2:6] = 1
  masks[1, 3:6, 0:3] = 1
  return masks


def _example(**kwargs):
  args = dict(
      encoded_image=_jpeg_bytes(), height=HEIGHT, width=WIDTH,
      boxes=[[0.1, 0.2, 0.5, 0.75], [0.5, 0.0, 1.0, 0.375]],
      class_ids=[3, 1], class_texts=['dog', 'person'], filename='x.jpg',
      source_id='42', is_crowd=[0, 1], area=[12.0, 9.0])
  args.update(kwargs)
  return tf.train.Example.FromString(
      enc.create_tf_example(**args).SerializeToString())


def _values(example, key):
  feature = example.features.feature[key]
  kind = feature.WhichOneof('kind')
  return list(getattr(feature, kind).value) if kind else []


def test_all_keys_and_values():
  example = _example()
  encoded = _jpeg_bytes()
  assert _values(example, F.IMAGE_ENCODED) == [encoded]
  assert _values(example, F.IMAGE_FORMAT) == [b'jpeg']
  assert _values(example, F.HEIGHT) == [HEIGHT]
  assert _values(example, F.WIDTH) == [WIDTH]
  assert _values(example, F.FILENAME) == [b'x.jpg']
  assert _values(example, F.SOURCE_ID) == [b'42']
  assert _values(example, F.KEY_SHA256) == [
      hashlib.sha256(encoded).hexdigest().encode()]
  np.testing.assert_allclose(_values(example, F.BBOX_YMIN), [0.1, 0.5])
  np.testing.assert_allclose(_values(example, F.BBOX_XMIN), [0.2, 0.0])
  np.testing.assert_allclose(_values(example, F.BBOX_YMAX), [0.5, 1.0])
  np.testing.assert_allclose(_values(example, F.BBOX_XMAX), [0.75, 0.375])
  assert _values(example, F.CLASS_LABEL) == [3, 1]
  assert _values(example, F.CLASS_TEXT) == [b'dog', b'person']
  assert _values(example, F.IS_CROWD) == [0, 1]
  np.testing.assert_allclose(_values(example, F.AREA), [12.0, 9.0])
  assert F.MASK not in example.features.feature


def test_defaults_for_crowd_and_area():
  example = _example(is_crowd=None, area=None)
  assert _values(example, F.IS_CROWD) == [0, 0]
  # Box areas in pixels: 0.4*6 x 0.55*8 and 0.5*6 x 0.375*8.
  np.testing.assert_allclose(_values(example, F.AREA), [10.56, 9.0],
                             rtol=1e-5)


def test_png_masks_decode_to_input():
  masks = _masks()
  example = _example(masks=masks, mask_type=enc.PNG_MASKS)
  pngs = _values(example, F.MASK)
  assert len(pngs) == 2
  for png, mask in zip(pngs, masks):
    decoded = tf.io.decode_png(png).numpy()
    assert decoded.shape == (HEIGHT, WIDTH, 1)
    np.testing.assert_array_equal(decoded[..., 0], mask)


def test_numerical_masks_are_flat_floats():
  masks = _masks()
  example = _example(masks=masks, mask_type='numerical_masks')
  values = np.asarray(_values(example, F.MASK), np.float32)
  np.testing.assert_array_equal(values.reshape(2, HEIGHT, WIDTH), masks)


def test_zero_instances_with_masks_writes_empty_mask_key():
  example = _example(boxes=np.zeros([0, 4]), class_ids=[], class_texts=[],
                     is_crowd=[], area=[], masks=np.zeros([0, HEIGHT, WIDTH]))
  assert F.MASK in example.features.feature
  assert _values(example, F.MASK) == []
  assert _values(example, F.CLASS_LABEL) == []
  assert _values(example, F.BBOX_XMIN) == []


@pytest.mark.parametrize('value,expected', [
    ('PNG_MASKS', enc.PNG_MASKS), ('png_masks', enc.PNG_MASKS),
    (2, enc.PNG_MASKS), (1, enc.NUMERICAL_MASKS), (0, enc.NUMERICAL_MASKS),
    ('NUMERICAL_MASKS', enc.NUMERICAL_MASKS)])
def test_normalize_mask_type(value, expected):
  assert enc.normalize_mask_type(value) == expected


def test_normalize_mask_type_rejects_unknown():
  with pytest.raises(DataError, match='mask_type'):
    enc.normalize_mask_type('RLE')


def test_encode_png_mask_accepts_bool_and_rejects_bad_masks():
  mask = np.zeros([3, 4], bool)
  mask[1, 2] = True
  decoded = np.asarray(Image.open(io.BytesIO(enc.encode_png_mask(mask))))
  assert decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded, mask.astype(np.uint8))
  with pytest.raises(DataError, match='2-D'):
    enc.encode_png_mask(np.zeros([1, 3, 4]))
  with pytest.raises(DataError, match='only 0 and 1'):
    enc.encode_png_mask(np.full([3, 4], 255, np.uint8))


@pytest.mark.parametrize('kwargs,message', [
    (dict(class_ids=[1]), 'class_ids has 1 values but there are 2 boxes'),
    (dict(class_texts=['a']), 'class_texts has 1'),
    (dict(is_crowd=[0, 0, 0]), 'is_crowd has 3'),
    (dict(class_ids=[0, 1]), 'class ids must be >= 1'),
    (dict(boxes=[[0, 0, 6, 8], [0, 0, 1, 1]]), 'normalized to \\[0, 1\\]'),
    (dict(boxes=[[0.5, 0, 0.1, 1], [0, 0, 1, 1]]), 'ymin <= ymax'),
    (dict(boxes=[0.1, 0.2, 0.3]), 'shape \\[num_instances, 4\\]'),
    (dict(masks=np.zeros([2, WIDTH, HEIGHT])), 'masks must have shape'),
    (dict(height=0), 'must be positive'),
])
def test_bad_inputs_raise_data_error_naming_the_example(kwargs, message):
  with pytest.raises(DataError, match=message) as info:
    _example(**kwargs)
  assert 'Example 42' in str(info.value)


def test_sharded_writer_names_and_round_robin(tmp_path):
  prefix = str(tmp_path / 'sub' / 'data.record')
  assert enc.sharded_record_paths(prefix, 3) == [
      prefix + '-00000-of-00003', prefix + '-00001-of-00003',
      prefix + '-00002-of-00003']
  pattern = enc.sharded_record_pattern(prefix, 3)
  assert pattern == prefix + '-?????-of-00003'
  with enc.ShardedTFRecordWriter(prefix, 3) as writer:
    for i in range(4):
      writer.write(_example(source_id=str(i)))
    assert writer.num_written == 4
  assert sorted(tf.io.gfile.glob(pattern)) == writer.paths
  ids = []
  for path in writer.paths:
    ids.append([_values(tf.train.Example.FromString(r.numpy()), F.SOURCE_ID)[0]
                for r in tf.data.TFRecordDataset(path)])
  assert ids == [[b'0', b'3'], [b'1'], [b'2']]


def test_sharded_writer_creates_empty_shards_and_needs_with(tmp_path):
  prefix = str(tmp_path / 'empty.record')
  writer = enc.ShardedTFRecordWriter(prefix, 2)
  with pytest.raises(RuntimeError, match='with'):
    writer.write(b'')
  with writer:
    pass
  assert sorted(tf.io.gfile.glob(prefix + '-*')) == writer.paths


@pytest.mark.parametrize('num_shards', [0, -1, 1.5, True])
def test_bad_num_shards(num_shards, tmp_path):
  with pytest.raises(DataError, match='num_shards'):
    enc.ShardedTFRecordWriter(str(tmp_path / 'x'), num_shards)
