"""Tests of deepmac_tf.drawing, the one drawing module (preview, eval
summaries and inference overlays call it)."""

import numpy as np
import pytest

from deepmac_tf import drawing


def test_masks_boxes_and_scale():
  image = np.zeros([10, 20, 3], np.uint8)
  mask = np.zeros([10, 20], np.uint8)
  mask[2:6, 4:10] = 1
  red, blue = (255, 0, 0), (0, 0, 255)
  out = drawing.draw_instances(
      image, [[0.2, 0.2, 0.6, 0.5], [0.0, 0.6, 0.9, 0.95]], [red, blue],
      [mask, None], alpha=0.5, draw_boxes=False)
  assert out.shape == (10, 20, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[3, 5], [127, 0, 0])  # half red
  np.testing.assert_array_equal(out[3, 15], [0, 0, 0])  # no mask drawn
  boxed = drawing.draw_instances(image, [[0.0, 0.0, 0.5, 0.5]], [blue],
                                 scale=2)
  assert boxed.shape == (20, 40, 3)
  np.testing.assert_array_equal(boxed[0, 5], blue)  # top edge, scaled
  labelled = drawing.draw_instances(image, [[0.1, 0.1, 0.9, 0.9]], [red],
                                    labels=['cat'], label_background=True,
                                    scale=3.5, smooth=True)
  assert labelled.shape == (35, 70, 3)


def test_tile_images_and_palette():
  grid = drawing.tile_images([np.zeros([4, 5, 3], np.uint8)] * 3, columns=2)
  assert grid.shape == (12, 14, 3)
  assert drawing.class_color(1) == drawing.class_color(
      1 + len(drawing.PALETTE))
  with pytest.raises(ValueError):
    drawing.tile_images([], columns=2)
