"""Tests for deepmac_tf.data.coco_conversion and create_coco_tf_record.py."""

import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from pycocotools import coco as coco_api
from pycocotools import mask as mask_utils
import pytest
import tensorflow as tf

from deepmac_tf.data import coco_conversion as cc
from deepmac_tf.data import label_map_util
from deepmac_tf.data.fields import TfExampleFields as F
from deepmac_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'create_coco_tf_record.py')
CATEGORIES = [{'id': 1, 'name': 'person', 'supercategory': 'p'},
              {'id': 3, 'name': 'dog', 'supercategory': 'a'}]


def _uncompressed_rle(mask):
  """COCO uncompressed RLE: column-major run lengths, starting with zeros."""
  flat = np.asarray(mask, np.uint8).flatten(order='F')
  counts, current, run = [], 0, 0
  for value in flat:
    if value != current:
      counts.append(run)
      current, run = value, 0
    run += 1
  counts.append(run)
  return {'counts': counts, 'size': list(mask.shape)}


def _compressed_rle(mask):
  rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {'counts': rle['counts'].decode('ascii'), 'size': rle['size']}


def _rect(height, width, y0, y1, x0, x1):
  mask = np.zeros([height, width], np.uint8)
  mask[y0:y1, x0:x1] = 1
  return mask


def _save_image(path, width, height, image_format):
  rng = np.random.default_rng(len(path))
  pixels = rng.integers(0, 255, [height, width, 3], dtype=np.uint8)
  Image.fromarray(pixels).save(path, format=image_format)


def _ann(ann_id, image_id, category_id, bbox, segmentation=None, **extra):
  ann = {'id': ann_id, 'image_id': image_id, 'category_id': category_id,
         'bbox': bbox, 'area': float(bbox[2] * bbox[3]), 'iscrowd': 0}
  if segmentation is not None:
    ann['segmentation'] = segmentation
  ann.update(extra)
  return ann


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
  """A tiny COCO split: 3 good images, 1 truncated, 1 missing file."""
  root = tmp_path_factory.mktemp('coco')
  image_dir = root / 'images'
  image_dir.mkdir()
  _save_image(str(image_dir / 'a.jpg'), 32, 24, 'JPEG')
  _save_image(str(image_dir / 'b.png'), 20, 16, 'PNG')
  _save_image(str(image_dir / 'empty.jpg'), 16, 16, 'JPEG')
  _save_image(str(image_dir / 'full.jpg'), 64, 48, 'JPEG')
  truncated = (image_dir / 'full.jpg').read_bytes()
  (image_dir / 'corrupt.jpg').write_bytes(truncated[:len(truncated) // 2])
  images = [
      {'id': 1, 'file_name': 'a.jpg', 'height': 24, 'width': 32},
      {'id': 2, 'file_name': 'b.png', 'height': 16, 'width': 20},
      {'id': 3, 'file_name': 'corrupt.jpg', 'height': 48, 'width': 64},
      {'id': 4, 'file_name': 'empty.jpg', 'height': 16, 'width': 16},
      {'id': 5, 'file_name': 'missing.jpg', 'height': 16, 'width': 16},
  ]
  crowd = _uncompressed_rle(_rect(24, 32, 14, 24, 0, 12))
  annotations = [
      _ann(101, 1, 1, [2, 2, 10, 8], [[2, 2, 12, 2, 12, 10, 2, 10]]),
      _ann(102, 1, 3, [14, 3, 14, 15], [[14, 3, 20, 3, 17, 9],
                                        [22, 12, 28, 12, 28, 18, 22, 18]]),
      _ann(103, 1, 1, [20, 5, 10, 10],
           _uncompressed_rle(_rect(24, 32, 5, 15, 20, 30))),
      _ann(104, 1, 3, [1, 16, 30, 6],
           _compressed_rle(_rect(24, 32, 16, 22, 1, 31))),
      _ann(105, 1, 1, [0, 14, 12, 10], crowd, iscrowd=1),
      # Overshoots the image by 0.5 px: clipped, kept.
      _ann(106, 1, 3, [0, 0, 32.5, 24], [[0, 0, 32, 0, 32, 24, 0, 24]]),
      _ann(107, 1, 1, [5, 5, 0, 4], [[5, 5, 5, 9, 5, 5]]),  # Zero width.
      _ann(108, 1, 1, [25, 5, 20, 5], [[25, 5, 31, 5, 31, 10]]),  # Outside.
      _ann(109, 1, 99, [1, 1, 4, 4], [[1, 1, 5, 1, 5, 5]]),  # Unknown class.
      _ann(201, 2, 3, [3, 4, 10, 8], [[3, 4, 13, 4, 13, 12, 3, 12]]),
      _ann(301, 3, 1, [1, 1, 4, 4], [[1, 1, 5, 1, 5, 5]]),  # Corrupt image.
      _ann(901, 99, 1, [1, 1, 4, 4], [[1, 1, 5, 1, 5, 5]]),  # Unknown image.
  ]
  annotations_file = root / 'instances.json'
  annotations_file.write_text(json.dumps(
      {'images': images, 'annotations': annotations,
       'categories': CATEGORIES}))
  testdev_file = root / 'image_info_test-dev.json'
  testdev_file.write_text(json.dumps(
      {'images': images[:2], 'categories': CATEGORIES}))
  return {'root': root, 'image_dir': str(image_dir),
          'annotations_file': str(annotations_file),
          'testdev_file': str(testdev_file), 'annotations': annotations}


def _read_examples(paths):
  examples = {}
  for path in paths:
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy())
      source_id = _values(example, F.SOURCE_ID)[0].decode()
      examples[source_id] = example
  return examples


def _values(example, key):
  feature = example.features.feature[key]
  kind = feature.WhichOneof('kind')
  return list(getattr(feature, kind).value) if kind else []


@pytest.fixture(scope='module')
def converted(coco, tmp_path_factory):
  prefix = str(tmp_path_factory.mktemp('out') / 'coco_train.record')
  stats = cc.convert_coco_split(coco['annotations_file'], coco['image_dir'],
                                prefix, num_shards=2, include_masks=True,
                                show_progress=False)
  return prefix, stats


def test_stats_count_written_and_skipped(converted):
  _, stats = converted
  assert stats.images_written == 3
  assert stats.images_skipped_corrupt == ['corrupt.jpg', 'missing.jpg']
  assert stats.images_skipped_size_mismatch == []
  assert stats.annotations_written == 7
  assert stats.annotations_skipped == {
      cc.SKIP_UNKNOWN_IMAGE_ID: 1, cc.SKIP_DEGENERATE_BOX: 1,
      cc.SKIP_BOX_OUTSIDE_IMAGE: 1, cc.SKIP_UNKNOWN_CATEGORY_ID: 1,
      cc.SKIP_IMAGE_NOT_WRITTEN: 1}
  assert stats.skipped_annotation_examples[cc.SKIP_DEGENERATE_BOX] == [107]
  assert stats.num_annotations_skipped == 5
  assert stats.categories == [{'id': 1, 'name': 'person'},
                              {'id': 3, 'name': 'dog'}]
  assert 'corrupt.jpg, missing.jpg' in stats.summary()


def test_shard_files_and_round_robin(converted):
  prefix, stats = converted
  expected = [prefix + '-00000-of-00002', prefix + '-00001-of-00002']
  assert stats.output_files == expected
  assert sorted(tf.io.gfile.glob(prefix + '-?????-of-00002')) == expected
  counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in expected]
  assert counts == [2, 1]


def test_image_keys(coco, converted):
  examples = _read_examples(converted[1].output_files)
  assert sorted(examples) == ['1', '2', '4']
  for source_id, name, fmt, height, width in [('1', 'a.jpg', b'jpeg', 24, 32),
                                              ('2', 'b.png', b'png', 16, 20),
                                              ('4', 'empty.jpg', b'jpeg', 16,
                                               16)]:
    example = examples[source_id]
    with open(os.path.join(coco['image_dir'], name), 'rb') as f:
      encoded = f.read()
    assert _values(example, F.IMAGE_ENCODED) == [encoded]
    assert _values(example, F.IMAGE_FORMAT) == [fmt]
    assert _values(example, F.FILENAME) == [name.encode()]
    assert _values(example, F.HEIGHT) == [height]
    assert _values(example, F.WIDTH) == [width]
    assert _values(example, F.KEY_SHA256) == [
        hashlib.sha256(encoded).hexdigest().encode()]
  empty = examples['4']
  assert _values(empty, F.CLASS_LABEL) == []
  assert F.MASK in empty.features.feature and not _values(empty, F.MASK)


def test_instance_keys(converted):
  example = _read_examples(converted[1].output_files)['1']
  assert _values(example, F.CLASS_LABEL) == [1, 3, 1, 3, 1, 3]
  assert _values(example, F.CLASS_TEXT) == [
      b'person', b'dog', b'person', b'dog', b'person', b'dog']
  assert _values(example, F.IS_CROWD) == [0, 0, 0, 0, 1, 0]
  np.testing.assert_allclose(_values(example, F.AREA),
                             [80, 210, 100, 180, 120, 780])
  boxes_xywh = np.array([[2, 2, 10, 8], [14, 3, 14, 15], [20, 5, 10, 10],
                         [1, 16, 30, 6], [0, 14, 12, 10], [0, 0, 32, 24]],
                        np.float64)  # The last one clipped to the image.
  np.testing.assert_allclose(_values(example, F.BBOX_XMIN),
                             boxes_xywh[:, 0] / 32, rtol=1e-6)
  np.testing.assert_allclose(_values(example, F.BBOX_YMIN),
                             boxes_xywh[:, 1] / 24, rtol=1e-6)
  np.testing.assert_allclose(_values(example, F.BBOX_XMAX),
                             (boxes_xywh[:, 0] + boxes_xywh[:, 2]) / 32,
                             rtol=1e-6)
  np.testing.assert_allclose(_values(example, F.BBOX_YMAX),
                             (boxes_xywh[:, 1] + boxes_xywh[:, 3]) / 24,
                             rtol=1e-6)


def test_png_masks_equal_pycocotools_ann_to_mask(coco, converted):
  api = coco_api.COCO(coco['annotations_file'])
  examples = _read_examples(converted[1].output_files)
  expected_ids = {'1': [101, 102, 103, 104, 105, 106], '2': [201]}
  for source_id, ann_ids in expected_ids.items():
    pngs = _values(examples[source_id], F.MASK)
    assert len(pngs) == len(ann_ids)
    for png, ann_id in zip(pngs, ann_ids):
      decoded = tf.io.decode_png(png, channels=1).numpy()[..., 0]
      expected = api.annToMask(api.anns[ann_id])
      assert expected.sum() > 0
      np.testing.assert_array_equal(decoded, expected, err_msg=str(ann_id))


def test_without_masks_writes_no_mask_key(coco, tmp_path):
  stats = cc.convert_coco_split(coco['annotations_file'], coco['image_dir'],
                                str(tmp_path / 'nomask.record'),
                                show_progress=False)
  assert stats.output_files == [str(tmp_path / 'nomask.record-00000-of-00001')]
  assert stats.annotations_written == 7
  for example in _read_examples(stats.output_files).values():
    assert F.MASK not in example.features.feature


def test_testdev_json_without_annotations(coco, tmp_path):
  stats = cc.convert_coco_split(coco['testdev_file'], coco['image_dir'],
                                str(tmp_path / 'testdev.record'),
                                include_masks=True, show_progress=False)
  assert stats.images_written == 2 and stats.annotations_written == 0
  examples = _read_examples(stats.output_files)
  assert all(not _values(e, F.CLASS_LABEL) for e in examples.values())


def _write_json(path, images, annotations, categories=None):
  path.write_text(json.dumps({'images': images, 'annotations': annotations,
                              'categories': categories or CATEGORIES}))
  return str(path)


def test_segmentation_problems_and_size_mismatch(coco, tmp_path):
  images = [{'id': 1, 'file_name': 'a.jpg', 'height': 24, 'width': 32},
            {'id': 2, 'file_name': 'b.png', 'height': 20, 'width': 20}]
  annotations = [
      _ann(1, 1, 1, [2, 2, 10, 8]),  # No segmentation.
      _ann(2, 1, 1, [2, 2, 10, 8], [[2, 2]]),  # Too few coordinates.
      _ann(3, 1, 1, [2, 2, 10, 8], _compressed_rle(np.ones([8, 8]))),
      _ann(4, 2, 1, [2, 2, 10, 8], [[2, 2, 12, 2, 12, 10]]),
  ]
  categories = CATEGORIES + [{'id': 0, 'name': 'placeholder'}]
  path = _write_json(tmp_path / 'a.json', images, annotations, categories)
  stats = cc.convert_coco_split(path, coco['image_dir'],
                                str(tmp_path / 'out.record'),
                                include_masks=True, show_progress=False)
  assert stats.images_written == 1
  assert stats.images_skipped_size_mismatch == ['b.png']
  assert stats.annotations_skipped == {
      cc.SKIP_MISSING_SEGMENTATION: 1, cc.SKIP_INVALID_SEGMENTATION: 2,
      cc.SKIP_IMAGE_NOT_WRITTEN: 1}
  assert [c['id'] for c in stats.categories] == [1, 3]  # Unused id 0 dropped.


@pytest.mark.parametrize('content,message', [
    ('{not json', 'is not valid json'),
    ('{"annotations": []}', '"images" list'),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}]}', r'images\[0\] needs'),
    ('{"images": [{"id": 1, "file_name": "a.jpg", "height": 0, "width": 3}]}',
     'positive integers'),
    ('{"images": [], "categories": [{"id": 1, "name": "a"}, '
     '{"id": 1, "name": "b"}]}', 'category id 1 is used twice'),
    ('{"images": [], "categories": [{"id": 0, "name": "bg"}], "annotations":'
     ' [{"id": 1, "image_id": 1, "category_id": 0}]}', 'renumber'),
])
def test_bad_json_raises_data_error(content, message, coco, tmp_path):
  path = tmp_path / 'bad.json'
  path.write_text(content)
  with pytest.raises(DataError, match=message) as info:
    cc.convert_coco_split(str(path), coco['image_dir'],
                          str(tmp_path / 'x.record'), show_progress=False)
  assert 'bad.json' in str(info.value)


def test_missing_files_raise_data_error(coco, tmp_path):
  with pytest.raises(DataError, match='Cannot read COCO annotations file'):
    cc.convert_coco_split(str(tmp_path / 'nope.json'), coco['image_dir'],
                          str(tmp_path / 'x.record'))
  with pytest.raises(DataError, match=r'Image folder .*nope \(for '
                     r'.*instances.json\) does not exist'):
    cc.convert_coco_split(coco['annotations_file'], str(tmp_path / 'nope'),
                          str(tmp_path / 'x.record'))


def _run_cli(*args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        check=False)


def test_cli_help():
  result = _run_cli('--help')
  assert result.returncode == 0, result.stderr
  assert '--train_annotations_file' in result.stdout
  assert '--include_masks' in result.stdout


def test_cli_rejects_annotations_without_image_dir(coco, tmp_path):
  result = _run_cli(f'--val_annotations_file={coco["annotations_file"]}',
                    f'--output_dir={tmp_path}')
  assert result.returncode != 0
  assert '--val_image_dir' in result.stderr
  assert 'Traceback' not in result.stderr


def test_cli_end_to_end(coco, tmp_path):
  out = tmp_path / 'out'
  result = _run_cli(f'--train_image_dir={coco["image_dir"]}',
                    f'--train_annotations_file={coco["annotations_file"]}',
                    f'--test_image_dir={coco["image_dir"]}',
                    f'--testdev_annotations_file={coco["testdev_file"]}',
                    f'--output_dir={out}', '--include_masks',
                    '--num_shards=3', '--noshow_progress')
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(out)) == [
      'coco_testdev.record-00000-of-00003',
      'coco_testdev.record-00001-of-00003',
      'coco_testdev.record-00002-of-00003',
      'coco_train.record-00000-of-00003', 'coco_train.record-00001-of-00003',
      'coco_train.record-00002-of-00003', 'label_map.pbtxt']
  assert 'corrupt.jpg' in result.stdout
  assert label_map_util.get_label_map_dict(str(out / 'label_map.pbtxt')) == {
      'person': 1, 'dog': 3}
  examples = _read_examples(sorted(tf.io.gfile.glob(
      str(out / 'coco_train.record-?????-of-00003'))))
  assert sorted(examples) == ['1', '2', '4']
  assert len(_values(examples['1'], F.MASK)) == 6
