"""CenterNet training targets, vectorized over batch and instances.

Coordinates: groundtruth boxes are [ymin, xmin, ymax, xmax] normalized to the
padded model input; on the output grid (h, w) a box's absolute coordinates
are normalized * (h, w). A box's "center cell" is floor(center) (clipped into
the grid). Everything is float32, no Python loops over instances, shapes stay
static when the inputs' are, so the functions run under XLA.
"""

import tensorflow as tf


def smallest_positive_root(a, b, c):
  """CenterNet's quadratic "root": (-b + sqrt(b^2 - 4ac)) / 2 (not / 2a)."""
  return (-b + tf.sqrt(b * b - 4.0 * a * c)) / 2.0


def max_distance_for_overlap(height, width, min_iou):
  """CenterNet Gaussian radius: the min of the three CornerNet roots.

  The largest corner displacement such that a box of the same size still
  overlaps the groundtruth with IoU >= min_iou, in CenterNet's approximate
  form (the roots are not divided by a).

  Args:
    height: float tensor of box heights (output-grid pixels).
    width: float tensor of box widths, same shape.
    min_iou: Python float in (0, 1).

  Returns:
    float tensor of radii, the shape of ``height``.
  """
  height = tf.cast(height, tf.float32)
  width = tf.cast(width, tf.float32)
  area = height * width
  size_sum = height + width
  offset_root = smallest_positive_root(
      1.0, -size_sum, area * (1.0 - min_iou) / (1.0 + min_iou))
  inside_root = smallest_positive_root(
      4.0, -2.0 * size_sum, (1.0 - min_iou) * area)
  outside_root = smallest_positive_root(
      4.0 * min_iou, 2.0 * min_iou * size_sum, (min_iou - 1.0) * area)
  return tf.minimum(tf.minimum(offset_root, inside_root), outside_root)


def gaussian_sigma(height, width, min_iou):
  """sigma = (2 * max(floor(r), 0) + 1) / 6 with r the CenterNet radius."""
  radius = tf.maximum(
      tf.floor(max_distance_for_overlap(height, width, min_iou)), 0.0)
  return (2.0 * radius + 1.0) / 6.0


def boxes_to_output_grid(boxes, output_height, output_width):
  """Normalized boxes -> (center_y, center_x, height, width) on the grid.

  Args:
    boxes: [batch, num_boxes, 4] normalized [ymin, xmin, ymax, xmax].
    output_height: int (or scalar tensor) h of the output grid.
    output_width: int (or scalar tensor) w of the output grid.

  Returns:
    four float32 tensors [batch, num_boxes].
  """
  boxes = tf.cast(boxes, tf.float32)
  h = tf.cast(output_height, tf.float32)
  w = tf.cast(output_width, tf.float32)
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
  center_y = (ymin + ymax) / 2.0 * h
  center_x = (xmin + xmax) / 2.0 * w
  return center_y, center_x, (ymax - ymin) * h, (xmax - xmin) * w


def center_heatmap_targets(boxes, classes, weights, num_classes,
                           output_height, output_width, min_iou):
  """Per-class Gaussian center heatmaps, max over instances.

  Each instance contributes exp(-((x - floor(cx))^2 + (y - floor(cy))^2) /
  (2 sigma^2)) * weight to its class channel (so exactly `weight` at its
  center cell); the channel keeps the max over its instances, clamped >= 0.

  Args:
    boxes: [batch, num_boxes, 4] normalized boxes.
    classes: [batch, num_boxes] int, 1-based class ids; 0 (padding) or ids
      outside 1..num_classes contribute nothing.
    weights: [batch, num_boxes] float instance weights (0 for padding).
    num_classes: int, channels of the heatmap.
    output_height: int, h.
    output_width: int, w.
    min_iou: float, ``min_box_overlap_iou``.

  Returns:
    float32 [batch, h, w, num_classes] heatmap targets.
  """
  center_y, center_x, box_h, box_w = boxes_to_output_grid(
      boxes, output_height, output_width)
  sigma = gaussian_sigma(box_h, box_w, min_iou)  # [B, N]
  two_sigma_sq = (2.0 * sigma * sigma)[:, :, tf.newaxis]
  y_grid = tf.range(output_height, dtype=tf.float32)[tf.newaxis, tf.newaxis]
  x_grid = tf.range(output_width, dtype=tf.float32)[tf.newaxis, tf.newaxis]
  # Separable Gaussian: [B, N, h] x [B, N, w].
  gauss_y = tf.exp(-tf.square(y_grid - tf.floor(center_y)[..., tf.newaxis]) /
                   two_sigma_sq)
  gauss_x = tf.exp(-tf.square(x_grid - tf.floor(center_x)[..., tf.newaxis]) /
                   two_sigma_sq)

  classes = tf.cast(classes, tf.int32)
  class_ok = tf.logical_and(classes >= 1, classes <= num_classes)
  weights = tf.cast(weights, tf.float32) * tf.cast(class_ok, tf.float32)
  gauss_y = gauss_y * weights[..., tf.newaxis]
  gaussians = gauss_y[..., :, tf.newaxis] * gauss_x[..., tf.newaxis, :]

  # Max over the instances of each (image, class) pair: one segment per pair.
  batch = tf.shape(boxes)[0]
  num_boxes = tf.shape(boxes)[1]
  class_index = tf.clip_by_value(classes - 1, 0, num_classes - 1)
  segment_ids = (tf.range(batch)[:, tf.newaxis] * num_classes + class_index)
  flat = tf.reshape(gaussians, [batch * num_boxes,
                                output_height * output_width])
  per_class = tf.math.unsorted_segment_max(
      flat, tf.reshape(segment_ids, [-1]), batch * num_classes)
  # Empty segments hold the lowest float; the clamp also drops them.
  per_class = tf.maximum(per_class, 0.0)
  per_class = tf.reshape(per_class, [batch, num_classes, output_height,
                                     output_width])
  return tf.transpose(per_class, [0, 2, 3, 1])


def box_targets(boxes, output_height, output_width):
  """Center-cell indices, size and offset targets of every box.

  Args:
    boxes: [batch, num_boxes, 4] normalized boxes.
    output_height: int, h.
    output_width: int, w.

  Returns:
    indices: int32 [batch, num_boxes, 2] (row, col) = floor(center), clipped
      into the grid.
    scale: float32 [batch, num_boxes, 2] (box height, box width) in output
      pixels.
    offset: float32 [batch, num_boxes, 2] center - floor(center).
  """
  center_y, center_x, box_h, box_w = boxes_to_output_grid(
      boxes, output_height, output_width)
  floor_y = tf.floor(center_y)
  floor_x = tf.floor(center_x)
  rows = tf.clip_by_value(tf.cast(floor_y, tf.int32), 0, output_height - 1)
  cols = tf.clip_by_value(tf.cast(floor_x, tf.int32), 0, output_width - 1)
  indices = tf.stack([rows, cols], axis=-1)
  scale = tf.stack([box_h, box_w], axis=-1)
  offset = tf.stack([center_y - floor_y, center_x - floor_x], axis=-1)
  return indices, scale, offset


def valid_area_mask(true_image_shape, stride, output_height, output_width):
  """1 on output cells that cover the true (unpadded) image, 0 on padding.

  A cell (i, j) is valid iff i < ceil(true_height / stride) and
  j < ceil(true_width / stride).

  Args:
    true_image_shape: int [batch, 3] (or [batch, 2]) true (height, width, ...)
      of each image in input pixels.
    stride: int, output stride of the feature extractor.
    output_height: int, h.
    output_width: int, w.

  Returns:
    float32 [batch, h, w].
  """
  true_hw = tf.cast(true_image_shape[:, :2], tf.float32)
  limits = tf.math.ceil(true_hw / float(stride))  # [B, 2]
  rows = tf.range(output_height, dtype=tf.float32)
  cols = tf.range(output_width, dtype=tf.float32)
  row_ok = rows[tf.newaxis, :] < limits[:, 0:1]  # [B, h]
  col_ok = cols[tf.newaxis, :] < limits[:, 1:2]  # [B, w]
  valid = tf.logical_and(row_ok[:, :, tf.newaxis], col_ok[:, tf.newaxis, :])
  return tf.cast(valid, tf.float32)


def gather_at_indices(feature_map, indices):
  """Gathers [batch, num_boxes, c] vectors at (row, col) cells.

  Args:
    feature_map: [batch, h, w, c].
    indices: int32 [batch, num_boxes, 2] (row, col).

  Returns:
    [batch, num_boxes, c], the dtype of ``feature_map``.
  """
  return tf.gather_nd(feature_map, indices, batch_dims=1)
