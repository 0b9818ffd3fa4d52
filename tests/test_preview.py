"""Groundtruth drawing used by the demo."""

import numpy as np

from deepmac_tf.data import preview
from deepmac_tf.data.fields import InputFields as F


def _example():
  image = np.zeros([16, 16, 3], np.float32)
  boxes = np.array([[0.25, 0.25, 0.75, 0.75], [0, 0, 0.5, 0.5], [0, 0, 0, 0]],
                   np.float32)
  masks = np.zeros([3, 16, 16], np.float32)
  masks[0, 5:11, 5:11] = 1
  masks[1, 0:8, 0:8] = 1
  return image, boxes, masks


def test_supervised_masks_are_tinted_box_only_are_not():
  image, boxes, masks = _example()
  out = preview.draw_groundtruth(
      image, boxes, classes=[1, 6, 0], weights=[1, 1, 0], masks=masks,
      mask_weights=[1, 0, 0])
  assert out.shape == (16, 16, 3) and out.dtype == np.uint8
  # Inside the supervised mask: green tint.
  assert out[10, 10, 1] > 50 and out[10, 10, 0] < out[10, 10, 1]
  # Inside the box-only instance's mask (away from its outline): untouched.
  assert out[3, 3].tolist() == [0, 0, 0]
  # The box-only instance's outline is orange.
  assert tuple(out[0, 3]) == preview.BOX_ONLY_COLOR


def test_scale_and_batch_grid():
  image, boxes, masks = _example()
  batch = {
      F.IMAGE: np.stack([image] * 3), F.BOXES: np.stack([boxes] * 3),
      F.CLASSES: np.ones([3, 3], np.int32), F.WEIGHTS: np.ones([3, 3]),
      F.INSTANCE_MASKS: np.stack([masks] * 3),
      F.MASK_WEIGHTS: np.ones([3, 3]),
  }
  grid = preview.draw_batch(batch, columns=2, scale=2)
  assert grid.shape == (2 * 34, 2 * 34, 3)
