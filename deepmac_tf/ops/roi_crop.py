"""Batched, XLA-friendly crop-and-resize (RoIAlign with crop_and_resize
semantics) for every box of a batch in one op, without per-instance loops.

``tf.image.crop_and_resize`` has no XLA kernel, so it cannot run under
``tf.function(jit_compile=True)``. The functions here reproduce its sampling
exactly (spec section 5.2):

* output sample ``i`` of ``S`` lies at ``(y1 + i * (y2 - y1) / (S - 1)) *
  (h - 1)`` in feature-map pixels; with ``S == 1`` it lies at the box centre;
* the value is the bilinear interpolation of the 4 integer neighbours;
* a sample that falls outside ``[0, h - 1] x [0, w - 1]`` gets the
  extrapolation value 0. (The OD API's ``matmul_crop_and_resize`` instead
  zeroes each out-of-map neighbour; the two agree for boxes inside the map,
  i.e. for groundtruth, jittered and predicted boxes, which are clipped.)

Two equivalent formulations are provided:

* ``'gather'`` gathers the 4 neighbours of every sample; its cost is
  ``B * N * S * S * 4 * E`` whatever the map size: the default. On 2 CPU
  cores under XLA, output [8, 100, 32, 32, 16]: forward 31 ms, forward +
  backward ~130 ms for 32x32 and 128x128 maps
  (``scripts/benchmark_roi_crop.py``);
* ``'matmul'`` multiplies separable tent-weight interpolation matrices with
  the map (cost ``B * N * S * h * w * E``): dense matmuls that suit TPUs, but
  on CPU 117 / 124 ms (32x32 map) and 600 / 1280 ms (128x128 map).
"""

import tensorflow as tf

METHODS = ('gather', 'matmul')


def _crop_size_pair(crop_size):
  if isinstance(crop_size, int):
    return crop_size, crop_size
  height, width = crop_size
  return int(height), int(width)


def _sample_positions(low, high, size, num_samples):
  """Sample positions of crop_and_resize along one axis.

  Args:
    low: [...] normalized start coordinate (ymin or xmin), float32.
    high: [...] normalized end coordinate (ymax or xmax), float32.
    size: scalar int, length of the map along this axis.
    num_samples: python int, number of output samples.

  Returns:
    positions: [..., num_samples] float32, in map pixels.
    valid: [..., num_samples] float32, 1 where the position lies inside
      [0, size - 1], else 0 (the extrapolation value is 0).
  """
  extent = tf.cast(size - 1, tf.float32)
  if num_samples > 1:
    steps = tf.range(num_samples, dtype=tf.float32)
    scale = (high - low) * extent / float(num_samples - 1)
    positions = (low * extent)[..., None] + steps * scale[..., None]
  else:
    positions = (0.5 * (low + high) * extent)[..., None]
  valid = tf.logical_and(positions >= 0.0, positions <= extent)
  return positions, tf.cast(valid, tf.float32)


def _box_coordinates(boxes):
  return tf.unstack(tf.cast(boxes, tf.float32), num=4, axis=-1)


def _crop_gather(features, boxes, crop_height, crop_width):
  """Gather formulation; see ``crop_and_resize``."""
  batch = tf.shape(features)[0]
  height = tf.shape(features)[1]
  width = tf.shape(features)[2]
  depth = features.shape[-1] or tf.shape(features)[3]
  num_boxes = tf.shape(boxes)[1]
  ymin, xmin, ymax, xmax = _box_coordinates(boxes)
  pos_y, valid_y = _sample_positions(ymin, ymax, height, crop_height)
  pos_x, valid_x = _sample_positions(xmin, xmax, width, crop_width)

  def neighbours(positions, valid, size):
    floor = tf.math.floor(positions)
    frac = positions - floor
    low = tf.clip_by_value(tf.cast(floor, tf.int32), 0, size - 1)
    high = tf.clip_by_value(low + 1, 0, size - 1)
    return low, high, (1.0 - frac) * valid, frac * valid

  y0, y1, wy0, wy1 = neighbours(pos_y, valid_y, height)
  x0, x1, wx0, wx1 = neighbours(pos_x, valid_x, width)
  # Global row indices into the flattened [B * h * w, E] map: a plain gather
  # (no batch_dims) whose gradient XLA lowers to a simpler, faster scatter.
  offsets = (tf.range(batch) * height * width)[:, None, None, None]
  flat = tf.reshape(features, [-1, depth])
  out_shape = [batch, num_boxes, crop_height, crop_width, depth]
  dtype = features.dtype
  result = None
  for rows, row_weights in ((y0, wy0), (y1, wy1)):
    for cols, col_weights in ((x0, wx0), (x1, wx1)):
      index = rows[..., :, None] * width + cols[..., None, :] + offsets
      values = tf.reshape(tf.gather(flat, tf.reshape(index, [-1])), out_shape)
      weight = row_weights[..., :, None] * col_weights[..., None, :]
      term = values * tf.cast(weight, dtype)[..., None]
      result = term if result is None else result + term
  return result


def _interpolation_matrix(positions, valid, size, dtype):
  """[..., S, size] bilinear weights (a tent of width 1 around each sample)."""
  grid = tf.range(size, dtype=tf.float32)
  weights = tf.nn.relu(1.0 - tf.abs(positions[..., None] - grid))
  return tf.cast(weights * valid[..., None], dtype)


def _crop_matmul(features, boxes, crop_height, crop_width):
  """Matmul formulation; see ``crop_and_resize``."""
  height = tf.shape(features)[1]
  width = tf.shape(features)[2]
  ymin, xmin, ymax, xmax = _box_coordinates(boxes)
  pos_y, valid_y = _sample_positions(ymin, ymax, height, crop_height)
  pos_x, valid_x = _sample_positions(xmin, xmax, width, crop_width)
  weights_y = _interpolation_matrix(pos_y, valid_y, height, features.dtype)
  weights_x = _interpolation_matrix(pos_x, valid_x, width, features.dtype)
  rows = tf.einsum('bnih,bhwe->bniwe', weights_y, features)
  return tf.einsum('bniwe,bnjw->bnije', rows, weights_x)


def crop_and_resize(features, boxes, crop_size, method='gather'):
  """Crops every box of every image and resizes it bilinearly.

  Same values as ``tf.image.crop_and_resize(features, boxes.reshape(-1, 4),
  box_indices=repeat(range(B), N), crop_size, extrapolation_value=0)``, but
  runs under XLA and keeps the [B, N] layout.

  Args:
    features: [batch, height, width, channels] map (any float dtype; the
      output has the same dtype).
    boxes: [batch, num_boxes, 4] boxes [ymin, xmin, ymax, xmax] normalized to
      the map (0..1; values outside sample the zero extrapolation).
    crop_size: int S or (crop_height, crop_width).
    method: 'gather' (default) or 'matmul'; identical results.

  Returns:
    [batch, num_boxes, crop_height, crop_width, channels] crops.
  """
  crop_height, crop_width = _crop_size_pair(crop_size)
  if method == 'gather':
    return _crop_gather(features, boxes, crop_height, crop_width)
  if method == 'matmul':
    return _crop_matmul(features, boxes, crop_height, crop_width)
  raise ValueError(f'crop_and_resize method must be one of {METHODS}, got '
                   f'{method!r}.')


def crop_and_resize_per_instance(images, boxes, crop_size, method='gather'):
  """Crops each instance's own image at its own box.

  Used for groundtruth masks (every instance has its own image-sized mask)
  and for pasting box masks back into image space.

  Args:
    images: [batch, num_instances, height, width] per-instance maps.
    boxes: [batch, num_instances, 4] normalized boxes, one per map.
    crop_size: int S or (crop_height, crop_width).
    method: see ``crop_and_resize``.

  Returns:
    [batch, num_instances, crop_height, crop_width] crops, images' dtype.
  """
  crop_height, crop_width = _crop_size_pair(crop_size)
  batch = tf.shape(images)[0]
  num_instances = tf.shape(images)[1]
  flat_images = tf.reshape(
      images,
      tf.stack([batch * num_instances, tf.shape(images)[2],
                tf.shape(images)[3], 1]))
  flat_boxes = tf.reshape(boxes, [batch * num_instances, 1, 4])
  crops = crop_and_resize(flat_images, flat_boxes, (crop_height, crop_width),
                          method=method)
  return tf.reshape(crops,
                    tf.stack([batch, num_instances, crop_height, crop_width]))
