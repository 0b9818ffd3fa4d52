"""Tests of dataset inspection: deepmac_tf.data.inspection and its CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.data import inspection
from deepmac_tf.data.fields import TfExampleFields as F

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_ROOT, 'scripts', 'inspect_dataset.py')
_HEIGHT, _WIDTH = 8, 10

_LABEL_MAP = """
item { id: 1 name: 'person' }
item { id: 2 name: 'cat' }
item { id: 3 name: 'dog' }
"""


def _bytes(*values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _png(array):
  return tf.io.encode_png(np.asarray(array, np.uint8)[:, :, None]).numpy()


def _mask(height=_HEIGHT, width=_WIDTH, fill=1):
  mask = np.zeros((height, width), np.uint8)
  mask[1:4, 2:6] = fill
  return mask


def _example(labels=(1, 2), masks='png', source_id='img', boxes=None,
             **overrides):
  """A tf.Example with one box per label; ``overrides`` replace features.

  Args:
    labels: class ids, one instance each.
    masks: 'png', 'numerical' or None.
    source_id: image/source_id.
    boxes: [n, 4] (ymin, xmin, ymax, xmax); default valid boxes.
    **overrides: feature key (with '/' written as '__') -> Feature, or None to
      delete the feature.
  """
  n = len(labels)
  boxes = np.asarray(boxes if boxes is not None else
                     [[0.1, 0.2, 0.5, 0.6]] * n, np.float32).reshape(n, 4)
  image = tf.io.encode_jpeg(tf.zeros((_HEIGHT, _WIDTH, 3), tf.uint8)).numpy()
  feature = {
      F.IMAGE_ENCODED: _bytes(image), F.IMAGE_FORMAT: _bytes(b'jpeg'),
      F.HEIGHT: _ints([_HEIGHT]), F.WIDTH: _ints([_WIDTH]),
      F.SOURCE_ID: _bytes(source_id.encode()),
      F.BBOX_YMIN: _floats(boxes[:, 0]), F.BBOX_XMIN: _floats(boxes[:, 1]),
      F.BBOX_YMAX: _floats(boxes[:, 2]), F.BBOX_XMAX: _floats(boxes[:, 3]),
      F.CLASS_LABEL: _ints(labels), F.IS_CROWD: _ints([0] * n),
  }
  if masks == 'png':
    feature[F.MASK] = _bytes(*[_png(_mask()) for _ in range(n)])
  elif masks == 'numerical':
    feature[F.MASK] = _floats(np.stack(
        [_mask()] * n).astype(np.float32).ravel() if n else [])
  for key, value in overrides.items():
    key = key.replace('__', '/')
    if value is None:
      feature.pop(key, None)
    else:
      feature[key] = value
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path, records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


@pytest.fixture(name='label_map')
def _label_map(tmp_path):
  path = tmp_path / 'label_map.pbtxt'
  path.write_text(_LABEL_MAP)
  return str(path)


def _inspect(tmp_path, label_map, records, **kwargs):
  path = _write(tmp_path / 'data.tfrecord', records)
  kwargs.setdefault('load_instance_masks', True)
  kwargs.setdefault('mask_type', 'PNG_MASKS')
  return path, inspection.inspect_records([path], label_map, **kwargs)


@pytest.mark.parametrize('masks,mask_type', [('png', 'PNG_MASKS'),
                                              ('numerical', 'NUMERICAL_MASKS'),
                                              ('numerical', 'DEFAULT')])
def test_clean_records_count_classes_and_supervision(tmp_path, label_map,
                                                     masks, mask_type):
  records = [_example((1, 2), masks, 'a'), _example((1, 3), masks, 'b'),
             _example((), masks, 'empty'),
             _example((2,), masks, 'c', **{'image__object__is_crowd':
                                           _ints([1])})]
  _, report = _inspect(tmp_path, label_map, records, mask_type=mask_type,
                       allowed_masked_class_ids=[1, 3])
  assert report.ok, inspection.format_report(report)
  assert report.num_warnings == 0
  assert report.num_records == 4
  assert report.num_images_without_instances == 1
  stats = report.classes
  assert [stats[i].instances for i in (1, 2, 3)] == [2, 2, 1]
  assert [stats[i].with_mask for i in (1, 2, 3)] == [2, 2, 1]
  assert stats[2].crowd == 1 and stats[2].name == 'cat'
  assert [stats[i].masks_allowed for i in (1, 2, 3)] == [True, False, True]
  assert [stats[i].mask_supervised for i in (1, 2, 3)] == [2, 0, 1]
  detected = 'PNG_MASKS' if masks == 'png' else 'NUMERICAL_MASKS'
  assert dict(report.detected_mask_types) == {detected: 3}
  text = inspection.format_report(report)
  assert 'mask supervision: 3 of 5 instances (60.0%)' in text
  assert 'input_path: OK' not in text and ': OK, 0 warning(s).' in text
  json.dumps(report.to_dict())


def test_empty_allowed_ids_means_all_classes(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map, [_example((1, 2, 3))])
  assert report.total('mask_supervised') == 3
  assert 'all (allowed_masked_classes_ids is empty)' in (
      inspection.format_report(report))


_BAD_RECORDS = {
    'class_id_unknown': lambda: _example((1, 7)),
    'class_id_zero': lambda: _example((0, 1)),
    'masks_absent': lambda: _example(masks=None),
    'mask_count_mismatch': lambda: _example(
        image__object__mask=_bytes(_png(_mask()))),
    'mask_size_mismatch': lambda: _example(
        image__object__mask=_bytes(*[_png(_mask(4, 4))] * 2)),
    'mask_type_mismatch': lambda: _example(masks='numerical'),
    'mask_undecodable': lambda: _example(
        image__object__mask=_bytes(b'not a png', b'nor this')),
    'box_not_normalized': lambda: _example(boxes=[[1, 2, 5, 6]] * 2),
    'box_degenerate': lambda: _example(boxes=[[0.5, 0.2, 0.5, 0.6]] * 2),
    'missing_key': lambda: _example(image__encoded=None),
    'image_undecodable': lambda: _example(image__encoded=_bytes(b'garbage')),
    'image_size_mismatch': lambda: _example(image__height=_ints([16])),
    'count_mismatch': lambda: _example(
        image__object__bbox__xmin=_floats([0.2])),
    'wrong_feature_type': lambda: _example(
        image__object__class__label=_floats([1.0, 2.0])),
    'record_unparsable': lambda: b'\x07 this is not a tf.Example',
}


@pytest.mark.parametrize('kind', sorted(_BAD_RECORDS))
def test_each_mismatch_names_file_record_and_source_id(tmp_path, label_map,
                                                       kind):
  bad = _BAD_RECORDS[kind]()
  path, report = _inspect(tmp_path, label_map,
                          [_example(source_id='good'), bad])
  assert not report.ok
  assert set(report.issue_counts) == {kind}, inspection.format_report(report)
  issue = report.examples[kind][0]
  assert issue.file == path and issue.record_index == 1
  if kind != 'record_unparsable':
    assert issue.source_id == 'img'
  assert f'{path}, record 1' in inspection.format_report(report)


def test_numerical_masks_count_and_size_mismatch(tmp_path, label_map):
  one_mask = _floats(np.ones(_HEIGHT * _WIDTH, np.float32))
  odd_size = _floats(np.ones(7, np.float32))
  _, report = _inspect(tmp_path, label_map, [
      _example(masks='numerical', image__object__mask=one_mask),
      _example(masks='numerical', image__object__mask=odd_size)],
                       mask_type='NUMERICAL_MASKS')
  assert dict(report.issue_counts) == {'mask_count_mismatch': 1,
                                       'mask_size_mismatch': 1}


def test_png_records_with_numerical_mask_type(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map, [_example()],
                       mask_type='NUMERICAL_MASKS')
  message = report.examples['mask_type_mismatch'][0].message
  assert 'PNG bytes' in message and 'set mask_type: PNG_MASKS' in message


def test_pixel_box_hint(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map,
                       [_example(boxes=[[1, 2, 5, 6]] * 2)])
  assert 'pixel coordinates' in report.examples['box_not_normalized'][0].message


def test_masks_present_but_not_loaded_is_a_warning(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map, [_example()],
                       load_instance_masks=False)
  assert report.ok and set(report.issue_counts) == {'masks_ignored'}
  assert report.total('with_mask') == 2
  assert report.total('mask_supervised') == 0


def test_empty_mask_counts_as_without_mask(tmp_path, label_map):
  masks = _bytes(_png(_mask()), _png(_mask(fill=0)))
  _, report = _inspect(tmp_path, label_map,
                       [_example(image__object__mask=masks)])
  assert report.ok and set(report.issue_counts) == {'empty_mask'}
  assert report.classes[2].without_mask == 1


def test_class_text_is_mapped_through_the_label_map(tmp_path, label_map):
  records = [_example(image__object__class__label=None,
                      image__object__class__text=_bytes(b'person', b'cat')),
             _example(image__object__class__label=None,
                      image__object__class__text=_bytes(b'person', b'cow'))]
  _, report = _inspect(tmp_path, label_map, records)
  # Like the decoder, unknown class text drops the instance: a warning.
  assert report.ok and dict(report.issue_counts) == {'class_text_unknown': 1}
  assert report.examples['class_text_unknown'][0].record_index == 1
  assert report.classes[1].instances == 2 and report.classes[2].instances == 1
  assert report.total('instances') == 3


def test_mask_weights_mark_instances_without_masks(tmp_path, label_map):
  masks = _bytes(_png(_mask()), _png(_mask(fill=0)))
  _, report = _inspect(tmp_path, label_map, [
      _example(image__object__mask=masks,
               image__object__mask__weight=_floats([1.0, 0.0])),
      _example(image__object__mask__weight=_floats([1.0]))])
  assert dict(report.issue_counts) == {'count_mismatch': 1}
  assert report.classes[2].without_mask == 1
  assert report.total('mask_supervised') == 1


def test_truncated_file_is_reported(tmp_path, label_map):
  path = _write(tmp_path / 'data.tfrecord', [_example()] * 3)
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:-20])
  report = inspection.inspect_records([path], label_map, True, 'PNG_MASKS')
  assert report.num_records == 2
  issue = report.examples['file_unreadable'][0]
  assert issue.file == path and issue.record_index == 2


def test_input_path_no_match_names_field(tmp_path, label_map):
  report = inspection.inspect_records(
      [str(tmp_path / 'missing-*.tfrecord')], label_map,
      input_path_field='train_input_reader.tf_record_input_reader.input_path')
  message = report.examples['input_path_no_match'][0].message
  assert message.startswith('train_input_reader.tf_record_input_reader.'
                            'input_path: pattern')


@pytest.mark.parametrize('text', [None, "item { id: 0 name: 'bg' }",
                                  'item { id: 1 name: '])
def test_label_map_unreadable(tmp_path, text):
  path = tmp_path / 'label_map.pbtxt'
  if text is not None:
    path.write_text(text)
  _, report = _inspect(tmp_path, str(path), [_example()])
  assert 'label_map_unreadable' in report.issue_counts
  assert str(path) in report.examples['label_map_unreadable'][0].message


def test_allowed_class_unknown(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map, [_example()],
                       allowed_masked_class_ids=[1, 5])
  assert dict(report.issue_counts) == {'allowed_class_unknown': 1}
  assert 'contains 5' in report.examples['allowed_class_unknown'][0].message


def test_identical_errors_are_grouped(tmp_path, label_map):
  records = [_example((9,), source_id=f'img{i}') for i in range(30)]
  _, report = _inspect(tmp_path, label_map, records)
  assert report.issue_counts['class_id_unknown'] == 30
  text = inspection.format_report(report, max_examples=3)
  assert '[class_id_unknown] x30' in text and '... and 27 more' in text
  assert text.count('not in the label map (label map ids') == 3


def test_max_records_truncates(tmp_path, label_map):
  _, report = _inspect(tmp_path, label_map, [_example()] * 5, max_records=2)
  assert report.num_records == 2 and report.truncated


_PIPELINE = """
model {{
  center_net {{
    num_classes: 3
    deepmac_mask_estimation {{ allowed_masked_classes_ids: [1, 2] }}
  }}
}}
train_input_reader {{
  label_map_path: "{label_map}"
  load_instance_masks: {load}
  mask_type: PNG_MASKS
  tf_record_input_reader {{ input_path: "{train}" }}
}}
eval_input_reader {{
  label_map_path: "{label_map}"
  load_instance_masks: true
  mask_type: PNG_MASKS
  tf_record_input_reader {{ input_path: "{eval}" }}
}}
"""


def _pipeline(tmp_path, label_map, load='true', eval_pattern=None):
  _write(tmp_path / 'train-00000-of-00001', [
      _example((1, 2)), _example((3,))])
  evaluation = eval_pattern or _write(tmp_path / 'eval.tfrecord',
                                      [_example((3, 1))])
  path = tmp_path / 'pipeline.config'
  path.write_text(_PIPELINE.format(label_map=label_map, load=load,
                                   train=str(tmp_path / 'train-*'),
                                   eval=evaluation))
  return str(path)


def test_inspect_pipeline(tmp_path, label_map):
  from deepmac_tf import config  # pylint: disable=g-import-not-at-top
  configs = config.get_configs_from_pipeline_file(
      _pipeline(tmp_path, label_map, load='false', eval_pattern='nowhere-*'))
  assert inspection.model_mask_settings(configs['model']) == (
      3, (1, 2), True,
      'model.center_net.deepmac_mask_estimation.allowed_masked_classes_ids')
  reports = inspection.inspect_pipeline(configs, 'all')
  train = reports['train_input_reader']
  evaluation = reports['eval_input_reader']
  assert train.allowed_masked_class_ids == (1, 2)
  assert set(train.issue_counts) == {'masks_not_loaded', 'masks_ignored'}
  assert train.examples['masks_not_loaded'][0].message.startswith(
      'train_input_reader.load_instance_masks is false')
  assert evaluation.examples['input_path_no_match'][0].message.startswith(
      'eval_input_reader.tf_record_input_reader.input_path:')


def _run_cli(*args):
  env = dict(os.environ, PYTHONPATH=_ROOT, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, _SCRIPT, *args], env=env,
                        capture_output=True, text=True, timeout=120,
                        check=False)


def test_cli_help():
  result = _run_cli('--help')
  assert result.returncode == 0
  for flag in ('--pipeline_config_path', '--input_path', '--mask_type',
               '--allowed_masked_classes_ids', '--max_records',
               '--output_json', '--split'):
    assert flag in result.stdout


def test_cli_pipeline_mode_clean_exits_zero(tmp_path, label_map):
  out = tmp_path / 'report.json'
  result = _run_cli(f'--pipeline_config_path={_pipeline(tmp_path, label_map)}',
                    '--split=all', f'--output_json={out}')
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'train_input_reader' in result.stdout
  assert 'RESULT: OK' in result.stdout
  payload = json.loads(out.read_text())
  assert payload['ok']
  train = payload['reports']['train_input_reader']
  assert train['num_records'] == 2
  assert train['allowed_masked_class_ids'] == [1, 2]


def test_cli_input_path_mode_errors_exit_one(tmp_path, label_map):
  path = _write(tmp_path / 'bad.tfrecord', [_example((0, 1))])
  out = tmp_path / 'report.json'
  result = _run_cli(f'--input_path={path}', f'--label_map_path={label_map}',
                    '--load_instance_masks', '--mask_type=NUMERICAL_MASKS',
                    '--allowed_masked_classes_ids=1,2', '--progress',
                    f'--output_json={out}')
  assert result.returncode == 1, result.stdout + result.stderr
  assert '[class_id_zero] x1' in result.stdout
  assert '[mask_type_mismatch] x1' in result.stdout
  assert f'{path}, record 0' in result.stdout
  issues = json.loads(out.read_text())['reports']['input_path']['issues']
  assert issues['class_id_zero']['count'] == 1


def test_cli_usage_error():
  assert _run_cli().returncode == 2
