"""The inference API: image-space masks, class names, overlays, COCO JSON."""

import json
import os
import subprocess
import sys

import numpy as np
from pycocotools import mask as mask_util
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_export as export_helpers  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import inference  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.errors import DataError  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.ops import mask_pasting  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = export_helpers.REPO
NAMES = ['circle', 'ellipse', 'square', 'triangle', 'hexagon', 'star', 'cross',
         'ring', 'crescent', 'l_shape']


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  exports = export_helpers.shared_exports(tmp_path_factory)['exports']
  return {input_type: os.path.join(exports[input_type], 'saved_model')
          for input_type in ('image_tensor', 'tf_example')}


@pytest.fixture(scope='module')
def predictor(exported):
  return inference.DeepMacPredictor(exported['image_tensor'])


def test_detect_returns_image_space_masks_and_names(predictor):
  image = export_helpers.sample_image(50, 70, seed=1)
  found = predictor.detect(image, min_score_threshold=0.0)
  assert len(found) == export_helpers.K
  assert found.image_size == (50, 70)
  assert found.masks.shape == (len(found), 50, 70)
  assert found.masks.dtype == bool
  assert found.mask_probabilities.shape == (len(found), 50, 70)
  assert np.all(np.diff(found.scores) <= 0)  # Sorted by score.
  assert set(found.class_names) <= set(NAMES)
  assert all(NAMES[c - 1] == n for c, n in zip(found.classes,
                                               found.class_names))
  # A threshold above every score leaves nothing.
  none = predictor.detect(image, min_score_threshold=1.01)
  assert len(none) == 0 and none.masks.shape == (0, 50, 70)
  assert len(predictor.detect(image, min_score_threshold=0.0,
                              max_detections=3)) == 3


def test_detection_masks_are_the_pasted_box_masks(predictor, exported):
  image = export_helpers.sample_image(50, 70, seed=1)
  found = predictor.detect(image, min_score_threshold=0.0)
  loaded = tf.saved_model.load(exported['image_tensor'])
  raw = loaded.signatures['serving_default'](
      input_tensor=tf.constant(image[None]))
  order = np.argsort(-raw['detection_scores'][0].numpy(), kind='stable')
  expected = mask_pasting.paste_box_masks(
      tf.gather(raw['detection_masks'][0], order),
      tf.gather(raw['detection_boxes'][0], order), 50, 70).numpy()
  np.testing.assert_allclose(found.mask_probabilities, expected, atol=1e-5)
  np.testing.assert_array_equal(found.masks, found.mask_probabilities > 0.5)


def test_segment_given_boxes(predictor):
  image = export_helpers.sample_image(40, 60, seed=2)
  boxes = [[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.95]]
  found = predictor.segment(image, boxes, classes=[6, 0])
  assert len(found) == 2 and found.masks.shape == (2, 40, 60)
  assert found.class_names == ['star', '']
  np.testing.assert_allclose(found.scores, 1.0)
  # Nothing outside its box (a pixel margin for the bilinear edge).
  for mask, box in zip(found.mask_probabilities, found.pixel_boxes()):
    ymin, xmin, ymax, xmax = box
    rows, cols = np.nonzero(mask > 0)
    assert rows.min() >= ymin - 1 and rows.max() <= ymax + 1
    assert cols.min() >= xmin - 1 and cols.max() <= xmax + 1
  # Pixel boxes give the same masks.
  pixel = predictor.segment(image, np.array(boxes) * [40, 60, 40, 60],
                            pixel_boxes=True)
  np.testing.assert_allclose(pixel.mask_probabilities,
                             found.mask_probabilities, atol=1e-5)
  empty = predictor.segment(image, np.zeros([0, 4]))
  assert len(empty) == 0 and empty.masks.shape == (0, 40, 60)


def test_string_input_export_and_image_inputs(exported, predictor, tmp_path):
  image = export_helpers.sample_image(48, 64, seed=3)
  from_example = inference.DeepMacPredictor(exported['tf_example'])
  a = from_example.detect(image, min_score_threshold=0.0)
  b = predictor.detect(image, min_score_threshold=0.0)
  np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-5)
  np.testing.assert_allclose(a.mask_probabilities, b.mask_probabilities,
                             atol=1e-5)
  # A path, a grayscale array and an RGBA array are accepted.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'image.png')
  Image.fromarray(image).save(path)
  c = predictor.detect(path, min_score_threshold=0.0)
  np.testing.assert_allclose(c.boxes, b.boxes, atol=1e-5)
  assert predictor.detect(image[..., 0], 0.0).image_size == (48, 64)
  rgba = np.concatenate([image, np.full([48, 64, 1], 255, np.uint8)], -1)
  assert predictor.detect(rgba, 0.0).image_size == (48, 64)


def test_coco_results_and_overlay(predictor, tmp_path):
  image = export_helpers.sample_image(40, 60, seed=2)
  found = predictor.segment(image, [[0.1, 0.1, 0.5, 0.4]], classes=[2])
  results = inference.to_coco_results(found, image_id=7)
  assert len(results) == 1
  result = results[0]
  assert result['image_id'] == 7 and result['category_id'] == 2
  assert result['category_name'] == 'ellipse'
  np.testing.assert_allclose(result['bbox'], [6.0, 4.0, 18.0, 16.0],
                             atol=0.01)
  decoded = mask_util.decode(result['segmentation'])
  np.testing.assert_array_equal(decoded.astype(bool), found.masks[0])
  assert result['area'] == int(found.masks[0].sum())
  path = inference.write_coco_results(results, str(tmp_path / 'r.json'))
  with open(path) as f:
    assert json.load(f) == results
  overlay = inference.draw_overlay(image, found)
  assert overlay.shape == image.shape and overlay.dtype == np.uint8
  found.masks[:] = False
  found.masks[0, 10:20, 10:20] = True
  drawn = inference.draw_overlay(image, found, draw_boxes=False,
                                 draw_labels=False)
  assert np.any(drawn[10:20, 10:20] != image[10:20, 10:20])
  np.testing.assert_array_equal(drawn[25:, 30:], image[25:, 30:])
  big = inference.draw_overlay(image, found, min_size=120, prompted=True)
  assert big.shape == (120, 180, 3)


def test_parse_boxes(tmp_path):
  boxes, classes = inference.parse_boxes('0.1,0.2,0.5,0.6; 0,0,1,1')
  np.testing.assert_allclose(boxes, [[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1]])
  np.testing.assert_array_equal(classes, [0, 0])
  path = tmp_path / 'boxes.json'
  path.write_text(json.dumps([{'box': [0.1, 0.1, 0.2, 0.2],
                               'category_id': 3}, [0.2, 0.2, 0.4, 0.5]]))
  boxes, classes = inference.parse_boxes(str(path))
  np.testing.assert_array_equal(classes, [3, 0])
  path.write_text(json.dumps({'boxes': [[0.1, 0.1, 0.2, 0.2]]}))
  assert inference.parse_boxes(str(path))[0].shape == (1, 4)
  for text, pattern in (('0.1,0.2,0.5', 'needs 4 values'),
                        ('0.1,0.2,1.5,0.6', r'normalized to \[0, 1\]'),
                        ('0.5,0.2,0.1,0.6', 'ymin <= ymax'),
                        ('a,b,c,d', 'not a number'),
                        ('', 'no boxes given'),
                        (str(tmp_path / 'missing.json'), 'does not exist')):
    with pytest.raises(DataError, match=pattern):
      inference.parse_boxes(text)


def test_clear_errors(predictor, tmp_path):
  with pytest.raises(DataError, match='no saved_model.pb'):
    inference.DeepMacPredictor(str(tmp_path))
  with pytest.raises(DataError, match='expected an image'):
    predictor.detect(np.zeros([4, 4, 4, 3], np.uint8))
  with pytest.raises(DataError, match='does not exist'):
    predictor.detect(str(tmp_path / 'missing.png'))
  with pytest.raises(DataError, match=r'box 0 .* ymin <= ymax'):
    predictor.segment(np.zeros([8, 8, 3], np.uint8), [[0.5, 0, 0.2, 1]])


def test_inference_does_not_import_model_code():
  code = ('import sys; import deepmac_tf.inference; '
          'bad = [m for m in sys.modules if m.startswith("deepmac_tf.") and '
          'm.split(".")[1] in ("training", "export", "builders", '
          '"meta_architectures", "mask_heads", "backbones", "losses", '
          '"layers", "evaluation")]; '
          'assert not bad, bad; assert "tf_keras" not in sys.modules')
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120, env=env)
  assert result.returncode == 0, result.stderr[-2000:]
