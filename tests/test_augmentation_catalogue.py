"""The OD API's whole PreprocessingStep catalogue (issue 13, part 3): every
step parses with the OD API's field names and numbers; the implemented ones
keep image, boxes and masks consistent and match hand-computed cases; the
others fail at build time naming the step."""

import json
import os

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.data import augmentation as aug
from deepmac_tf.data.augmentation import box_crops
from deepmac_tf.data.augmentation import builder
from deepmac_tf.data.augmentation import catalogue
from deepmac_tf.data.augmentation import geometric
from deepmac_tf.data.augmentation import labels
from deepmac_tf.data.augmentation import pixels
from deepmac_tf.data.augmentation import resizing
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import preprocessor_pb2
import test_augmentation as base

IMAGE, BOXES, MASKS = base.IMAGE, base.BOXES, base.MASKS
CLASSES = base.CLASSES
FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures',
                       'odapi_2_8_proto_fields.json')


def _odapi_messages():
  with open(FIXTURE, encoding='utf-8') as f:
    return json.load(f)['preprocessor.proto']


def test_every_odapi_message_and_field_has_its_name_and_number():
  for message, fields in _odapi_messages().items():
    ours = getattr(preprocessor_pb2, message.split('.')[0])
    for part in message.split('.')[1:]:
      ours = getattr(ours, part)
    by_name = {f.name: f for f in ours.DESCRIPTOR.fields}
    for name, (number, label, type_name, *default) in fields.items():
      assert name in by_name, f'{message}.{name}'
      field = by_name[name]
      assert field.number == number, f'{message}.{name}'
      assert field.is_repeated == (label == 'repeated'), f'{message}.{name}'
      if default and field.type == field.TYPE_FLOAT:
        assert np.float32(field.default_value) == np.float32(float(
            default[0])), f'{message}.{name}'


def test_every_step_is_implemented_or_refused_by_name():
  names = [f.name for f in preprocessor_pb2.PreprocessingStep.DESCRIPTOR.fields]
  assert sorted(names) == sorted(_odapi_messages()['PreprocessingStep'])
  for name in names:
    assert (name in builder.STEPS) != (name in catalogue.UNSUPPORTED_STEPS)
  for name in catalogue.UNSUPPORTED_STEPS:
    step = preprocessor_pb2.PreprocessingStep()
    getattr(step, name).SetInParent()
    with pytest.raises(ConfigError, match=(
        rf'options\[0\]\.{name}: supported by the OD API, not by '
        rf'deepmac_tf: {name} \(')):
      aug.build_augmentation_fn([step])


# -- box crops ---------------------------------------------------------------


def _crop_case():
  """10 x 20 image; A inside the window, B 25% inside, C outside."""
  pixel_boxes = ((2, 6, 6, 10), (4, 1, 8, 9), (1, 16, 5, 19))
  return base._tensors(10, 20, pixel_boxes)


def test_crop_to_window_hand_case():
  out = box_crops.crop_to_window(_crop_case(), [0, 5], [10, 10],
                                 overlap_thresh=0.3)
  # B overlaps columns 5..9 of 1..9: 4/8 of its area -> kept at 0.3 ...
  np.testing.assert_array_equal(out[CLASSES].numpy(), [1, 2])
  np.testing.assert_allclose(out[BOXES].numpy(), [
      [0.2, 0.1, 0.6, 0.5], [0.4, 0.0, 0.8, 0.4]], atol=1e-6)
  assert out[IMAGE].shape == (10, 10, 3)
  base._assert_consistent(out)
  # ... and dropped at 0.6; C (outside) is always dropped.
  strict = box_crops.crop_to_window(_crop_case(), [0, 5], [10, 10],
                                    overlap_thresh=0.6)
  np.testing.assert_array_equal(strict[CLASSES].numpy(), [1])


def test_crop_without_clip_keeps_boxes_beyond_the_window():
  out = box_crops.crop_to_window(_crop_case(), [0, 5], [10, 10],
                                 overlap_thresh=0.3, clip_boxes=False)
  np.testing.assert_allclose(out[BOXES].numpy()[1], [0.4, -0.4, 0.8, 0.4],
                             atol=1e-6)


def test_random_crop_image_whole_image_and_random_coef():
  tensors = base._tensors()
  # Area 1 with the image's own aspect ratio: the window is the image.
  whole = box_crops.random_crop_image(
      tensors, min_object_covered=0.0, aspect_ratio_range=(1.0, 1.2),
      area_range=(1.0, 1.0), seed=1)
  np.testing.assert_allclose(whole[BOXES].numpy(), tensors[BOXES].numpy(),
                             atol=1e-6)
  never = box_crops.random_crop_image(tensors, random_coef=1.0, seed=1)
  np.testing.assert_array_equal(never[IMAGE].numpy(), tensors[IMAGE].numpy())


def test_random_crop_image_keeps_instances_consistent():
  for seed in range(4):
    out = box_crops.random_crop_image(base._tensors(), min_object_covered=0.3,
                                      area_range=(0.3, 1.0), seed=seed)
    base._assert_consistent(out)


def test_random_pad_image_hand_case():
  tensors = base._tensors(10, 20, ((2, 6, 6, 10),))
  out = geometric.random_pad_image(tensors, min_image_size=[14, 26],
                                   max_image_size=[14, 26],
                                   pad_color=[1.0, 2.0, 3.0], seed=3)
  assert out[IMAGE].shape == (14, 26, 3)
  mask = out[MASKS].numpy()[0]
  ys, xs = np.nonzero(mask)
  offset_y, offset_x = ys.min() - 2, xs.min() - 6
  assert 0 <= offset_y <= 3 and 0 <= offset_x <= 5
  np.testing.assert_allclose(out[BOXES].numpy()[0], [
      (2 + offset_y) / 14, (6 + offset_x) / 26, (6 + offset_y) / 14,
      (10 + offset_x) / 26], atol=1e-6)
  image = out[IMAGE].numpy()
  np.testing.assert_array_equal(
      image[offset_y:offset_y + 10, offset_x:offset_x + 20],
      tensors[IMAGE].numpy())
  outside = np.ones([14, 26], bool)
  outside[offset_y:offset_y + 10, offset_x:offset_x + 20] = False
  np.testing.assert_array_equal(image[outside], [[1, 2, 3]] * outside.sum())


def test_random_pad_image_default_is_up_to_twice_the_size():
  for seed in range(3):
    out = geometric.random_pad_image(base._tensors(48, 56), seed=seed)
    height, width = out[IMAGE].shape[:2]
    assert 48 <= height < 96 and 56 <= width < 112
    base._assert_consistent(out)


def test_random_crop_pad_image_pads_relative_to_the_original_size():
  out = box_crops.random_crop_pad_image(
      base._tensors(48, 56), min_object_covered=0.0,
      aspect_ratio_range=(0.5, 2.0), area_range=(0.2, 0.5),
      min_padded_size_ratio=(2.0, 2.0), max_padded_size_ratio=(2.0, 2.0),
      seed=4)
  assert out[IMAGE].shape == (96, 112, 3)
  base._assert_consistent(out)


def test_random_crop_to_aspect_ratio_hand_case():
  out = box_crops.random_crop_to_aspect_ratio(base._tensors(48, 56),
                                              aspect_ratio=0.5,
                                              overlap_thresh=0.0, seed=2)
  assert out[IMAGE].shape == (48, 24, 3)   # round(48 * 0.5) wide
  base._assert_consistent(out)
  tall = box_crops.random_crop_to_aspect_ratio(base._tensors(48, 56),
                                               aspect_ratio=2.0)
  assert tall[IMAGE].shape == (28, 56, 3)  # round(56 / 2) high


# -- image-only steps ----------------------------------------------------------


def _image(values):
  return {IMAGE: tf.constant(values, tf.float32), BOXES: tf.zeros([0, 4])}


def test_black_patch_and_black_patches():
  ones = tf.ones([10, 10, 3])
  patched = pixels.black_patch(ones, 2, 3, 4).numpy()
  expected = np.ones([10, 10, 3], np.float32)
  expected[2:6, 3:7] = 0
  np.testing.assert_array_equal(patched, expected)
  tensors = {IMAGE: ones, BOXES: tf.zeros([0, 4])}
  kept = pixels.random_black_patches(tensors, probability=0.0)
  np.testing.assert_array_equal(kept[IMAGE].numpy(), ones.numpy())
  out = pixels.random_black_patches(tensors, max_black_patches=1,
                                    probability=1.0, size_to_image_ratio=0.5)
  assert (out[IMAGE].numpy() == 0).sum() == 5 * 5 * 3


def test_normalize_scale_gray_gamma_and_mean_hand_cases():
  image = _image([[[0.0, 127.5, 255.0]]])
  np.testing.assert_allclose(pixels.normalize_image(
      image, 0.0, 255.0, -1.0, 1.0)[IMAGE].numpy(), [[[-1.0, 0.0, 1.0]]])
  np.testing.assert_allclose(pixels.random_pixel_value_scale(
      image, 2.0, 2.0)[IMAGE].numpy(), [[[0.0, 255.0, 255.0]]])
  red = _image([[[255.0, 0.0, 0.0]]])
  np.testing.assert_allclose(pixels.rgb_to_gray(red)[IMAGE].numpy(),
                             [[[0.2989 * 255] * 3]], rtol=1e-3)
  np.testing.assert_allclose(pixels.random_rgb_to_gray(
      red, probability=0.0)[IMAGE].numpy(), [[[255.0, 0.0, 0.0]]])
  np.testing.assert_allclose(pixels.adjust_gamma(
      image, gamma=2.0)[IMAGE].numpy(), [[[0.0, 63.75, 255.0]]], rtol=1e-5)
  np.testing.assert_allclose(pixels.subtract_channel_mean(
      image, [1.0, 2.0, 3.0])[IMAGE].numpy(), [[[-1.0, 125.5, 252.0]]])


def test_distort_color_changes_only_the_image():
  tensors = base._tensors()
  for ordering in (0, 1):
    out = pixels.random_distort_color(tensors, ordering, seed=ordering)
    image = out[IMAGE].numpy()
    assert image.min() >= 0 and image.max() <= 255
    assert not np.allclose(image, tensors[IMAGE].numpy())
    np.testing.assert_array_equal(out[MASKS].numpy(), tensors[MASKS].numpy())
  with pytest.raises(ValueError, match='color_ordering'):
    pixels.random_distort_color(tensors, 2)


def test_patch_mask_and_patch_gaussian():
  mask = pixels.patch_mask(2, 2, 3, 5, 5).numpy()
  expected = np.zeros([5, 5], bool)
  expected[1:4, 1:4] = True
  np.testing.assert_array_equal(mask, expected)
  tensors = base._tensors()
  silent = pixels.random_patch_gaussian(tensors, min_gaussian_stddev=0.0,
                                        max_gaussian_stddev=0.0)
  np.testing.assert_allclose(silent[IMAGE].numpy(), tensors[IMAGE].numpy(),
                             atol=1e-4)
  noisy = pixels.random_patch_gaussian(tensors, min_patch_size=40,
                                       max_patch_size=41,
                                       min_gaussian_stddev=0.5, seed=5)
  changed = np.any(noisy[IMAGE].numpy() != tensors[IMAGE].numpy(), axis=-1)
  assert 0 < changed.sum() <= 40 * 40
  assert noisy[IMAGE].numpy().min() >= 0 and noisy[IMAGE].numpy().max() <= 255


def test_random_jpeg_quality():
  tensors = base._tensors()
  kept = pixels.random_jpeg_quality(tensors, random_coef=1.0)
  np.testing.assert_array_equal(kept[IMAGE].numpy(), tensors[IMAGE].numpy())
  flat = {IMAGE: tf.fill([16, 16, 3], 100.0), BOXES: tf.zeros([0, 4])}
  out = pixels.random_jpeg_quality(flat, 90, 100)[IMAGE].numpy()
  assert out.shape == (16, 16, 3) and np.abs(out - 100.0).max() <= 2.0


# -- resizing, self concatenation, labels ----------------------------------------


def test_downscale_to_target_pixels_hand_case():
  tensors = base._tensors(48, 56)
  out = resizing.random_downscale_to_target_pixels(tensors, 1000, 1001)
  # scale sqrt(1000 / 2688): int(48 * 0.61) x int(56 * 0.61).
  assert out[IMAGE].shape == (29, 34, 3) and out[MASKS].shape == (3, 29, 34)
  bigger = resizing.random_downscale_to_target_pixels(tensors, 5000, 6000)
  assert bigger[IMAGE].shape == (48, 56, 3)


def test_resize_steps_keep_masks_with_the_image():
  out = resizing.random_resize_method(base._tensors(), 40, 50, seed=1)
  assert out[IMAGE].shape == (40, 50, 3) and out[MASKS].shape == (3, 40, 50)
  area = resizing.resize_image(base._tensors(), 24, 28,
                               method=tf.image.ResizeMethod.AREA)
  assert area[IMAGE].shape == (24, 28, 3)
  base._assert_consistent(area)


def test_self_concat_hand_case():
  tensors = base._tensors(10, 20, ((2, 6, 6, 10),))
  out = resizing.random_self_concat_image(tensors, 1.0, 0.0)
  assert out[IMAGE].shape == (20, 20, 3)
  np.testing.assert_allclose(out[BOXES].numpy(), [
      [0.1, 0.3, 0.3, 0.5], [0.6, 0.3, 0.8, 0.5]], atol=1e-6)
  base._assert_consistent(out)
  both = resizing.random_self_concat_image(base._tensors(), 1.0, 1.0)
  assert both[IMAGE].shape == (96, 112, 3) and both[BOXES].shape[0] == 12
  base._assert_consistent(both)


def test_drop_and_remap_labels():
  tensors = base._tensors()   # classes 1, 2, 3
  dropped = labels.drop_label_probabilistically(tensors, 2, 1.0)
  np.testing.assert_array_equal(dropped[CLASSES].numpy(), [1, 3])
  base._assert_consistent(dropped)
  kept = labels.drop_label_probabilistically(tensors, 2, 0.0)
  np.testing.assert_array_equal(kept[CLASSES].numpy(), [1, 2, 3])
  remapped = labels.remap_labels(tensors, [1, 3], 7)
  np.testing.assert_array_equal(remapped[CLASSES].numpy(), [7, 2, 7])


# -- the builder -----------------------------------------------------------------


def test_sample_config_steps_run_in_a_dataset():
  """The steps of the OD API's CenterNet sample configs, in tf.data (graph
  mode); the other steps run eagerly above."""
  augment = aug.build_augmentation_fn(base._steps(
      'random_horizontal_flip {}',
      'random_crop_image { min_aspect_ratio: 0.5 max_aspect_ratio: 1.7 '
      'random_coef: 0.25 }',
      'random_adjust_hue {}', 'random_adjust_contrast {}',
      'random_adjust_saturation {}', 'random_adjust_brightness {}',
      'random_absolute_pad_image { max_height_padding: 20 '
      'max_width_padding: 20 pad_color: [0, 0, 0] }',
      'random_crop_pad_image {}', 'random_self_concat_image {}'))
  dataset = tf.data.Dataset.from_tensors(base._tensors()).map(augment)
  for out in dataset:
    base._assert_consistent(out)


@pytest.mark.parametrize('text,message', [
    ('random_jpeg_quality { min_jpeg_quality: 90 max_jpeg_quality: 10 }',
     'random_jpeg_quality: needs 0 <= min_jpeg_quality < max_jpeg_quality'),
    ('random_pad_image { min_image_height: 5 }',
     'random_pad_image.min_image_height: set min_image_height and '
     'min_image_width together'),
    ('random_crop_image { min_area: 0.5 max_area: 0.2 }',
     'random_crop_image: min_area (0.5) must not exceed max_area (0.2)'),
    ('random_crop_pad_image { min_padded_size_ratio: [1.0] }',
     'random_crop_pad_image.min_padded_size_ratio: needs 2 values'),
    ('random_distort_color { color_ordering: 3 }',
     'random_distort_color.color_ordering: must be 0 or 1'),
    ('random_resize_method { target_height: 10 }',
     'random_resize_method.target_width: must be >= 1'),
    ('normalize_image { original_maxval: 1 }',
     'normalize_image.original_minval: must be set'),
    ('random_patch_gaussian { min_patch_size: 0 }',
     'random_patch_gaussian: needs 1 <= min_patch_size'),
])
def test_catalogue_errors_name_the_field(text, message):
  with pytest.raises(ConfigError) as info:
    aug.build_augmentation_fn(base._steps(text))
  assert message in str(info.value)


def test_odapi_centernet_config_augmentation_parses():
  text = ('data_augmentation_options { random_crop_image { min_aspect_ratio: '
          '0.5 max_aspect_ratio: 1.7 random_coef: 0.25 } }')
  from deepmac_tf.protos import train_pb2  # pylint: disable=g-import-not-at-top
  train = text_format.Parse(text, train_pb2.TrainConfig())
  aug.build_augmentation_fn(train.data_augmentation_options)
