"""Bad-input corpus, part 4: pipeline configs and overrides, label maps,
SavedModel serving inputs (the in-graph checks every signature runs, called
eagerly here) and box prompts of the inference API. Each case: the exact
error class and a message naming the culprit (file:line:col, field, input
name). No model is built."""

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
from deepmac_tf import config as config_lib
from deepmac_tf.data import label_map_util
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.export import serving_inputs
from deepmac_tf.inference import image_io
from deepmac_tf.training import preflight


@pytest.fixture(scope='module')
def good_text(tmp_path_factory):
  path = pipeline_fixtures.tiny_pipeline(tmp_path_factory.mktemp('cfg'))
  with open(path, encoding='utf-8') as f:
    return f.read()


def _line_of(text, needle):
  return text[:text.index(needle)].count('\n') + 1


@pytest.mark.parametrize('old,new,message', [
    ('mask_size: 16', 'mask_sise: 16', r'unknown field "mask_sise" in '
     r'CenterNet.DeepMACMaskEstimation \(did you mean "mask_size"\?\)'),
    ('mask_type: PNG_MASKS', 'mask_type: JPEG_MASKS', 'unknown value '
     'JPEG_MASKS for enum InstanceMaskType'),
    ('num_classes: 10', 'num_classes: ten', "Couldn't parse integer: ten"),
    ('dim: 8', 'dim: "8"', 'Couldn\'t parse integer: "8"'),
    ('image_resizer {', 'image_resizerx {', r'unknown field "image_resizerx" '
     r'in CenterNet \(did you mean "image_resizer"\?\)'),
])
def test_config_text_errors_name_line_and_column(good_text, old, new, message):
  text = good_text.replace(old, new, 1)
  with pytest.raises(ConfigError, match=message) as raised:
    config_lib.get_pipeline_config_from_text(text, source='bad.config')
  assert str(raised.value).startswith(f'bad.config:{_line_of(text, new)}:')


def test_unbalanced_braces(good_text):
  with pytest.raises(ConfigError, match=r'bad.config:\d+:1: Expected '
                     'identifier or number, got }'):
    config_lib.get_pipeline_config_from_text(good_text + '\n}\n',
                                             source='bad.config')


def test_missing_config_file(tmp_path):
  with pytest.raises(ConfigError, match=f'Pipeline config not found: '
                     f'{tmp_path}/nope.config'):
    config_lib.get_configs_from_pipeline_file(str(tmp_path / 'nope.config'))


@pytest.mark.parametrize('script,flags', [
    ('model_main_tf2.py', ['--model_dir={tmp}/run']),
    ('exporter_main_v2.py', ['--output_directory={tmp}/export',
                             '--trained_checkpoint_dir={tmp}']),
    ('inspect_dataset.py', ['--split=train']),
], ids=['model_main', 'exporter', 'inspect_dataset'])
def test_scripts_report_a_missing_config_before_loading_tensorflow(
    tmp_path, script, flags):
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  probe = ('import runpy, sys; sys.argv = sys.argv[1:]\n'
           'try:\n  runpy.run_path(sys.argv[0], run_name="__main__")\n'
           'finally:\n  print("tensorflow" in sys.modules)')
  missing = tmp_path / 'nope.config'
  result = subprocess.run(
      [sys.executable, '-c', probe, os.path.join(repo, 'scripts', script),
       f'--pipeline_config_path={missing}'] + [
           f.format(tmp=tmp_path) for f in flags],
      capture_output=True, text=True, timeout=60, cwd=repo,
      env=dict(os.environ, PYTHONPATH=repo))
  assert result.returncode == 1
  assert result.stderr.strip() == f'ERROR: Pipeline config not found: {missing}'
  assert result.stdout.split()[-1] == 'False'


def test_bad_override_names_config_override(tmp_path):
  path = pipeline_fixtures.tiny_pipeline(tmp_path)
  with pytest.raises(ConfigError, match=r'config_override:1:16: unknown '
                     r'field "batch_sizee" in TrainConfig'):
    config_lib.get_configs_from_pipeline_file(
        path, config_override='train_config { batch_sizee: 3 }')


def _set_allowed(configs, ids):
  field = configs['model'].center_net.deepmac_mask_estimation
  del field.allowed_masked_classes_ids[:]
  field.allowed_masked_classes_ids.extend(ids)


def _set_batch(configs, size):
  configs['train_config'].batch_size = size


@pytest.mark.parametrize('mutate,message', [
    (lambda c: _set_allowed(c, [0, 2]),
     r'model.center_net.deepmac_mask_estimation.allowed_masked_classes_ids: '
     r'\[0\] outside the class ids 1..10'),
    (lambda c: _set_allowed(c, [1, 11]), r'\[11\] outside the class ids '
     r'1..10 \(model.center_net.num_classes\)'),
    (lambda c: _set_batch(c, 0),
     'train_config.batch_size: must be >= 1, got 0'),
])
def test_settings_checked_before_training(good_text, tmp_path, mutate,
                                          message):
  pipeline = config_lib.get_pipeline_config_from_text(good_text, 'x.config')
  configs = config_lib.create_configs_from_pipeline_proto(pipeline)
  mutate(configs)
  with pytest.raises(ConfigError, match=message):
    preflight.check_training_inputs(configs, str(tmp_path / 'model'))


def test_config_without_model(good_text):
  text = good_text[good_text.index('train_config'):]
  pipeline = config_lib.get_pipeline_config_from_text(text, 'bad.config')
  configs = config_lib.create_configs_from_pipeline_proto(pipeline)
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match='model: no architecture set; '
                     r'expected center_net \{ \} or faster_rcnn \{ \}'):
    model_builder.build(configs['model'], is_training=True)


@pytest.mark.parametrize('text,message', [
    ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }",
     r"item 2 \(name 'b', id 1\): id 1 is already used by item 1"),
    ("item { id: 0 name: 'bg' }", 'id 0 is reserved for the background'),
    ("item { id: 1 }", r"item 1 \(name '', id 1\): has neither name nor "
     'display_name'),
    ("item { id: 1 name: 'a' ", r':1:\d+ : Expected "}"'),
    ("item { id: -3 name: 'a' }", 'ids must be positive integers'),
    ('', 'the label map has no items'),
    ("item { idd: 1 name: 'a' }", 'idd'),
])
def test_label_map_errors_name_the_file(tmp_path, text, message):
  path = tmp_path / 'labels.pbtxt'
  path.write_text(text)
  with pytest.raises(LabelMapError, match=message) as raised:
    label_map_util.load_label_map(str(path))
  assert str(path) in str(raised.value)


def test_missing_label_map(tmp_path):
  with pytest.raises(LabelMapError, match=f'Cannot read label map '
                     f'{tmp_path}/nope.pbtxt'):
    label_map_util.load_label_map(str(tmp_path / 'nope.pbtxt'))


_IMAGE = serving_inputs.IMAGE_TENSOR
_FLOAT = serving_inputs.FLOAT_IMAGE_TENSOR


@pytest.mark.parametrize('images,input_type,message', [
    (tf.zeros([8, 8, 3], tf.uint8), _IMAGE, r'input_tensor: expected uint8 '
     r'\[batch, height, width, 3\], got shape'),
    (tf.zeros([1, 8, 8, 4], tf.uint8), _IMAGE, '3 RGB channels'),
    (tf.zeros([1, 0, 8, 3], tf.uint8), _IMAGE, 'non-empty batch and image'),
    (tf.fill([1, 8, 8, 3], 0.5), _FLOAT, 'float_image_tensor expects pixel '
     r'values 0..255 \(multiply 0..1 images by 255\)'),
    (tf.fill([1, 8, 8, 3], -1.0), _FLOAT, 'float_image_tensor expects pixel '
     'values 0..255'),
])
def test_serving_image_inputs(images, input_type, message):
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    serving_inputs.validate_images(images, input_type)


def test_serving_float_images_in_0_255_pass():
  out = serving_inputs.validate_images(tf.fill([1, 4, 4, 3], 200.0), _FLOAT)
  assert out.shape == [1, 4, 4, 3]


@pytest.mark.parametrize('boxes,message', [
    ([[0.1, 0.1, 0.2, 0.5]], r'boxes: expected float32 \[batch, num_boxes, '
     r'4\]'),
    ([[[0.1, 0.1, 0.2]]], '4 coordinates per box'),
    ([[[0.1, 0.1, 0.2, 0.5]], [[0.1, 0.1, 0.2, 0.5]]],
     'with the batch size of input_tensor'),
    ([[[0.1, 0.1, 1.5, 0.5]]], r'boxes: coordinates must be normalized to '
     r'\[0, 1\]'),
    ([[[0.6, 0.1, 0.2, 0.5]]], 'ymin <= ymax and xmin <= xmax'),
    ([[[np.nan, 0.1, 0.2, 0.5]]], 'coordinates must be normalized'),
])
def test_serving_box_inputs(boxes, message):
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    serving_inputs.validate_boxes(tf.constant(boxes, tf.float32), 1)


def test_serving_string_inputs():
  with pytest.raises(tf.errors.InvalidArgumentError, match='input_tensor: '
                     r'expected string \[batch\] of encoded PNG/JPEG images'):
    serving_inputs.validate_strings(tf.constant('x'),
                                    serving_inputs.ENCODED_IMAGE_STRING_TENSOR)


@pytest.mark.parametrize('boxes,message', [
    ([[0.1, 0.2, 0.3]], r'--boxes: expected \[num_boxes, 4\]'),
    ([[0.5, 0.2, 0.1, 0.4]], 'expected ymin <= ymax and xmin <= xmax'),
    ([[0.1, 0.2, 1.3, 0.4]], r'coordinates must be normalized to \[0, 1\]'),
    ([[np.inf, 0.2, 0.3, 0.4]], 'non-finite values'),
    ('abc', 'expected numbers'),
])
def test_box_prompts_of_the_inference_api(boxes, message):
  with pytest.raises(DataError, match=message) as raised:
    image_io.check_boxes(boxes, name='--boxes')
  assert '--boxes' in str(raised.value)
