"""Pure, vectorized ops of the Deep-MAC mask branch (spec sections 1.2, 5).

Every function works on a whole batch at once ([batch, num_instances, ...]),
has no Python loop over instances, and runs under
``tf.function(jit_compile=True)``. Boxes are [ymin, xmin, ymax, xmax]
normalized to the (padded) map they refer to.
"""

import tensorflow as tf

from deepmac_tf.meta_architectures import roi_crop


def flatten_instances(tensor):
  """[B, N, ...] -> [B * N, ...]."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))


def unflatten_instances(tensor, batch, num_instances):
  """[B * N, ...] -> [B, N, ...]."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor,
                    tf.concat([[batch, num_instances], shape[1:]], 0))


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


def crop_instance_masks(masks, boxes, mask_size, crop_method='gather'):
  """Groundtruth mask targets: each instance's mask cropped at its box.

  Soft (bilinear) values, not binarized; no gradient flows through.

  Args:
    masks: [B, N, H, W] instance masks at the input resolution.
    boxes: [B, N, 4] boxes normalized to the padded input.
    mask_size: python int S.
    crop_method: ``roi_crop.crop_and_resize`` method.

  Returns:
    [B, N, S, S] float32 targets.
  """
  masks = tf.stop_gradient(tf.cast(masks, tf.float32))
  crops = roi_crop.crop_and_resize_per_instance(
      masks, tf.stop_gradient(boxes), mask_size, method=crop_method)
  return tf.stop_gradient(crops)


def fill_boxes(boxes, height, width):
  """Binary box masks (spec section 5.1).

  Pixel (i, j) is inside iff ymin * H <= i <= ymax * H and
  xmin * W <= j <= xmax * W (inclusive, scaled by H and W, not H - 1).

  Args:
    boxes: [B, N, 4] normalized boxes.
    height: scalar H.
    width: scalar W.

  Returns:
    [B, N, H, W] float32 of 0 / 1.
  """
  boxes = tf.cast(boxes, tf.float32)
  scale = tf.cast(tf.stack([height, width, height, width]), tf.float32)
  ymin, xmin, ymax, xmax = tf.unstack(boxes * scale, axis=-1)
  rows = tf.range(height, dtype=tf.float32)
  cols = tf.range(width, dtype=tf.float32)
  in_rows = tf.logical_and(rows >= ymin[..., None], rows <= ymax[..., None])
  in_cols = tf.logical_and(cols >= xmin[..., None], cols <= xmax[..., None])
  inside = tf.logical_and(in_rows[..., :, None], in_cols[..., None, :])
  return tf.cast(inside, tf.float32)


def resize_logits(logits, height, width):
  """Bilinearly resizes [B, N, h, w] logits to [B, N, height, width]."""
  batch = tf.shape(logits)[0]
  num_instances = tf.shape(logits)[1]
  flat = flatten_instances(logits)[..., None]
  resized = tf.image.resize(flat, tf.stack([height, width]),
                            method=tf.image.ResizeMethod.BILINEAR)
  return unflatten_instances(resized[..., 0], batch, num_instances)
