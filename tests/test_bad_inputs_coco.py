"""Bad-input corpus, part 3: COCO json and image folders given to
``create_coco_tf_record.py`` / ``coco_conversion`` (one DataError naming the
file and what is wrong; nothing written when nothing could be)."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from deepmac_tf.data import coco_conversion as cc
from deepmac_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'create_coco_tf_record.py')


def _coco(tmp_path, images=None, annotations=None, categories=None):
  data = {
      'images': images if images is not None else [
          {'id': 1, 'file_name': 'a.png', 'height': 8, 'width': 10}],
      'annotations': annotations if annotations is not None else [
          {'id': 5, 'image_id': 1, 'category_id': 1, 'bbox': [1, 1, 4, 4],
           'area': 16, 'iscrowd': 0,
           'segmentation': [[1, 1, 5, 1, 5, 5, 1, 5]]}],
      'categories': categories if categories is not None else [
          {'id': 1, 'name': 'thing'}],
  }
  path = tmp_path / 'instances.json'
  path.write_text(json.dumps(data))
  image_dir = tmp_path / 'images'
  image_dir.mkdir(exist_ok=True)
  Image.fromarray(np.zeros([8, 10, 3], np.uint8)).save(image_dir / 'a.png')
  return str(path), str(image_dir)


@pytest.mark.parametrize('content,message', [
    ('{"images": [', 'is not valid json'),
    ('[1, 2]', 'expected a COCO json object'),
    ('{"images": {}, "categories": []}', 'with an "images" list'),
    ('{"images": [], "annotations": {}}', '"annotations" must be a list'),
    ('{"images": [], "categories": 3}', '"categories" must be a list'),
    ('{"images": [{"id": 1}], "categories": []}',
     'needs "id", "file_name", "height" and'),
    ('{"images": [{"id": 1, "file_name": "a.png", "height": 0, "width": 3}],'
     ' "categories": []}', 'height and width'),
    ('{"images": [{"id": 1, "file_name": "a", "height": 2, "width": 2}, '
     '{"id": 1, "file_name": "b", "height": 2, "width": 2}], '
     '"categories": []}', 'image id 1 is used twice'),
    ('{"images": [{"id": [1], "file_name": "a", "height": 2, "width": 2}], '
     '"categories": []}', '"id" must be an integer or a string'),
    ('{"images": [{"id": 1, "file_name": 7, "height": 2, "width": 2}], '
     '"categories": []}', r'images\[0\]: "file_name" must be a non-empty '
     'string; got 7'),
])
def test_malformed_json(tmp_path, content, message):
  path = tmp_path / 'broken.json'
  path.write_text(content)
  (tmp_path / 'images').mkdir()
  with pytest.raises(DataError, match=message) as raised:
    cc.convert_coco_split(str(path), str(tmp_path / 'images'),
                          str(tmp_path / 'out.record'), show_progress=False)
  assert 'broken.json' in str(raised.value)


def test_wrong_image_folder_writes_nothing_and_fails(tmp_path):
  annotations, _ = _coco(tmp_path)
  elsewhere = tmp_path / 'other_images'
  elsewhere.mkdir()
  with pytest.raises(DataError) as raised:
    cc.convert_coco_split(annotations, str(elsewhere),
                          str(tmp_path / 'out' / 'train.record'),
                          num_shards=3, show_progress=False)
  assert str(raised.value) == (
      f'{elsewhere}: all 1 images of {annotations} are missing (e.g. '
      f'{elsewhere}/a.png); is it the right image folder? Nothing was '
      'written.')
  assert not os.path.exists(tmp_path / 'out')  # failed before any shard


def test_wrong_image_folder_fails_before_reading_every_image(tmp_path):
  """A large split in the wrong folder: one error from the first 20 images,
  not one warning per image."""
  images = [{'id': i, 'file_name': f'{i}.png', 'height': 8, 'width': 10}
            for i in range(1, 31)]
  annotations, image_dir = _coco(tmp_path, images=images, annotations=[])
  with pytest.raises(DataError) as raised:
    cc.convert_coco_split(annotations, image_dir,
                          str(tmp_path / 'out' / 'train.record'),
                          show_progress=False)
  assert str(raised.value) == (
      f'{image_dir}: the first 20 images of {annotations} are missing (e.g. '
      f'{image_dir}/1.png); is it the right image folder? Nothing was '
      'written.')


def test_unreadable_images_all_skipped_fail_naming_one(tmp_path):
  annotations, image_dir = _coco(tmp_path)
  with open(os.path.join(image_dir, 'a.png'), 'wb') as f:
    f.write(b'not a png')
  with pytest.raises(DataError) as raised:
    cc.convert_coco_split(annotations, image_dir,
                          str(tmp_path / 'out' / 'train.record'),
                          num_shards=2, show_progress=False)
  assert str(raised.value) == (
      f'{image_dir}: all 1 images of {annotations} are missing or unreadable '
      f'(e.g. {image_dir}/a.png); is it the right image folder? Nothing was '
      'written.')
  assert not os.listdir(tmp_path / 'out')


def test_image_sizes_all_differ_from_the_json(tmp_path):
  annotations, image_dir = _coco(tmp_path, images=[
      {'id': 1, 'file_name': 'a.png', 'height': 80, 'width': 100}])
  with pytest.raises(DataError, match=r'all 1 images of .* do not match the '
                     r'sizes in the json \(e\.g\. .*a.png\)'):
    cc.convert_coco_split(annotations, image_dir,
                          str(tmp_path / 'out.record'), show_progress=False)


def test_missing_image_folder(tmp_path):
  annotations, _ = _coco(tmp_path)
  with pytest.raises(DataError, match=r'Image folder .*nope \(for '
                     r'.*instances.json\) does not exist'):
    cc.convert_coco_split(annotations, str(tmp_path / 'nope'),
                          str(tmp_path / 'out.record'), show_progress=False)


def test_cli_wrong_image_folder_exits_1_with_one_line(tmp_path):
  annotations, _ = _coco(tmp_path)
  elsewhere = tmp_path / 'other_images'
  elsewhere.mkdir()
  result = subprocess.run(
      [sys.executable, SCRIPT, f'--train_annotations_file={annotations}',
       f'--train_image_dir={elsewhere}', f'--output_dir={tmp_path / "out"}'],
      capture_output=True, text=True, timeout=120, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 1
  errors = [l for l in result.stderr.splitlines() if l.startswith('ERROR:')]
  assert len(errors) == 1 and 'is it the right image folder' in errors[0]
  assert 'Traceback' not in result.stderr
