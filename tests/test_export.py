"""SavedModel export: every input type, fresh-process reload with plain
TensorFlow, equality with the checkpointed model, atomicity, bad inputs."""

import fcntl
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pipeline_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.ops import mask_pasting  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUT_TYPES = ('image_tensor', 'float_image_tensor',
               'encoded_image_string_tensor', 'tf_example',
               'image_and_boxes_tensor')
DETECTOR_FREE = ('model { center_net { deepmac_mask_estimation { '
                 'detector_free: true } } }')
K, S, C = 10, 16, 10  # max_box_predictions, mask_size, num_classes (tiny).
BOXES = np.array([[[0.1, 0.2, 0.6, 0.7], [0.0, 0.0, 1.0, 1.0],
                   [0.5, 0.4, 0.9, 0.95]]], np.float32)


def make_trained_dir(root, config_override='', data_root=None):
  """Tiny pipeline + a training-style checkpoint (step 3) of a fresh model.

  Returns:
    (pipeline config path, model_dir holding ckpt-1).
  """
  root = str(root)
  pipeline_path = pipeline_fixtures.tiny_pipeline(
      root, config_override, data_root=data_root or root)
  configs = config_lib.get_configs_from_pipeline_file(pipeline_path)
  model, resizer = exporter.build_model_and_resizer(configs['model'])
  exporter.create_variables(model, resizer)
  model_dir = os.path.join(root, 'model_dir')
  checkpoint = tf.train.Checkpoint(step=tf.Variable(3, dtype=tf.int64),
                                   model=model)
  tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=2,
                             checkpoint_name='ckpt').save()
  return pipeline_path, model_dir


def export(pipeline_path, model_dir, out_dir, input_type, **kwargs):
  pipeline = config_lib.get_pipeline_config_from_file(pipeline_path)
  return exporter.export_inference_graph(input_type, pipeline, model_dir,
                                         str(out_dir), **kwargs)


def sample_image(height=48, width=80, seed=0):
  """A non-square uint8 image (exercises keep-aspect resize + pad)."""
  return np.random.RandomState(seed).randint(
      0, 256, [height, width, 3]).astype(np.uint8)


def encode_png(image):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def tf_example(image):
  feature = {'image/encoded': tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[encode_png(image)]))}
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def shared_exports(tmp_path_factory):
  """The tiny model's checkpoint (make_trained_dir) and its export for each
  of INPUT_TYPES (image_tensor and image_and_boxes_tensor with reframed
  masks), made once per pytest run: the test processes of pytest-xdist
  share them through a lock file. Read-only to the tests.

  Returns:
    {'pipeline': config path, 'model_dir': ..., 'exports': {input_type:
     export directory}}.
  """
  base = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    base = base.parent  # The run's folder, above each worker's own.
  root = base / 'shared_tiny_exports'
  done = root / 'done.json'
  with open(base / 'shared_tiny_exports.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(root, ignore_errors=True)  # What a failed build left.
      pipeline_path, model_dir = make_trained_dir(root)
      exports = {}
      for input_type in INPUT_TYPES:
        out = root / f'exported_{input_type}'
        reframed = input_type in ('image_tensor', 'image_and_boxes_tensor')
        export(pipeline_path, model_dir, out, input_type,
               add_reframed_masks=reframed)
        exports[input_type] = str(out)
      done.write_text(json.dumps({'pipeline': pipeline_path,
                                  'model_dir': model_dir,
                                  'exports': exports}))
  return json.loads(done.read_text())


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  shared = shared_exports(tmp_path_factory)
  return {'root': tmp_path_factory.mktemp('export'),
          'pipeline': shared['pipeline'], 'model_dir': shared['model_dir'],
          'exports': shared['exports']}


@pytest.fixture(scope='module')
def exports(trained):
  return trained['exports']


_RELOAD_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
exports, inputs_path, out_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
inputs = np.load(inputs_path)
report = {}
for input_type, directory in exports.items():
  loaded = tf.saved_model.load(directory + '/saved_model')
  entry = report[input_type] = {}
  for name, fn in loaded.signatures.items():
    args = sorted(fn.structured_input_signature[1])
    feeds = {}
    if args == ['boxes', 'input_tensor']:
      feeds = {'input_tensor': tf.constant(inputs['image'][None]),
               'boxes': tf.constant(inputs['boxes'])}
    elif input_type == 'float_image_tensor' and name == 'serving_default':
      feeds = {'input_tensor': tf.constant(inputs['image'][None], tf.float32)}
    elif input_type == 'encoded_image_string_tensor' and (
        name == 'serving_default'):
      feeds = {'input_tensor': tf.constant([inputs['png'].tobytes()])}
    elif input_type == 'tf_example' and name == 'serving_default':
      feeds = {'input_tensor': tf.constant([inputs['example'].tobytes()])}
    else:
      feeds = {'input_tensor': tf.constant(inputs['image'][None])}
    outputs = fn(**feeds)
    entry[name] = {'args': args, 'outputs': {
        k: [v.dtype.name, v.shape.as_list()] for k, v in outputs.items()}}
    np.savez(f'{out_dir}/{input_type}.{name}.npz',
             **{k: v.numpy() for k, v in outputs.items()})
    if name == 'serving_default' and args == ['input_tensor'] and (
        input_type in ('image_tensor', 'float_image_tensor')):
      # Dynamic height / width and batch: a second, square size, batch 2.
      dtype = tf.uint8 if input_type == 'image_tensor' else tf.float32
      other = fn(input_tensor=tf.zeros([2, 64, 40, 3], dtype))
      entry['dynamic'] = {k: v.shape.as_list() for k, v in other.items()}
assert not any(m.startswith('deepmac_tf') for m in sys.modules)
print(json.dumps(report))
'''


@pytest.fixture(scope='module')
def reloaded(exports, trained):
  """Runs every export's signatures in a fresh, TF-only process."""
  image = sample_image()
  work = trained['root'] / 'reload'
  work.mkdir()
  inputs_path = str(work / 'inputs.npz')
  np.savez(inputs_path, image=image, boxes=BOXES,
           png=np.frombuffer(encode_png(image), np.uint8),
           example=np.frombuffer(tf_example(image), np.uint8))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PYTHONPATH', None)
  result = subprocess.run(
      [sys.executable, '-c', _RELOAD_SCRIPT, json.dumps(exports), inputs_path,
       str(work)], capture_output=True, text=True, timeout=300, env=env,
      cwd=str(work))
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])

  def outputs(input_type, signature='serving_default'):
    with np.load(str(work / f'{input_type}.{signature}.npz')) as data:
      return dict(data)
  return {'report': report, 'outputs': outputs, 'image': image}


def test_export_layout(exports):
  for input_type, directory in exports.items():
    assert sorted(os.listdir(directory)) == ['checkpoint', 'pipeline.config',
                                             'saved_model']
    latest = tf.train.latest_checkpoint(os.path.join(directory, 'checkpoint'))
    assert latest.endswith('ckpt-0')
    extra = os.path.join(directory, 'saved_model', 'assets.extra')
    with open(os.path.join(extra, 'export_metadata.json')) as f:
      metadata = json.load(f)
    assert metadata['input_type'] == input_type
    assert metadata['checkpoint_step'] == 3
    assert metadata['mask_size'] == S
    assert os.path.exists(os.path.join(extra, 'label_map.pbtxt'))
    config_lib.get_pipeline_config_from_file(
        os.path.join(directory, 'pipeline.config'))
  # No staging folders left next to the exports.
  parent = os.path.dirname(exports['image_tensor'])
  assert not [n for n in os.listdir(parent) if '.staging-' in n]


def test_fresh_process_signatures_names_dtypes_shapes(reloaded):
  report = reloaded['report']
  detection = {'detection_boxes': [1, K, 4], 'detection_scores': [1, K],
               'detection_classes': [1, K], 'num_detections': [1],
               'detection_multiclass_scores': [1, K, C],
               'detection_masks': [1, K, S, S]}
  for input_type in INPUT_TYPES:
    signatures = report[input_type]
    boxes_name = ('serving_default' if input_type == 'image_and_boxes_tensor'
                  else 'image_and_boxes_tensor')
    detect_name = ('image_tensor' if input_type == 'image_and_boxes_tensor'
                   else 'serving_default')
    assert signatures[boxes_name]['args'] == ['boxes', 'input_tensor']
    assert signatures[detect_name]['args'] == ['input_tensor']
    outputs = signatures[detect_name]['outputs']
    for name, shape in detection.items():
      assert outputs[name] == ['float32', shape], (input_type, name)
    box_outputs = signatures[boxes_name]['outputs']
    assert box_outputs['detection_masks'] == ['float32', [1, 3, S, S]]
    reframed = input_type in ('image_tensor', 'image_and_boxes_tensor')
    assert ('detection_masks_reframed' in outputs) == reframed
    if reframed:
      assert outputs['detection_masks_reframed'] == ['uint8', [1, K, 48, 80]]
      assert box_outputs['detection_masks_reframed'] == ['uint8',
                                                         [1, 3, 48, 80]]
  assert report['image_tensor']['dynamic']['detection_masks_reframed'] == [
      2, K, 64, 40]
  assert report['float_image_tensor']['dynamic']['detection_boxes'] == [2, K,
                                                                        4]


def _reference_outputs(trained, image, boxes):
  """The checkpointed model, run in this process on the same inputs."""
  configs = config_lib.get_configs_from_pipeline_file(trained['pipeline'])
  model, resizer = exporter.build_model_and_resizer(configs['model'])
  exporter.create_variables(model, resizer)
  exporter.restore_model(model,
                         tf.train.latest_checkpoint(trained['model_dir']))
  resized, _, true_shape = resizer(tf.constant(image))
  predictions = model.predict(model.normalize_images(resized[None]), training=False)
  detections = model.postprocess(predictions, true_shape[None])
  prompted = model.predict_masks_from_boxes(predictions, tf.constant(boxes),
                                            true_shape[None])
  return ({k: v.numpy() for k, v in detections.items()},
          prompted['detection_masks'].numpy())


def test_reloaded_savedmodel_matches_checkpointed_model(reloaded, trained):
  detections, prompted_masks = _reference_outputs(trained, reloaded['image'],
                                                  BOXES)
  for input_type in INPUT_TYPES:
    detect_name = ('image_tensor' if input_type == 'image_and_boxes_tensor'
                   else 'serving_default')
    boxes_name = ('serving_default' if input_type == 'image_and_boxes_tensor'
                  else 'image_and_boxes_tensor')
    served = reloaded['outputs'](input_type, detect_name)
    for key in ('detection_boxes', 'detection_scores',
                'detection_multiclass_scores', 'detection_masks',
                'num_detections'):
      np.testing.assert_allclose(served[key], detections[key], atol=1e-5,
                                 err_msg=f'{input_type} {key}')
    np.testing.assert_array_equal(served['detection_classes'],
                                  detections['detection_classes'] + 1)
    prompted = reloaded['outputs'](input_type, boxes_name)
    np.testing.assert_allclose(prompted['detection_masks'], prompted_masks,
                               atol=1e-5)
    np.testing.assert_allclose(prompted['detection_boxes'], BOXES)


def test_reframed_masks_equal_pasted_box_masks(reloaded):
  for input_type, signature, boxes_key in (
      ('image_tensor', 'serving_default', 'detection_boxes'),
      ('image_and_boxes_tensor', 'serving_default', 'detection_boxes')):
    served = reloaded['outputs'](input_type, signature)
    pasted = mask_pasting.paste_box_masks(
        served['detection_masks'], served[boxes_key], 48, 80).numpy()
    expected = (pasted > 0.5).astype(np.uint8)
    reframed = served['detection_masks_reframed']
    assert reframed.dtype == np.uint8 and set(np.unique(reframed)) <= {0, 1}
    # Equal up to pixels whose probability sits on the 0.5 threshold.
    assert np.mean(reframed != expected) < 1e-3
    assert np.all(reframed[np.abs(pasted - 0.5) > 1e-4] ==
                  expected[np.abs(pasted - 0.5) > 1e-4])


def test_export_is_atomic(trained, exports, tmp_path, monkeypatch):
  # A copy of an export (the shared ones are read-only to the tests).
  target = str(tmp_path / 'exported_float_image_tensor')
  shutil.copytree(exports['float_image_tensor'], target)
  pb = os.path.join(target, 'saved_model', 'saved_model.pb')
  before = open(pb, 'rb').read()

  def fail(*args, **kwargs):
    raise RuntimeError('disk full (injected)')

  monkeypatch.setattr(tf.saved_model, 'save', fail)
  with pytest.raises(RuntimeError, match='injected'):
    export(trained['pipeline'], trained['model_dir'], target, 'image_tensor')
  assert open(pb, 'rb').read() == before  # The previous export is intact.
  assert sorted(os.listdir(target)) == ['checkpoint', 'pipeline.config',
                                        'saved_model']
  fresh = trained['root'] / 'never_written'
  with pytest.raises(RuntimeError, match='injected'):
    export(trained['pipeline'], trained['model_dir'], fresh, 'image_tensor')
  assert not fresh.exists()
  parent = os.path.dirname(target)
  assert not [n for n in os.listdir(parent) if '.staging-' in n or '.old-' in n]


def test_bad_savedmodel_inputs_give_clear_errors(exports):
  loaded = tf.saved_model.load(os.path.join(
      exports['image_and_boxes_tensor'], 'saved_model'))
  boxes_fn = loaded.signatures['serving_default']
  detect_fn = loaded.signatures['image_tensor']
  image = tf.constant(sample_image()[None])
  cases = [
      (detect_fn, {'input_tensor': image[0]}, r'input_tensor: expected uint8 '
       r'\[batch, height, width, 3\], got shape\] \[48 80 3\]'),
      (detect_fn, {'input_tensor': tf.zeros([1, 8, 8, 4], tf.uint8)},
       r'3 RGB channels'),
      (boxes_fn, {'input_tensor': image, 'boxes': tf.constant(
          [[[0.1, 0.1, 1.5, 0.5]]])}, r'boxes: coordinates must be '
       r'normalized to \[0, 1\]'),
      (boxes_fn, {'input_tensor': image, 'boxes': tf.constant(
          [[[0.6, 0.1, 0.2, 0.5]]])}, r'ymin <= ymax and xmin <= xmax'),
      (boxes_fn, {'input_tensor': image, 'boxes': tf.constant(
          [[0.1, 0.1, 0.2, 0.5]])}, r'boxes: expected float32 \[batch, '
       r'num_boxes, 4\]'),
  ]
  for fn, feeds, pattern in cases:
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
      fn(**feeds)
  # No boxes is fine: zero masks.
  empty = boxes_fn(input_tensor=image, boxes=tf.zeros([1, 0, 4]))
  assert empty['detection_masks'].shape == [1, 0, S, S]


def test_checkpoint_errors(trained, tmp_path):
  pipeline = config_lib.get_pipeline_config_from_file(trained['pipeline'])
  with pytest.raises(ConfigError, match='does not exist'):
    exporter.export_inference_graph('image_tensor', pipeline,
                                    str(tmp_path / 'nope'), str(tmp_path / 'o'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ConfigError, match='no checkpoint in'):
    exporter.export_inference_graph('image_tensor', pipeline,
                                    str(tmp_path / 'empty'), str(tmp_path / 'o'))
  with pytest.raises(ConfigError, match='--input_type: unknown value'):
    exporter.export_inference_graph('jpeg', pipeline, trained['model_dir'],
                                    str(tmp_path / 'o'))
  # A checkpoint of another model (different embedding sizes).
  other = ('model { center_net { deepmac_mask_estimation { dim: 4 '
           'pixel_embedding_dim: 4 } } }')
  _, other_dir = make_trained_dir(tmp_path / 'other', other,
                                  data_root=trained['root'])
  with pytest.raises(ConfigError, match='does not match the model built'):
    exporter.export_inference_graph('image_tensor', pipeline, other_dir,
                                    str(tmp_path / 'o'))
  assert not (tmp_path / 'o').exists()


def test_detector_free_exports_only_boxes(trained, tmp_path):
  pipeline_path, model_dir = make_trained_dir(tmp_path, DETECTOR_FREE,
                                              data_root=trained['root'])
  with pytest.raises(ConfigError, match='detector-free.*only '
                     '--input_type=image_and_boxes_tensor'):
    export(pipeline_path, model_dir, tmp_path / 'o', 'image_tensor')
  export(pipeline_path, model_dir, tmp_path / 'o', 'image_and_boxes_tensor')
  loaded = tf.saved_model.load(str(tmp_path / 'o' / 'saved_model'))
  assert list(loaded.signatures) == ['serving_default']
  out = loaded.signatures['serving_default'](
      input_tensor=tf.constant(sample_image()[None]),
      boxes=tf.constant(BOXES))
  assert out['detection_masks'].shape == [1, 3, S, S]


def test_exporter_script(trained, tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  script = os.path.join(REPO, 'scripts', 'exporter_main_v2.py')
  out = tmp_path / 'exported'
  override = ('model { center_net { object_center_params { '
              'max_box_predictions: 5 } } }')
  result = subprocess.run(
      [sys.executable, script, '--input_type=image_tensor',
       f'--pipeline_config_path={trained["pipeline"]}',
       f'--trained_checkpoint_dir={trained["model_dir"]}',
       f'--output_directory={out}', f'--config_override={override}',
       '--add_reframed_masks'], capture_output=True, text=True, timeout=300,
      env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Exported checkpoint step 3' in result.stdout
  assert 'max_box_predictions: 5' in (out / 'pipeline.config').read_text()
  loaded = tf.saved_model.load(str(out / 'saved_model'))
  outputs = loaded.signatures['serving_default'](
      input_tensor=tf.constant(sample_image()[None]))
  assert outputs['detection_masks_reframed'].shape == [1, 5, 48, 80]
  bad = subprocess.run(
      [sys.executable, script, f'--pipeline_config_path={trained["pipeline"]}',
       f'--trained_checkpoint_dir={tmp_path / "missing"}',
       f'--output_directory={tmp_path / "x"}'], capture_output=True,
      text=True, timeout=300, env=env)
  assert bad.returncode == 1
  assert 'ERROR: --trained_checkpoint_dir:' in bad.stderr
  assert 'Traceback' not in bad.stderr
