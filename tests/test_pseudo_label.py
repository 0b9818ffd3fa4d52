"""scripts/pseudo_label.py and deepmac_tf/inference/pseudo_labels.py: masks
of a tiny export for the unseen classes' boxes, COCO json that pycocotools
loads and create_coco_tf_record.py converts, resume, bad images and boxes."""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from pycocotools import coco as coco_lib
from pycocotools import mask as mask_util
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pipeline_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
import test_export as export_helpers  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import inference  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.data import coco_conversion  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.errors import DataError  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.inference import pseudo_labels  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = export_helpers.REPO
SEEN = (1, 2, 3, 4, 5)  # tiny_deepmac.config's allowed_masked_classes_ids.


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('pseudo_label')
  exports = export_helpers.shared_exports(tmp_path_factory)['exports']
  data_dir = pipeline_fixtures.tiny_dataset(root)
  return {'root': root,
          'export': os.path.join(exports['image_tensor'], 'saved_model'),
          'json': os.path.join(data_dir, 'annotations', 'instances_train.json'),
          'images': os.path.join(data_dir, 'images', 'train')}


@pytest.fixture(scope='module')
def labelled(setup):
  out = str(setup['root'] / 'pseudo.json')
  stats = pseudo_labels.pseudo_label(setup['export'], setup['json'],
                                     setup['images'], out, show_progress=False)
  return out, stats


def _expected_masks(predictor, setup, data, image_entry):
  """The rules written out independently with numpy, per unseen annotation
  of one image: model probability >= 0.5, inside the box (pixel centres),
  not on another seen instance's groundtruth mask."""
  image = inference.load_image(os.path.join(setup['images'],
                                            image_entry['file_name']))
  height, width = image.shape[:2]
  annotations = [a for a in data['annotations']
                 if a['image_id'] == image_entry['id']]
  seen_union = np.zeros([height, width], bool)
  for a in annotations:
    if a['category_id'] in SEEN:
      seen_union |= mask_util.decode(a['segmentation']) > 0
  unseen = [a for a in annotations if a['category_id'] not in SEEN]
  if not unseen:
    return {}
  boxes = np.array([[a['bbox'][1] / height, a['bbox'][0] / width,
                     (a['bbox'][1] + a['bbox'][3]) / height,
                     (a['bbox'][0] + a['bbox'][2]) / width] for a in unseen],
                   np.float32)
  probabilities = predictor.segment(image, boxes).mask_probabilities
  ys = (np.arange(height) + 0.5) / height
  xs = (np.arange(width) + 0.5) / width
  expected = {}
  for a, box, p in zip(unseen, boxes, probabilities):
    inside = (((ys >= box[0]) & (ys <= box[2]))[:, None] &
              ((xs >= box[1]) & (xs <= box[3]))[None, :])
    expected[a['id']] = (p >= 0.5) & inside & ~seen_union
  return expected


def test_unseen_masks_are_the_model_s_through_the_rules(setup, labelled):
  out, stats = labelled
  with open(setup['json'], encoding='utf-8') as f:
    source = json.load(f)
  with open(out, encoding='utf-8') as f:
    written = json.load(f)
  assert stats.classes == [6, 7, 8, 9, 10]
  assert stats.seen_class_ids == list(SEEN)
  unseen_count = sum(a['category_id'] not in SEEN
                     for a in source['annotations'])
  assert unseen_count > 0 and stats.annotations_labelled == unseen_count
  assert not stats.images_skipped and not stats.annotations_skipped
  # Everything but the unseen annotations' segmentation is unchanged.
  assert {k: v for k, v in written.items() if k != 'annotations'} == {
      k: v for k, v in source.items() if k != 'annotations'}
  by_id = {a['id']: a for a in written['annotations']}
  changed = 0
  for a in source['annotations']:
    new = by_id[a['id']]
    assert {k: v for k, v in new.items() if k != 'segmentation'} == {
        k: v for k, v in a.items() if k != 'segmentation'}
    if a['category_id'] in SEEN:
      assert new['segmentation'] == a['segmentation']
    else:
      assert isinstance(new['segmentation']['counts'], str)  # compressed
      changed += new['segmentation'] != a['segmentation']
  assert changed > 0
  predictor = inference.DeepMacPredictor(setup['export'])
  for image_entry in written['images'][:3]:
    for annotation_id, mask in _expected_masks(predictor, setup, source,
                                               image_entry).items():
      got = mask_util.decode(by_id[annotation_id]['segmentation']) > 0
      np.testing.assert_array_equal(got, mask)


def test_output_loads_in_pycocotools_and_round_trips_through_tfrecords(
    setup, labelled):
  out, _ = labelled
  ground = coco_lib.COCO(out)
  assert len(ground.getAnnIds()) > 0
  records = setup['root'] / 'records'
  # What scripts/create_coco_tf_record.py --include_masks runs (in-process:
  # a second TensorFlow start would double this test's time).
  coco_conversion.convert_coco_split(out, setup['images'],
                                     str(records / 'coco_train.record'),
                                     include_masks=True, show_progress=False)
  paths = glob.glob(str(records / 'coco_train.record-*'))
  compared = 0
  for serialized in tf.data.TFRecordDataset(paths):
    example = tf.train.Example.FromString(serialized.numpy())
    features = example.features.feature
    image_id = int(features['image/source_id'].bytes_list.value[0])
    pngs = features['image/object/mask'].bytes_list.value
    labels = list(features['image/object/class/label'].int64_list.value)
    annotations = ground.loadAnns(ground.getAnnIds(imgIds=[image_id]))
    assert labels == [a['category_id'] for a in annotations]
    for png, annotation in zip(pngs, annotations):
      decoded = tf.io.decode_png(png).numpy()[..., 0] > 0
      np.testing.assert_array_equal(decoded, ground.annToMask(annotation) > 0)
      compared += 1
  assert compared == len(ground.getAnnIds())


def test_interrupted_run_resumes_where_it_stopped(setup, labelled, monkeypatch):
  reference, _ = labelled
  out = str(setup['root'] / 'resumed.json')
  calls = []
  original = pseudo_labels.label_image

  def interrupt_at_fifth(*args, **kwargs):
    calls.append(args[2]['id'])
    if len(calls) == 5:
      raise KeyboardInterrupt
    return original(*args, **kwargs)

  monkeypatch.setattr(pseudo_labels, 'label_image', interrupt_at_fifth)
  with pytest.raises(KeyboardInterrupt):
    pseudo_labels.pseudo_label(setup['export'], setup['json'],
                               setup['images'], out, save_every_n=3,
                               show_progress=False)
  assert not os.path.exists(out)
  # Images 1-3 were saved as a full chunk, image 4 when the run stopped.
  assert len(glob.glob(out + '.partial/chunk-*.json')) == 2
  calls.clear()
  monkeypatch.setattr(pseudo_labels, 'label_image', original)

  def counting(*args, **kwargs):
    calls.append(args[2]['id'])
    return original(*args, **kwargs)

  monkeypatch.setattr(pseudo_labels, 'label_image', counting)
  stats = pseudo_labels.pseudo_label(setup['export'], setup['json'],
                                     setup['images'], out, save_every_n=3,
                                     show_progress=False)
  assert stats.images_resumed == 4 and len(calls) == stats.images - 4
  assert not os.path.exists(out + '.partial')
  with open(out, encoding='utf-8') as f, open(reference,
                                              encoding='utf-8') as g:
    assert json.load(f) == json.load(g)


def test_changed_settings_are_refused_not_mixed(setup, tmp_path):
  out = str(tmp_path / 'out.json')
  os.makedirs(out + '.partial')
  with open(out + '.partial/settings.json', 'w', encoding='utf-8') as f:
    json.dump({'classes': [6], 'rule': 'THRESHOLD'}, f)
  with pytest.raises(DataError, match='delete that folder'):
    pseudo_labels.pseudo_label(setup['export'], setup['json'],
                               setup['images'], out, show_progress=False)


def test_bad_image_and_bad_box_are_named_skipped_and_kept(setup, tmp_path):
  images = tmp_path / 'images'
  shutil.copytree(setup['images'], images)
  with open(setup['json'], encoding='utf-8') as f:
    data = json.load(f)
  broken = data['images'][0]['file_name']
  (images / broken).write_bytes(b'not a png')
  bad = next(a for a in data['annotations']
             if a['category_id'] not in SEEN and
             a['image_id'] != data['images'][0]['id'])
  bad['bbox'] = [10.0, 10.0, 0.0, 5.0]
  source = tmp_path / 'in.json'
  source.write_text(json.dumps(data), encoding='utf-8')
  out = str(tmp_path / 'out.json')
  stats = pseudo_labels.pseudo_label(setup['export'], str(source),
                                     str(images), out, classes='all',
                                     show_progress=False)
  assert list(stats.images_skipped) == [broken]
  assert stats.images_skipped[broken].startswith('unreadable_image')
  assert stats.annotations_skipped == {'degenerate_box': 1}
  assert stats.skipped_annotation_examples['degenerate_box'] == [bad['id']]
  assert broken in stats.summary() and str(bad['id']) in stats.summary()
  with open(out, encoding='utf-8') as f:
    written = {a['id']: a for a in json.load(f)['annotations']}
  assert written[bad['id']] == bad
  for a in data['annotations']:
    if a['image_id'] == data['images'][0]['id']:
      assert written[a['id']] == a
  # classes='all': every other annotation got a model mask.
  assert stats.annotations_labelled == len(data['annotations']) - 1 - sum(
      a['image_id'] == data['images'][0]['id'] for a in data['annotations'])


def test_choose_classes():
  ids = range(1, 11)
  assert pseudo_labels.choose_classes('unseen', ids, SEEN) == [6, 7, 8, 9, 10]
  assert pseudo_labels.choose_classes('all', ids, SEEN) == list(ids)
  assert pseudo_labels.choose_classes('7, 3', ids, None) == [3, 7]
  with pytest.raises(DataError, match='no pipeline.config'):
    pseudo_labels.choose_classes('unseen', ids, None)
  with pytest.raises(DataError, match='no unseen classes'):
    pseudo_labels.choose_classes('unseen', ids, ())
  with pytest.raises(DataError, match=r'\[11\]'):
    pseudo_labels.choose_classes('3,11', ids, SEEN)
  with pytest.raises(DataError, match='comma-separated'):
    pseudo_labels.choose_classes('cats', ids, SEEN)


def test_interaction_rule_is_refused(setup, tmp_path):
  with pytest.raises(ConfigError, match='THRESHOLD'):
    pseudo_labels.pseudo_label(setup['export'], setup['json'],
                               setup['images'], str(tmp_path / 'o.json'),
                               rule='INTERACTION', show_progress=False)


def _script(*args):
  return subprocess.run(
      [sys.executable, os.path.join(REPO, 'scripts', 'pseudo_label.py'),
       *args], capture_output=True, text=True, timeout=300, check=False)


def test_script_help_and_one_error_line(tmp_path):
  assert _script('--help').returncode == 0
  result = _script('--saved_model_dir=x', '--image_dir=y',
                   f'--output_annotations={tmp_path / "o.json"}')
  assert result.returncode == 1
  errors = [l for l in result.stderr.splitlines() if l.startswith('ERROR:')]
  assert errors == ['ERROR: --input_annotations: required.']
  assert 'Traceback' not in result.stderr


def test_script_writes_the_json(setup, tmp_path):
  with open(setup['json'], encoding='utf-8') as f:
    data = json.load(f)
  data['images'] = data['images'][:2]
  ids = {i['id'] for i in data['images']}
  data['annotations'] = [a for a in data['annotations'] if a['image_id'] in ids]
  source = tmp_path / 'two_images.json'
  source.write_text(json.dumps(data), encoding='utf-8')
  out = tmp_path / 'script.json'
  result = _script(f'--saved_model_dir={setup["export"]}',
                   f'--input_annotations={source}',
                   f'--image_dir={setup["images"]}',
                   f'--output_annotations={out}', '--classes=all')
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'{len(data["annotations"])} annotation(s)' in result.stdout
  assert len(coco_lib.COCO(str(out)).getAnnIds()) == len(data['annotations'])


def test_each_box_is_segmented_with_its_class():
  """Class-specific exports (teacher-student students, MaskX) need each
  box's class: label_image passes the annotations' category ids."""

  class RecordingPredictor:
    saved_model_dir = 'fake'
    calls = []

    def segment(self, image, boxes, classes=None):
      self.calls.append(list(classes))
      num = len(boxes)
      return inference.Detections(
          boxes=boxes, scores=np.ones([num], np.float32),
          classes=np.asarray(classes, np.int32), class_names=[''] * num,
          masks=None, mask_probabilities=np.ones([num] + list(image.shape[:2]),
                                                 np.float32),
          image_size=image.shape[:2])

  annotations = [
      (0, {'id': 1, 'category_id': 2, 'bbox': [1, 1, 4, 4]}),
      (1, {'id': 2, 'category_id': 7, 'bbox': [2, 2, 5, 5]}),
      (2, {'id': 3, 'category_id': 9, 'bbox': [0, 0, 3, 3]}),
  ]
  stats = pseudo_labels.PseudoLabelStats(classes=[7, 9], seen_class_ids=SEEN)
  record = pseudo_labels.label_image(
      RecordingPredictor(), np.zeros([8, 8, 3], np.uint8),
      {'id': 1, 'height': 8, 'width': 8}, annotations, stats, set(SEEN))
  assert RecordingPredictor.calls == [[7, 9]]
  assert [index for index, _ in record['masks']] == [1, 2]
