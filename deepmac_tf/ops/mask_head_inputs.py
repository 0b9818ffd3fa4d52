"""Inputs of the mask head (spec sections 1.2, 5): coordinate embeddings,
crop-mode and full-resolution pixel inputs, instance embeddings gathered at
box centres.

Every function works on a whole batch at once ([batch, num_instances, ...]),
has no Python loop over instances, and runs under
``tf.function(jit_compile=True)``. Boxes are [ymin, xmin, ymax, xmax]
normalized to the (padded) map they refer to.
"""

import tensorflow as tf

from deepmac_tf.ops import roi_crop


def crop_coordinate_channels(batch, num_instances, mask_size, dtype):
  """The crop-mode coordinate embedding, identical for every box.

  Args:
    batch: scalar, B.
    num_instances: scalar, N.
    mask_size: python int S.
    dtype: output dtype.

  Returns:
    [B, N, S, S, 2]: channel 0 = y = linspace(-1, 1, S) down the rows,
    channel 1 = x = linspace(-1, 1, S) across the columns.
  """
  line = tf.linspace(-1.0, 1.0, mask_size)
  y_grid, x_grid = tf.meshgrid(line, line, indexing='ij')
  coords = tf.cast(tf.stack([y_grid, x_grid], axis=-1), dtype)
  return tf.tile(coords[None, None],
                 tf.stack([batch, num_instances, 1, 1, 1]))


def full_resolution_coordinate_channels(boxes, height, width, dtype):
  """Full-resolution coordinate embedding: pixel position minus box centre.

  Args:
    boxes: [B, N, 4] normalized boxes.
    height: scalar h of the map.
    width: scalar w of the map.
    dtype: output dtype.

  Returns:
    [B, N, h, w, 2]: channel 0 = linspace(0, 1, h) - centre_y (rows),
    channel 1 = linspace(0, 1, w) - centre_x (columns).
  """
  boxes = tf.cast(boxes, tf.float32)
  center_y = 0.5 * (boxes[..., 0] + boxes[..., 2])
  center_x = 0.5 * (boxes[..., 1] + boxes[..., 3])
  y_line = tf.linspace(0.0, 1.0, height)
  x_line = tf.linspace(0.0, 1.0, width)
  y = y_line[None, None, :] - center_y[..., None]  # [B, N, h]
  x = x_line[None, None, :] - center_x[..., None]  # [B, N, w]
  y_grid = tf.broadcast_to(y[..., :, None], tf.concat(
      [tf.shape(y), [width]], 0))
  x_grid = tf.broadcast_to(x[..., None, :], tf.concat(
      [tf.shape(x)[:2], [height], tf.shape(x)[2:]], 0))
  return tf.cast(tf.stack([y_grid, x_grid], axis=-1), dtype)


def crop_mask_head_inputs(pixel_embedding, boxes, mask_size, use_xy=True,
                          crop_method='gather'):
  """Crop-mode pixel input of the mask head (before the instance embedding).

  Args:
    pixel_embedding: [B, h, w, E] pixel-embedding head output.
    boxes: [B, N, 4] boxes normalized to the (padded) map.
    mask_size: python int S.
    use_xy: prepend the 2 coordinate channels.
    crop_method: ``roi_crop.crop_and_resize`` method.

  Returns:
    [B, N, S, S, E (+2)]: channels [y, x, pixel embedding] if use_xy.
  """
  crops = roi_crop.crop_and_resize(pixel_embedding, boxes, mask_size,
                                   method=crop_method)
  if not use_xy:
    return crops
  coords = crop_coordinate_channels(tf.shape(boxes)[0], tf.shape(boxes)[1],
                                    mask_size, crops.dtype)
  return tf.concat([coords, crops], axis=-1)


def full_resolution_mask_head_inputs(pixel_embedding, boxes, use_xy=True):
  """Full-resolution pixel input of the mask head (spec section 5.3).

  Args:
    pixel_embedding: [B, h, w, E].
    boxes: [B, N, 4] normalized boxes.
    use_xy: prepend the 2 per-instance coordinate channels.

  Returns:
    [B, N, h, w, E (+2)]: the whole embedding map tiled per instance.
  """
  num_instances = tf.shape(boxes)[1]
  tiled = tf.tile(pixel_embedding[:, None],
                  tf.stack([1, num_instances, 1, 1, 1]))
  if not use_xy:
    return tiled
  coords = full_resolution_coordinate_channels(
      boxes, tf.shape(pixel_embedding)[1], tf.shape(pixel_embedding)[2],
      pixel_embedding.dtype)
  return tf.concat([coords, tiled], axis=-1)


def box_center_cells(boxes, height, width):
  """Integer map cell of each box centre.

  Args:
    boxes: [B, N, 4] normalized boxes.
    height: scalar h of the map.
    width: scalar w of the map.

  Returns:
    [B, N, 2] int32 (row, col) = (int((ymin + ymax) / 2 * h),
    int((xmin + xmax) / 2 * w)), truncated as the OD API does, then clipped
    into the map so a degenerate box on the border stays addressable.
  """
  boxes = tf.cast(boxes, tf.float32)
  rows = 0.5 * (boxes[..., 0] + boxes[..., 2]) * tf.cast(height, tf.float32)
  cols = 0.5 * (boxes[..., 1] + boxes[..., 3]) * tf.cast(width, tf.float32)
  rows = tf.clip_by_value(tf.cast(rows, tf.int32), 0, height - 1)
  cols = tf.clip_by_value(tf.cast(cols, tf.int32), 0, width - 1)
  return tf.stack([rows, cols], axis=-1)


def gather_instance_embeddings(instance_embedding, boxes):
  """Instance-embedding vectors at the box centres.

  Args:
    instance_embedding: [B, h, w, D].
    boxes: [B, N, 4] normalized boxes.

  Returns:
    [B, N, D].
  """
  cells = box_center_cells(boxes, tf.shape(instance_embedding)[1],
                           tf.shape(instance_embedding)[2])
  return tf.gather_nd(instance_embedding, cells, batch_dims=1)
