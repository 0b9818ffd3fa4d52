"""CenterNet targets decode back to the groundtruth (issue 12 item 4).

If the detector predicted its training targets exactly (the heatmap, and the
size and offset at each center cell), ``postprocess``'s decoding must return
the groundtruth boxes and classes. This is the "oracle" check behind the
demo's diagnosis: at the demo's 64 px input and stride 4 it gives box AP
100, so a low box AP is the training's, not the targets' or the decoding's.
"""

import numpy as np
import tensorflow as tf

from deepmac_tf.meta_architectures import center_net_postprocess as decode
from deepmac_tf.meta_architectures import center_net_targets as targets

_SIZE = 64
_STRIDE = 4
_GRID = _SIZE // _STRIDE


def _oracle_detections(boxes, classes, num_classes, k=10):
  """Decodes the targets of ``boxes`` [1, N, 4] as if predicted exactly."""
  weights = np.ones(classes.shape, np.float32)
  heatmap = targets.center_heatmap_targets(boxes, classes, weights,
                                           num_classes, _GRID, _GRID, 0.7)
  indices, scale, offset = targets.box_targets(boxes, _GRID, _GRID)
  scatter = lambda values: tf.scatter_nd(  # pylint: disable=g-long-lambda
      indices[0], values[0], [_GRID, _GRID, 2])[tf.newaxis]
  scores, rows, cols, found = decode.top_k_peaks(heatmap, 3, k)
  strided = decode.boxes_from_predictions(rows, cols, scatter(scale),
                                          scatter(offset))
  normalized = decode.strided_to_normalized_boxes(
      strided, _STRIDE, tf.constant([[_SIZE, _SIZE, 3]]))
  keep = scores[0].numpy() > 0.99  # the center cells (target value 1)
  return normalized[0].numpy()[keep], found[0].numpy()[keep] + 1


def test_exact_targets_decode_to_the_groundtruth_boxes_and_classes():
  # Demo-sized objects (18-38 px), two of one class 12 px apart, one
  # touching the border, centers at fractional cell positions.
  pixels = np.array([[5, 7, 31, 29], [9, 33, 47, 60], [30, 3, 52, 25],
                     [40, 30, 64, 50]], np.float32)
  classes = np.array([[3, 8, 3, 10]], np.int32)
  boxes = (pixels / _SIZE)[np.newaxis]
  found_boxes, found_classes = _oracle_detections(boxes, classes, 10)
  assert len(found_boxes) == 4
  for box, cls in zip(boxes[0], classes[0]):
    distance = np.abs(found_boxes - box).max(axis=1)
    match = int(np.argmin(distance))
    assert distance[match] < 1e-5, (box, found_boxes)
    assert found_classes[match] == cls
