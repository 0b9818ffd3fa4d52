"""Bad-input corpus, part 1: what training checks before the model is built
(``training.preflight``), bad records met during training
(``data.record_errors``, the decoder's image checks) and the command-line
conventions (``cli.run``: one ERROR line, 130 / 143 on interrupts). No test
here builds a model."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
import record_helpers
from deepmac_tf import config as config_lib
from deepmac_tf.data import decoder as decoder_lib
from deepmac_tf.data import record_errors
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.export import input_types
from deepmac_tf.export import serving_inputs
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.training import interrupts
from deepmac_tf.training import preflight

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
  return tmp_path_factory.mktemp('data')


def _configs(tmp_path, data_root, override=''):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, config_override=override,
                                         data_root=data_root)
  return config_lib.get_configs_from_pipeline_file(path)


def _write_records(tmp_path, examples, name='bad.record'):
  return record_helpers.write_tfrecord(tmp_path / name, examples)


def _point_train_input_at(configs, path, label_map=None):
  reader = configs['train_input_config']
  del reader.tf_record_input_reader.input_path[:]
  reader.tf_record_input_reader.input_path.append(str(path))
  if label_map is not None:
    reader.label_map_path = label_map


def _labels(tmp_path, count=10):
  return record_helpers.write_label_map(
      tmp_path / 'labels.pbtxt', [f'c{i}' for i in range(1, count + 1)])


def test_good_pipeline_passes_and_lists_files(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  result = preflight.check_training_inputs(configs, str(tmp_path / 'model'),
                                           with_eval=True)
  assert result.train_files and all(os.path.exists(f)
                                    for f in result.train_files)


def test_model_dir_under_a_file(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  blocker = tmp_path / 'afile'
  blocker.write_text('x')
  with pytest.raises(ConfigError, match=r'--model_dir: .*afile is a file'):
    preflight.check_training_inputs(configs, str(blocker / 'model'))


def test_model_dir_not_writable(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  with pytest.raises(ConfigError, match=r'--model_dir: cannot write to '
                     r'/proc/deepmac_model'):
    preflight.check_training_inputs(configs, '/proc/deepmac_model')


def test_mask_model_without_load_instance_masks(tmp_path, data_root):
  configs = _configs(tmp_path, data_root,
                     'train_input_reader { load_instance_masks: false }')
  with pytest.raises(ConfigError,
                     match='train_input_reader.load_instance_masks: must be '
                     'true'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_box_only_model_reading_records_with_masks_says_so_once(
    tmp_path, data_root, caplog):
  """Masks a box-only model does not read are expected: one INFO line, not
  a warning per sampled record."""
  configs = _configs(tmp_path, data_root,
                     'train_input_reader { load_instance_masks: false }')
  configs['model'].center_net.ClearField('deepmac_mask_estimation')
  # The absl logger's own level (an earlier test may have raised it).
  with caplog.at_level('INFO', logger='absl'), caplog.at_level('INFO'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))
  warnings = [r.getMessage() for r in caplog.records
              if r.levelname == 'WARNING']
  assert not [m for m in warnings if 'load_instance_masks' in m], warnings
  lines = [r.getMessage() for r in caplog.records
           if 'this model predicts none' in r.getMessage()]
  assert len(lines) == 1 and lines[0].startswith('train_input_reader: ')


def test_placeholder_left_in_input_path(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  _point_train_input_at(configs, 'PATH_TO_BE_CONFIGURED/train.record')
  with pytest.raises(ConfigError, match='PATH_TO_BE_CONFIGURED'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_input_pattern_matching_nothing(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  pattern = str(tmp_path / 'nope-*.record')
  _point_train_input_at(configs, pattern)
  with pytest.raises(ConfigError) as raised:
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))
  # The field once, and no "checked the first 0 record(s)" hint.
  assert str(raised.value) == (
      'train_input_reader.tf_record_input_reader.input_path: pattern '
      f"'{pattern}' matches no file.")


def test_eval_reader_missing_with_in_training_eval(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  configs['eval_input_configs'] = []
  with pytest.raises(ConfigError, match='no eval_input_reader'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'),
                                    with_eval=True)


def test_label_map_id_above_num_classes(tmp_path, data_root):
  configs = _configs(tmp_path, data_root,
                     'model { center_net { num_classes: 5 '
                     'deepmac_mask_estimation { allowed_masked_classes_ids: '
                     '[1] } } }')
  with pytest.raises(LabelMapError, match=r'label_map.pbtxt has id 6 .*'
                     r'num_classes is 5'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_record_class_id_above_num_classes(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  path = _write_records(tmp_path, [record_helpers.simple_example(
      classes=(1, 12))])
  _point_train_input_at(configs, path, label_map='')
  with pytest.raises(ConfigError, match=r'bad.record, record 0[^:]*: class '
                     r'id\(s\) 12 exceed'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_record_class_id_missing_from_label_map(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  path = _write_records(tmp_path, [record_helpers.simple_example(
      classes=(1, 7))])
  _point_train_input_at(configs, path, label_map=_labels(tmp_path, 6))
  with pytest.raises(LabelMapError, match=r'bad.record, record 0[^:]*: '
                     r'class id\(s\) 7 not in the label map'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_record_without_masks_for_a_mask_model(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  path = _write_records(tmp_path, [record_helpers.simple_example(
      masks=None)])
  _point_train_input_at(configs, path, label_map=_labels(tmp_path))
  with pytest.raises(DataError, match='bad.record, record 0[^:]*: .*mask'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_png_mask_of_the_wrong_size(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  good = record_helpers.simple_example()
  wrong = record_helpers.simple_example(
      masks=np.ones([2, 16, 16], np.float32))
  path = _write_records(tmp_path, [good, wrong])
  _point_train_input_at(configs, path, label_map=_labels(tmp_path))
  with pytest.raises(DataError, match='bad.record, record 1[^:]*: .*16'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_non_image_bytes_in_the_sample(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  example = tf.train.Example.FromString(record_helpers.simple_example())
  example.features.feature['image/encoded'].bytes_list.value[0] = b'GARBAGE'
  path = _write_records(tmp_path, [example.SerializeToString()])
  _point_train_input_at(configs, path, label_map=_labels(tmp_path))
  with pytest.raises(DataError, match='bad.record, record 0'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_truncated_file_in_the_sample(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  path = _write_records(tmp_path, [record_helpers.simple_example(seed=i)
                                   for i in range(3)])
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:-20])
  _point_train_input_at(configs, path, label_map=_labels(tmp_path))
  with pytest.raises(DataError, match='bad.record'):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


# --- bad records met while training (after the preflight sample) ---------


def _iterate(path):
  for _ in tf.data.TFRecordDataset(path):
    pass


def test_truncated_file_is_located_by_record(tmp_path):
  path = _write_records(tmp_path, [record_helpers.simple_example(seed=i)
                                   for i in range(4)])
  assert record_errors.find_truncated_record(path) is None
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:-30])
  assert record_errors.find_truncated_record(path) == 3
  with pytest.raises(tf.errors.OpError) as raised:
    _iterate(path)
  error = record_errors.input_error(raised.value, [path])
  assert isinstance(error, DataError)
  assert str(error).startswith(f'record 3 of file {path}: the file is '
                               'truncated')


def _decode_error(serialized, load_masks=True, **decoder_args):
  decoder = decoder_lib.TfExampleDecoder(
      load_instance_masks=load_masks, mask_type=input_reader_pb2.PNG_MASKS,
      **decoder_args)
  with pytest.raises(tf.errors.OpError) as raised:
    decoder.decode(tf.constant(serialized),
                   tf.constant('record 17 of file /data/x.record'))
  return record_errors.input_error(raised.value, [])


def test_class_id_above_num_classes_past_the_sample_names_the_record():
  """The pre-training check samples the first records; the decoder checks
  every record the run reads (a larger id would train as background)."""
  error = _decode_error(record_helpers.simple_example(classes=(2, 9)),
                        num_classes=5)
  assert str(error) == ('record 17 of file /data/x.record: holds class id 9 '
                        'but the model has num_classes 5 (raise num_classes '
                        'or fix the records)')


def test_class_id_missing_from_the_label_map_names_the_record(tmp_path):
  labels = record_helpers.write_label_map(tmp_path / 'labels.pbtxt',
                                          ['a', 'b', 'c'])
  error = _decode_error(record_helpers.simple_example(classes=(3, 7)),
                        label_map_path=labels, num_classes=10)
  assert str(error) == (f'record 17 of file /data/x.record: holds class id 7 '
                        f'(image/object/class/label), which the label map '
                        f'{labels} lacks (add it to the label map or fix the '
                        'records)')


def test_known_class_ids_decode(tmp_path):
  labels = record_helpers.write_label_map(tmp_path / 'labels.pbtxt',
                                          ['a', 'b', 'c'])
  decoder = decoder_lib.TfExampleDecoder(
      load_instance_masks=True, mask_type=input_reader_pb2.PNG_MASKS,
      label_map_path=labels, num_classes=3)
  tensors = decoder.decode(tf.constant(record_helpers.simple_example(
      classes=(3, 1))))
  assert tensors['groundtruth_classes'].numpy().tolist() == [3, 1]


def test_non_image_bytes_name_file_and_record():
  example = tf.train.Example.FromString(record_helpers.simple_example())
  example.features.feature['image/encoded'].bytes_list.value[0] = b'\x00' * 64
  error = _decode_error(example.SerializeToString())
  assert str(error) == ('record 17 of file /data/x.record: image/encoded is '
                        'not a JPEG, PNG, GIF or BMP image')


def test_non_png_mask_names_file_and_record():
  example = tf.train.Example.FromString(record_helpers.simple_example())
  example.features.feature['image/object/mask'].bytes_list.value[1] = b'nope'
  error = _decode_error(example.SerializeToString())
  assert str(error) == ('record 17 of file /data/x.record: mask 1 in '
                        'image/object/mask is not a PNG image')


def _without_last_mask(example, kind):
  proto = tf.train.Example.FromString(example)
  values = getattr(proto.features.feature['image/object/mask'], kind).value
  del values[-(1 if kind == 'bytes_list' else 10):]
  return proto.SerializeToString()


@pytest.mark.parametrize('serialized,mask_type,line', [
    (_without_last_mask(record_helpers.simple_example(), 'bytes_list'),
     input_reader_pb2.PNG_MASKS,
     'record 17 of file /data/x.record: has 1 PNG masks in image/object/mask '
     'but 2 boxes; expected one mask per box'),
    (_without_last_mask(record_helpers.simple_example(mask_type='numerical'),
                        'float_list'),
     input_reader_pb2.NUMERICAL_MASKS,
     'record 17 of file /data/x.record: has 3062 values in image/object/mask '
     'but NUMERICAL_MASKS needs num_boxes x height x width = 3072 (one '
     'image-sized mask per box)'),
    (record_helpers.simple_example(), input_reader_pb2.NUMERICAL_MASKS,
     "reading the training input failed: Key: image/object/mask.  Data types "
     "don't match. Expected type: float, Actual type: string (a record stores "
     'a feature with another type than the input reader expects, e.g. '
     'image/object/mask as the other mask_type; scripts/inspect_dataset.py '
     'names it).'),
], ids=['png_count', 'numerical_size', 'mask_type_past_the_sample'])
def test_mask_count_size_and_type_errors(serialized, mask_type, line):
  decoder = decoder_lib.TfExampleDecoder(load_instance_masks=True,
                                         mask_type=mask_type)
  with pytest.raises(tf.errors.OpError) as raised:
    decoder.decode(tf.constant(serialized),
                   tf.constant('record 17 of file /data/x.record'))
  assert str(record_errors.input_error(raised.value, [])) == line


def test_wrong_size_png_mask_names_file_and_record():
  error = _decode_error(record_helpers.simple_example(
      masks=np.ones([2, 16, 16], np.float32)))
  assert str(error).startswith('record 17 of file /data/x.record: mask 0 in '
                               'image/object/mask is 16x16 but the image is '
                               '32x48')


def test_unknown_input_error_keeps_its_first_line():
  error = record_errors.input_error(
      tf.errors.InternalError(None, None, 'disk on fire\nmore'), [])
  assert str(error) == 'reading the training input failed: disk on fire'


# --- command-line conventions ---------------------------------------------


_SCRIPT = '''
import sys
sys.path.insert(0, {repo!r})
from deepmac_tf import cli
from deepmac_tf.training import interrupts
def main(argv):
  kind = {kind!r}
  if kind == 'sigint':
    raise KeyboardInterrupt()
  if kind == 'sigterm':
    raise interrupts.Interrupted(15)
  if kind == 'sigterm_signal':  # A real SIGTERM: cleanup still runs.
    import os, signal, time
    try:
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(30)
    finally:
      print('CLEANED UP')
  if kind == 'permission':
    open('/proc/deepmac_no_such_dir/file', 'w')
  if kind == 'bug':
    raise RuntimeError('a real bug')
cli.run(main)
'''


def _run_cli(kind):
  return subprocess.run(
      [sys.executable, '-c', _SCRIPT.format(repo=REPO, kind=kind)],
      capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize('kind,status,line', [
    ('sigint', 130, 'Interrupted (SIGINT).'),
    ('sigterm', 143, 'Interrupted (SIGTERM).'),
    ('sigterm_signal', 143, 'Interrupted (SIGTERM).'),
])
def test_interrupts_exit_with_128_plus_signal(kind, status, line):
  result = _run_cli(kind)
  assert result.returncode == status
  assert result.stderr.strip() == line
  if kind == 'sigterm_signal':
    assert result.stdout.strip() == 'CLEANED UP'


def test_os_errors_are_one_error_line():
  result = _run_cli('permission')
  assert result.returncode == 1
  assert result.stderr.startswith('ERROR: ')
  assert '/proc/deepmac_no_such_dir/file' in result.stderr
  assert 'Traceback' not in result.stderr


def test_bugs_keep_their_traceback():
  result = _run_cli('bug')
  assert result.returncode == 1 and 'Traceback' in result.stderr


def test_sigterm_raises_interrupted_inside_the_block():
  with pytest.raises(interrupts.Interrupted) as raised:
    with interrupts.sigterm_interrupts():
      os.kill(os.getpid(), signal.SIGTERM)
      for _ in range(1000):
        pass
  assert interrupts.exit_status(raised.value) == 143
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_cli_quiets_tensorflow_unless_verbose(monkeypatch):
  from deepmac_tf import cli  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL', raising=False)
  cli.quiet_tensorflow_logs(['x', '--verbose'])
  assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ
  cli.quiet_tensorflow_logs(['x'])
  assert os.environ['TF_CPP_MIN_LOG_LEVEL'] in ('2', '3')


def test_cli_hides_other_libraries_info_lines_only():
  """TF's checkpoint writer logs 'Sharding callback duration' through absl
  at INFO on every save; this project's own INFO lines stay."""
  import logging  # pylint: disable=g-import-not-at-top
  from deepmac_tf import cli  # pylint: disable=g-import-not-at-top
  own = cli._own_code_dirs()  # pylint: disable=protected-access
  keep = cli._OwnInfoOnly(own)  # pylint: disable=protected-access
  tf_file = os.path.join(os.path.dirname(tf.__file__), 'python',
                         'checkpoint', 'functional_saver.py')
  def record(path, level):
    return logging.LogRecord('absl', level, path, 1, 'm', (), None)
  assert not keep.filter(record(tf_file, logging.INFO))
  assert keep.filter(record(tf_file, logging.WARNING))
  assert keep.filter(record(preflight.__file__, logging.INFO))


def test_cli_tf_environment_errors_are_one_clean_line():
  from deepmac_tf import cli  # pylint: disable=g-import-not-at-top
  full = tf.errors.ResourceExhaustedError(
      None, None, '{{function_node __wrapped__SaveV2_dtypes_9_device_/job:'
      'localhost/replica:0/task:0/device:CPU:0}} /runs/a/ckpt-2_temp/part-0; '
      'No space left on device [Op:SaveV2]')
  assert cli._environment_message(full) == (  # pylint: disable=protected-access
      'no space left on device: /runs/a/ckpt-2_temp/part-0')
  denied = tf.errors.PermissionDeniedError(None, None, '/runs/b; Permission '
                                           'denied')
  assert cli._environment_message(denied) == (  # pylint: disable=protected-access
      'permission denied: /runs/b; Permission denied')


def test_writes_through_a_staging_folder_name_their_target(tmp_path):
  import errno  # pylint: disable=g-import-not-at-top
  from deepmac_tf import file_checks  # pylint: disable=g-import-not-at-top
  target = str(tmp_path / 'export')
  with pytest.raises(OSError) as raised:
    with file_checks.writing_to(target):
      raise OSError(errno.ENOSPC, 'No space left on device',
                    str(tmp_path / '.export.staging-x1' / 'saved_model.pb'))
  assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, target)
  with pytest.raises(OSError) as raised:
    with file_checks.writing_to(target):
      raise tf.errors.PermissionDeniedError(None, None, 'staging: denied')
  assert (raised.value.errno, raised.value.filename) == (errno.EACCES, target)
  with pytest.raises(ValueError, match='a bug'):
    with file_checks.writing_to(target):
      raise ValueError('a bug')


def test_model_main_checks_model_dir_before_loading_tensorflow(tmp_path,
                                                              data_root):
  config = pipeline_fixtures.tiny_pipeline(tmp_path, data_root=data_root)
  probe = ('import runpy, sys; sys.argv = sys.argv[1:]\n'
           'try:\n  runpy.run_path(sys.argv[0], run_name="__main__")\n'
           'finally:\n  print("tensorflow" in sys.modules)')
  result = subprocess.run(
      [sys.executable, '-c', probe,
       os.path.join(REPO, 'scripts', 'model_main_tf2.py'),
       f'--pipeline_config_path={config}', '--model_dir=/proc/deepmac_run'],
      capture_output=True, text=True, timeout=60, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 1
  assert result.stderr.strip() == (
      'ERROR: --model_dir: cannot write to /proc/deepmac_run (No such file '
      'or directory).')
  assert result.stdout.split() == ['False']


def test_dash_h_prints_help_with_status_0():
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'scripts', 'segment.py'), '-h'],
      capture_output=True, text=True, timeout=60, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr
  assert '--saved_model_dir' in result.stdout


def test_tf_free_input_types_match_serving_inputs():
  assert input_types.INPUT_TYPES == serving_inputs.INPUT_TYPES


def test_eval_inputs_checked_before_the_eval_model(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  reader = configs['eval_input_configs'][0]
  del reader.tf_record_input_reader.input_path[:]
  reader.tf_record_input_reader.input_path.append(str(tmp_path / 'val-*'))
  with pytest.raises(ConfigError, match=r"eval_input_reader.tf_record_input_"
                     r"reader.input_path: pattern '.*val-\*' matches no file"):
    preflight.check_eval_inputs(configs, 0, str(tmp_path / 'model' / 'eval'))
  with pytest.raises(ConfigError, match='1 eval input reader.*index 2 asked'):
    preflight.check_eval_inputs(configs, 2)
  with pytest.raises(ConfigError, match='--model_dir: cannot write to /proc'):
    preflight.check_eval_inputs(configs, 0, '/proc/deepmac/eval')


def test_eval_without_label_map_names_the_missing_field(tmp_path, data_root):
  """super_categories name classes; without a label map the classes are
  numbers: the error names label_map_path, not unknown super-category
  names."""
  configs = _configs(tmp_path, data_root)
  configs['eval_input_configs'][0].ClearField('label_map_path')
  with pytest.raises(ConfigError, match=r"eval_input_reader.label_map_path: "
                     r"not set, but eval_config.super_categories names "
                     r"classes \('seen': circle,ellipse"):
    preflight.check_eval_inputs(configs)
  configs['eval_config'].ClearField('super_categories')
  preflight.check_eval_inputs(configs)  # numbered classes are fine
  from deepmac_tf.evaluation import eval_setup  # pylint: disable=g-import-not-at-top
  assert eval_setup.categories(configs)[9] == {'id': 10, 'name': '10'}


def test_eval_progress_lines_and_record_count(tmp_path):
  from deepmac_tf.evaluation import progress  # pylint: disable=g-import-not-at-top
  path = _write_records(tmp_path, [record_helpers.simple_example(seed=i)
                                   for i in range(5)])
  assert record_errors.count_records([path, path]) == 10
  now = [0.0]
  bar = progress.EvalProgress(total=10, title='Eval at step 7',
                              every_seconds=10, clock=lambda: now[0])
  now[0] = 5.0
  assert bar.update(2) is None  # not 10 s yet
  now[0] = 10.0
  assert bar.update(4) == ('Eval at step 7: 4/10 images (40%) | 0.40 '
                           'images/s | ETA 0:00:15')
  times = iter([0.0, 2.0])
  assert progress.EvalProgress(clock=lambda: next(times)).line(3) == (
      'Eval: 3 images | 1.50 images/s')
