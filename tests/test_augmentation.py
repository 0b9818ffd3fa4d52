"""Tests for deepmac_tf.data.augmentation: image / boxes / masks consistency."""

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.data import augmentation as aug
from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import preprocessor_pb2
import record_helpers as rh

IMAGE = InputFields.IMAGE
BOXES = InputFields.BOXES
MASKS = InputFields.INSTANCE_MASKS
CLASSES = InputFields.CLASSES
AREA = InputFields.AREA
PIXEL_BOXES = ((2, 3, 12, 20), (20, 24, 40, 46), (30, 5, 47, 15))


def _tensors(height=48, width=56, pixel_boxes=PIXEL_BOXES):
  """One image's tensor dict; per-instance fields encode the instance."""
  n = len(pixel_boxes)
  rng = np.random.RandomState(0)
  ids = np.arange(1, n + 1)
  return {
      IMAGE: tf.constant(rng.uniform(0, 255, [height, width, 3]), tf.float32),
      BOXES: tf.constant(rh.normalized_boxes(height, width, pixel_boxes)),
      MASKS: tf.constant(rh.box_masks(height, width, pixel_boxes)),
      CLASSES: tf.constant(ids, tf.int32),
      AREA: tf.constant(ids, tf.float32),
      InputFields.WEIGHTS: tf.constant(ids / 10.0, tf.float32),
      InputFields.MASK_WEIGHTS: tf.ones([n]),
      InputFields.IS_CROWD: tf.constant(ids % 2 == 0),
      InputFields.SOURCE_ID: tf.constant('img'),
  }


def _assert_consistent(out):
  """Each mask's tight box equals its box within a pixel; fields aligned."""
  masks, boxes = out[MASKS].numpy(), out[BOXES].numpy()
  image = out[IMAGE]
  height, width = masks.shape[1:]
  assert tuple(image.shape[:2]) == (height, width)
  assert masks.shape[0] == boxes.shape[0] == out[CLASSES].shape[0]
  scale = np.array([height, width, height, width])
  for mask, box in zip(masks, boxes):
    ys, xs = np.nonzero(mask)
    assert len(ys), 'a kept instance has an empty mask'
    tight = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
    np.testing.assert_allclose(tight, box * scale, atol=1.0)
  assert np.all(boxes >= 0) and np.all(boxes <= 1)
  # Per-instance fields moved together (they all encode the instance id).
  ids = out[CLASSES].numpy()
  np.testing.assert_array_equal(out[AREA].numpy(), ids)
  np.testing.assert_allclose(out[InputFields.WEIGHTS].numpy(), ids / 10.0)
  np.testing.assert_array_equal(out[InputFields.IS_CROWD].numpy(), ids % 2 == 0)
  assert out[InputFields.SOURCE_ID].numpy() == b'img'


@pytest.mark.parametrize('fn,np_fn', [
    (aug.random_horizontal_flip, lambda x: x[:, ::-1]),
    (aug.random_vertical_flip, lambda x: x[::-1]),
    (aug.random_rotation90, lambda x: np.rot90(x, 1)),
])
def test_flips_and_rotation(fn, np_fn):
  tensors = _tensors()
  out = fn(tensors, probability=1.0)
  _assert_consistent(out)
  np.testing.assert_array_equal(out[IMAGE].numpy(), np_fn(tensors[IMAGE]))
  unchanged = fn(tensors, probability=0.0)
  np.testing.assert_array_equal(unchanged[IMAGE], tensors[IMAGE])
  np.testing.assert_array_equal(unchanged[BOXES], tensors[BOXES])


@pytest.mark.parametrize('fn,times', [(aug.random_horizontal_flip, 2),
                                      (aug.random_vertical_flip, 2),
                                      (aug.random_rotation90, 4)])
def test_repeated_flip_or_rotation_is_identity(fn, times):
  tensors = _tensors()
  out = tensors
  for _ in range(times):
    out = fn(out, probability=1.0)
  for key in (IMAGE, MASKS):
    np.testing.assert_array_equal(out[key], tensors[key])
  np.testing.assert_allclose(out[BOXES], tensors[BOXES], atol=1e-6)


def test_random_image_scale():
  tf.random.set_seed(1)
  for _ in range(4):
    out = aug.random_image_scale(_tensors(), 0.5, 1.5)
    _assert_consistent(out)
    height = out[IMAGE].shape[0]
    assert 24 <= height <= 72


def test_random_absolute_pad_image():
  tf.random.set_seed(2)
  tensors = _tensors()
  sizes = set()
  for _ in range(6):
    out = aug.random_absolute_pad_image(tensors, 9, 5, pad_color=[1, 2, 3])
    _assert_consistent(out)
    height, width = out[IMAGE].shape[:2]
    assert 48 <= height < 48 + 9 and 56 <= width < 56 + 5
    sizes.add((height, width))
    # The original sits at the offset of its first box; padding has the colour.
    image = out[IMAGE].numpy()
    dy = int(round(out[BOXES][0, 0].numpy() * height)) - 2
    dx = int(round(out[BOXES][0, 1].numpy() * width)) - 3
    np.testing.assert_allclose(image[dy:dy + 48, dx:dx + 56], tensors[IMAGE],
                               atol=1e-4)
    if height > 48:
      np.testing.assert_allclose(image[-1, 0], [1, 2, 3])
  assert len(sizes) > 1
  # No padding range: image unchanged.
  same = aug.random_absolute_pad_image(tensors, 1, 1)
  np.testing.assert_array_equal(same[IMAGE], tensors[IMAGE])


def test_random_square_crop_by_scale_removes_outside_instances():
  tf.random.set_seed(3)
  removed = 0
  for _ in range(8):
    out = aug.random_square_crop_by_scale(_tensors(), max_border=16,
                                          scale_min=0.4, scale_max=1.2,
                                          num_scales=3)
    side = out[IMAGE].shape[0]
    assert out[IMAGE].shape[1] == side
    assert side in (int(0.4 * 56), int(0.8 * 56), int(1.2 * 56))
    _assert_consistent(out)
    removed += 3 - out[CLASSES].shape[0]
  assert removed > 0


def test_random_scale_crop_and_pad_to_square():
  tf.random.set_seed(4)
  removed = 0
  for _ in range(8):
    out = aug.random_scale_crop_and_pad_to_square(
        _tensors(), output_size=40, scale_min=0.5, scale_max=2.5)
    assert out[IMAGE].shape[:2] == (40, 40)
    _assert_consistent(out)
    removed += 3 - out[CLASSES].shape[0]
  assert removed > 0


def test_clip_and_prune():
  tensors = _tensors()
  tensors[BOXES] = tf.constant([[-0.5, -0.5, -0.1, 0.3], [0.2, 0.2, 1.5, 1.5],
                                [0.5, 1.0, 0.7, 1.2]])
  out = instances.clip_and_prune(tensors)
  np.testing.assert_allclose(out[BOXES], [[0.2, 0.2, 1.0, 1.0]])
  np.testing.assert_array_equal(out[CLASSES], [2])
  assert out[MASKS].shape == (1, 48, 56)
  np.testing.assert_array_equal(out[MASKS][0], tensors[MASKS][1])


@pytest.mark.parametrize('mode', aug.geometric.JITTER_MODES)
def test_jitter_boxes(mode):
  tensors = _tensors()
  boxes = tensors[BOXES].numpy()
  out = aug.random_jitter_boxes(tensors, ratio=0.2, jitter_mode=mode)
  jittered = out[BOXES].numpy()
  np.testing.assert_array_equal(out[MASKS], tensors[MASKS])  # Boxes only.
  assert np.all(jittered >= 0) and np.all(jittered <= 1)
  sizes = boxes[:, 2:] - boxes[:, :2]
  assert np.all(np.abs(jittered - boxes) <= 0.1 * np.tile(sizes, 2) + 1e-6)
  if 'symmetric' in mode:
    np.testing.assert_allclose(jittered[:, :2] + jittered[:, 2:],
                               boxes[:, :2] + boxes[:, 2:], atol=1e-5)
  new_sizes = jittered[:, 2:] - jittered[:, :2]
  if mode.startswith('shrink'):
    assert np.all(new_sizes <= sizes + 1e-6)
  if mode.startswith('expand') and 'symmetric' not in mode:
    assert np.all(jittered[:, :2] <= boxes[:, :2] + 1e-6)
    assert np.all(jittered[:, 2:] >= boxes[:, 2:] - 1e-6)
  if mode.endswith('_xy'):
    np.testing.assert_allclose(new_sizes[:, 0] / sizes[:, 0],
                               new_sizes[:, 1] / sizes[:, 1], rtol=1e-4)


@pytest.mark.parametrize('fn,kwargs', [
    (aug.random_adjust_brightness, {'max_delta': 0.3}),
    (aug.random_adjust_contrast, {'min_delta': 0.5, 'max_delta': 0.6}),
    (aug.random_adjust_hue, {'max_delta': 0.2}),
    (aug.random_adjust_saturation, {'min_delta': 0.2, 'max_delta': 0.3}),
])
def test_color_steps_change_only_the_image(fn, kwargs):
  tensors = _tensors()
  out = fn(tensors, **kwargs)
  image = out[IMAGE].numpy()
  assert image.shape == (48, 56, 3) and image.min() >= 0 and image.max() <= 255
  assert not np.allclose(image, tensors[IMAGE])
  for key in (BOXES, MASKS, CLASSES):
    np.testing.assert_array_equal(out[key], tensors[key])


def _steps(*texts):
  return [text_format.Parse(t, preprocessor_pb2.PreprocessingStep())
          for t in texts]


def test_builder_runs_every_step_in_a_dataset():
  augment = aug.build_augmentation_fn(_steps(
      'random_horizontal_flip { probability: 1.0 }',
      'random_vertical_flip {}', 'random_rotation90 {}',
      'random_image_scale { min_scale_ratio: 0.9 max_scale_ratio: 1.1 }',
      'random_adjust_brightness {}', 'random_adjust_contrast {}',
      'random_adjust_hue {}', 'random_adjust_saturation {}',
      'random_jitter_boxes { ratio: 0.0 jitter_mode: SHRINK_SYMMETRIC }',
      'random_absolute_pad_image { max_height_padding: 4 '
      'max_width_padding: 4 }',
      'random_square_crop_by_scale { max_border: 8 scale_min: 0.9 }',
      'random_scale_crop_and_pad_to_square { output_size: 40 scale_min: 0.8 '
      'scale_max: 1.2 }'))
  dataset = tf.data.Dataset.from_tensors(_tensors()).repeat(3).map(augment)
  for out in dataset:
    assert out[IMAGE].shape == (40, 40, 3)
    _assert_consistent(out)


def test_builder_without_steps_is_identity():
  tensors = _tensors()
  assert aug.build_augmentation_fn([])(tensors) is tensors


@pytest.mark.parametrize('text,field', [
    ('random_horizontal_flip { keypoint_flip_permutation: [1, 0] }',
     'options[0].random_horizontal_flip.keypoint_flip_permutation'),
    ('random_rotation90 { keypoint_rot_permutation: 0 }',
     'random_rotation90.keypoint_rot_permutation'),
    ('random_vertical_flip { probability: 1.5 }',
     'random_vertical_flip.probability'),
    ('random_image_scale { min_scale_ratio: 2.0 max_scale_ratio: 1.0 }',
     'random_image_scale'),
    ('random_adjust_hue { max_delta: 0.9 }', 'random_adjust_hue.max_delta'),
    ('random_absolute_pad_image { pad_color: [1, 2] }',
     'random_absolute_pad_image.pad_color'),
    ('random_square_crop_by_scale { num_scales: 0 }',
     'random_square_crop_by_scale.num_scales'),
    ('', 'options[0]: sets no preprocessing step'),
])
def test_builder_errors_name_the_field(text, field):
  with pytest.raises(ConfigError) as info:
    aug.build_augmentation_fn(_steps(text))
  assert field in str(info.value)
  assert 'train_config.data_augmentation_options[0]' in str(info.value)
