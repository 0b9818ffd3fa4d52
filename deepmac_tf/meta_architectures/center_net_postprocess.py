"""CenterNet decoding: heatmap peaks -> top-K detections -> boxes.

No Python loops over images or detections; K is static so the outputs have
static shapes [batch, K, ...] (under XLA too).
"""

import tensorflow as tf

# A cell is a peak when it equals its max-pooled neighbourhood up to this.
PEAK_EPSILON = 1e-6


def top_k_peaks(heatmap, max_pool_kernel_size, k):
  """Top-K local maxima of a [batch, h, w, c] score map (max-pool NMS).

  A cell survives when it equals the max over its max_pool_kernel_size^2
  neighbourhood (stride 1, 'SAME'); the others are zeroed; then the K best
  over all cells and classes are kept. If h * w * c < k the result is padded
  with score 0 (rows, cols, classes 0).

  Args:
    heatmap: float32 [batch, h, w, c] probabilities.
    max_pool_kernel_size: int; 1 disables the suppression.
    k: int, number of detections.

  Returns:
    scores: float32 [batch, k].
    rows: int32 [batch, k].
    cols: int32 [batch, k].
    classes: int32 [batch, k], 0-based channels.
  """
  if max_pool_kernel_size > 1:
    pooled = tf.nn.max_pool2d(heatmap, ksize=max_pool_kernel_size, strides=1,
                              padding='SAME')
    is_peak = tf.abs(heatmap - pooled) < PEAK_EPSILON
    heatmap = heatmap * tf.cast(is_peak, heatmap.dtype)
  shape = heatmap.shape
  height, width, channels = shape[1], shape[2], shape[3]
  dynamic = tf.shape(heatmap)
  height = height if height is not None else dynamic[1]
  width = width if width is not None else dynamic[2]
  channels = channels if channels is not None else dynamic[3]
  flat = tf.reshape(heatmap, [dynamic[0], -1])
  num_cells = flat.shape[1]
  kept = k if num_cells is None else min(k, num_cells)
  scores, flat_indices = tf.math.top_k(flat, k=kept, sorted=True)
  if kept < k:
    scores = tf.pad(scores, [[0, 0], [0, k - kept]])
    flat_indices = tf.pad(flat_indices, [[0, 0], [0, k - kept]])
  row_size = width * channels
  rows = flat_indices // row_size
  cols = (flat_indices - rows * row_size) // channels
  classes = flat_indices - rows * row_size - cols * channels
  return scores, rows, cols, classes


def boxes_from_predictions(rows, cols, scale_map, offset_map):
  """Boxes in output-grid pixels from the scale / offset at peak cells.

  center = (row, col) + offset; size = max(scale, 0); the box is clipped to
  [0, h] x [0, w].

  Args:
    rows: int32 [batch, k].
    cols: int32 [batch, k].
    scale_map: [batch, h, w, 2] (box height, box width) predictions.
    offset_map: [batch, h, w, 2] (dy, dx) predictions.

  Returns:
    float32 [batch, k, 4] [ymin, xmin, ymax, xmax] in output pixels.
  """
  indices = tf.stack([rows, cols], axis=-1)
  size = tf.maximum(
      tf.cast(tf.gather_nd(scale_map, indices, batch_dims=1), tf.float32), 0.0)
  offset = tf.cast(tf.gather_nd(offset_map, indices, batch_dims=1), tf.float32)
  center_y = tf.cast(rows, tf.float32) + offset[..., 0]
  center_x = tf.cast(cols, tf.float32) + offset[..., 1]
  half_h = size[..., 0] / 2.0
  half_w = size[..., 1] / 2.0
  dynamic = tf.shape(scale_map)
  height = tf.cast(dynamic[1], tf.float32)
  width = tf.cast(dynamic[2], tf.float32)
  ymin = tf.clip_by_value(center_y - half_h, 0.0, height)
  ymax = tf.clip_by_value(center_y + half_h, 0.0, height)
  xmin = tf.clip_by_value(center_x - half_w, 0.0, width)
  xmax = tf.clip_by_value(center_x + half_w, 0.0, width)
  return tf.stack([ymin, xmin, ymax, xmax], axis=-1)


def strided_to_normalized_boxes(boxes_strided, stride, true_image_shapes):
  """Output-grid boxes -> boxes normalized to the true (unpadded) image.

  Args:
    boxes_strided: float32 [batch, k, 4] in output pixels.
    stride: int, output stride.
    true_image_shapes: int [batch, 3] (or [batch, 2]) true image sizes in
      input pixels.

  Returns:
    float32 [batch, k, 4] clipped to [0, 1].
  """
  true_hw = tf.cast(true_image_shapes[:, :2], tf.float32)
  scale = tf.concat([true_hw, true_hw], axis=1)[:, tf.newaxis, :]
  boxes = boxes_strided * float(stride) / scale
  return tf.clip_by_value(boxes, 0.0, 1.0)
