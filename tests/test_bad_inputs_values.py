"""Bad-input corpus, part 2: values that cannot be right are rejected or
counted, never silently used: float images in 0..1 (and other pixel
ranges) given to the inference API, boxes with no area dropped (and
counted) by the training input, a mask model configured without masks."""

import numpy as np
from PIL import Image
import pytest

import record_helpers
from deepmac_tf.builders import dataset_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.inference import image_io
from deepmac_tf.protos import image_resizer_pb2
from deepmac_tf.protos import input_reader_pb2


@pytest.mark.parametrize('array,message', [
    (np.full([8, 8, 3], 0.5, np.float32),
     r'image: a float image with values in 0..0.5; the model expects 0..255 '
     r'\(multiply by 255'),
    (np.full([8, 8, 3], 1.0, np.float64),
     r'image: a float image with values in 0..1;'),
    (np.full([8, 8, 3], -0.5, np.float32),
     r'image: pixel values range over -0.5..-0.5; expected 0..255'),
    (np.full([8, 8], 300, np.int32),
     r'image: pixel values range over 300..300; expected 0..255'),
    (np.full([8, 8, 3], np.nan, np.float32), 'image: the image holds NaN'),
])
def test_pixel_ranges_a_0_255_model_would_misread(array, message):
  with pytest.raises(DataError, match=message):
    image_io.load_image(array)


def test_float_0_255_and_black_float_images_are_accepted():
  image = image_io.load_image(np.full([4, 4, 3], 200.4, np.float32))
  assert image.dtype == np.uint8 and image[0, 0, 0] == 200
  assert image_io.load_image(np.zeros([4, 4, 3], np.float32)).max() == 0


def test_float_tiff_in_0_1_is_rejected_naming_the_file(tmp_path):
  path = str(tmp_path / 'float.tiff')
  Image.fromarray(np.full([8, 8], 0.25, np.float32), mode='F').save(path)
  with pytest.raises(DataError) as raised:
    image_io.load_image(path, name='--image')
  assert str(raised.value) == (
      f'--image ({path}): a float image with values in 0..0.25; the model '
      'expects 0..255 (multiply by 255, or pass uint8).')


def test_16_bit_png_is_scaled_not_clipped_to_white(tmp_path):
  path = str(tmp_path / 'deep.png')
  gray = np.array([[0, 256 * 100, 65535]], np.uint16)
  Image.fromarray(gray).save(path)
  assert Image.open(path).mode.startswith('I;16')
  image = image_io.load_image(path)
  assert image.dtype == np.uint8 and image.shape == (1, 3, 3)
  assert image[0, :, 0].tolist() == [0, 100, 255]


@pytest.mark.parametrize('image,message', [
    (Image.fromarray(np.full([4, 4], 0.5, np.float32), mode='F'),
     'a float image with values in 0..0.5'),
    (Image.fromarray(np.full([4, 4], 4000, np.int32), mode='I'),
     'pixel values range over 4000..4000; expected 0..255'),
])
def test_pil_images_get_the_same_pixel_checks(image, message):
  with pytest.raises(DataError, match=message):
    image_io.load_image(image, name='photo')


def _reader(path, **fields):
  reader = input_reader_pb2.InputReader(
      load_instance_masks=True, mask_type=input_reader_pb2.PNG_MASKS,
      shuffle=False, num_readers=1, num_epochs=1)
  reader.tf_record_input_reader.input_path.append(path)
  for name, value in fields.items():
    setattr(reader, name, value)
  return reader


def _with_box(example, index, box):
  proto = record_helpers.tf.train.Example.FromString(example)
  feature = proto.features.feature
  for key, value in zip(('ymin', 'xmin', 'ymax', 'xmax'), box):
    feature[f'image/object/bbox/{key}'].float_list.value[index] = value
  return proto.SerializeToString()


def test_degenerate_boxes_are_dropped_counted_and_reported(tmp_path, capfd):
  """Inverted (record 0), flat (record 2) and outside-the-image (record 3:
  no area once clipped) boxes; record 1 is good. Each simple_example has 2
  instances."""
  examples = [record_helpers.simple_example(seed=seed) for seed in range(4)]
  examples[0] = _with_box(examples[0], 0, (0.6, 0.1, 0.2, 0.5))
  examples[2] = _with_box(examples[2], 1, (0.2, 0.3, 0.5, 0.3))
  examples[3] = _with_box(examples[3], 0, (1.02, 0.1, 1.08, 0.5))
  path = record_helpers.write_tfrecord(tmp_path / 'degenerate.record',
                                       examples)
  resizer = image_resizer_pb2.ImageResizer()
  resizer.fixed_shape_resizer.height = 32
  resizer.fixed_shape_resizer.width = 48
  dataset = dataset_builder.build(_reader(path), 1, resizer,
                                  max_number_of_boxes=4, is_training=True)
  counts = [int(batch['num_groundtruth_boxes'][0]) for batch in dataset]
  assert counts == [1, 2, 1, 1]
  err = capfd.readouterr().err
  assert (f'WARNING: record 0 of file {path}: dropped 1 box(es) with no area '
          '(ymax <= ymin or xmax <= xmin after clipping to the image); 1 '
          'dropped so far') in err
  # Later drops are counted but not printed (next report: at 10).
  assert f'record 2 of file {path}: dropped' not in err


def test_mask_model_input_without_masks_fails_in_the_builder(tmp_path):
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  import pipeline_fixtures  # pylint: disable=g-import-not-at-top
  configs = config_lib.get_configs_from_pipeline_file(
      pipeline_fixtures.tiny_pipeline(
          tmp_path, 'train_input_reader { load_instance_masks: false }'))
  with pytest.raises(ConfigError, match='train_input_reader.'
                     'load_instance_masks: must be true to train a mask head'):
    dataset_builder.build_from_pipeline(configs, 'train')


def test_segment_checks_its_outputs_before_loading_anything(tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, os.path.join(repo, 'scripts', 'segment.py'),
       f'--saved_model_dir={tmp_path}/nope', f'--image={tmp_path}/nope.png',
       '--output=/proc/deepmac_out/overlay.png'],
      capture_output=True, text=True, timeout=60, cwd=repo,
      env=dict(os.environ, PYTHONPATH=repo))
  assert result.returncode == 1
  assert result.stderr.strip() == (
      'ERROR: --output: cannot write to /proc/deepmac_out (No such file or '
      'directory).')


def test_segment_checks_the_image_before_loading_tensorflow(tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  image = str(tmp_path / 'float.tiff')
  Image.fromarray(np.full([8, 8], 0.5, np.float32), mode='F').save(image)
  probe = ('import runpy, sys; sys.argv = sys.argv[1:]\n'
           'try:\n  runpy.run_path(sys.argv[0], run_name="__main__")\n'
           'finally:\n  print("tensorflow" in sys.modules)')
  result = subprocess.run(
      [sys.executable, '-c', probe, os.path.join(repo, 'scripts',
                                                 'segment.py'),
       f'--saved_model_dir={tmp_path}/export', f'--image={image}',
       f'--output={tmp_path}/overlay.png'],
      capture_output=True, text=True, timeout=60, cwd=repo,
      env=dict(os.environ, PYTHONPATH=repo))
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f'ERROR: --image ({image}): a float image with values in 0..0.5; the '
      'model expects 0..255 (multiply by 255, or pass uint8).')
  assert result.stdout.split() == ['False']
