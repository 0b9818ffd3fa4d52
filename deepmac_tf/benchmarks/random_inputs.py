"""A random ``InputFields`` training batch, for benchmarking models on
configs whose data is not at hand (paper configs at any input size).

Boxes are random, classes 1..num_classes, masks are filled ellipses inside
each box, mask weights 1 (the model's loss applies the allowed-class
restriction when the batch would not). ``pad_to`` zero-pads the instances
the way the input pipeline pads to ``train_config.max_number_of_boxes``
(box 0, class 0, weights 0, empty mask).
"""

import numpy as np
import tensorflow as tf

from deepmac_tf.data.fields import InputFields
from deepmac_tf.evaluation import miou


def _boxes(rng, batch, num, min_side=0.1, max_side=0.6):
  sides = rng.uniform(min_side, max_side, size=(batch, num, 2))
  corners = rng.uniform(0.0, 1.0 - sides)
  return np.concatenate([corners, corners + sides], axis=-1).astype(np.float32)


def _ellipse_masks(boxes, height, width):
  """[B, N, 4] normalized -> [B, N, H, W] 0/1 ellipses inscribed in boxes."""
  return miou.inscribed_ellipses(boxes, height, width).astype(np.float32)


def _pad(batch, num, pad_to):
  """Zero-pads every per-instance field from ``num`` to ``pad_to``."""
  if pad_to is None or pad_to <= num:
    return batch
  for key in (InputFields.BOXES, InputFields.CLASSES, InputFields.WEIGHTS,
              InputFields.IS_CROWD, InputFields.AREA, InputFields.MASK_WEIGHTS,
              InputFields.INSTANCE_MASKS):
    if key in batch:
      value = batch[key]
      widths = [(0, 0), (0, pad_to - num)] + [(0, 0)] * (value.ndim - 2)
      batch[key] = np.pad(value, widths)
  return batch


def groundtruth_batch(batch_size, height, width, num_instances, num_classes,
                      with_masks=True, seed=0, pad_to=None):
  """Returns an ``InputFields`` dict of tensors (numeric fields only).

  Shapes: image [B, H, W, 3] float32 0..255, boxes [B, N, 4], classes /
  weights / mask weights / area / is_crowd [B, N], masks [B, N, H, W] (when
  ``with_masks``), true_image_shape [B, 3], num_groundtruth_boxes [B]
  (= num_instances). N = max(num_instances, pad_to): the first
  num_instances are real, the rest zero padding.
  """
  rng = np.random.default_rng(seed)
  b, n = int(batch_size), int(num_instances)
  boxes = _boxes(rng, b, n)
  batch = {
      InputFields.IMAGE: rng.uniform(0, 255, (b, height, width, 3)).astype(
          np.float32),
      InputFields.TRUE_IMAGE_SHAPE: np.tile(
          np.array([[height, width, 3]], np.int32), [b, 1]),
      InputFields.ORIGINAL_IMAGE_SHAPE: np.tile(
          np.array([[height, width]], np.int32), [b, 1]),
      InputFields.BOXES: boxes,
      InputFields.CLASSES: rng.integers(1, num_classes + 1, (b, n)).astype(
          np.int32),
      InputFields.WEIGHTS: np.ones((b, n), np.float32),
      InputFields.IS_CROWD: np.zeros((b, n), bool),
      InputFields.AREA: ((boxes[..., 2] - boxes[..., 0]) *
                         (boxes[..., 3] - boxes[..., 1]) * height *
                         width).astype(np.float32),
      InputFields.MASK_WEIGHTS: np.ones((b, n), np.float32),
      InputFields.NUM_BOXES: np.full((b,), n, np.int32),
  }
  if with_masks:
    batch[InputFields.INSTANCE_MASKS] = _ellipse_masks(boxes, height, width)
  batch = _pad(batch, n, pad_to)
  return {k: tf.constant(v) for k, v in batch.items()}
