"""Random box jitter of the groundtruth boxes used for mask targets (training
only; spec section 2.2, OD API ``random_jitter_boxes`` semantics)."""

import tensorflow as tf

# Lower-cased names of RandomJitterBoxes.JitterMode.
JITTER_MODES = ('default', 'expand', 'shrink', 'expand_symmetric',
                'shrink_symmetric', 'expand_symmetric_xy',
                'shrink_symmetric_xy')


def _factor_range(ratio, mode):
  if mode.startswith('shrink'):
    return -ratio, 0.0
  if mode.startswith('expand'):
    return 0.0, ratio
  return -ratio, ratio


def _uniform(shape, minval, maxval, seed):
  if seed is None:
    return tf.random.uniform(shape, minval, maxval, dtype=tf.float32)
  return tf.random.stateless_uniform(shape, seed, minval, maxval,
                                     dtype=tf.float32)


def jitter_boxes(boxes, ratio, mode='default', seed=None):
  """Randomly distorts each box; the result is clipped to [0, 1].

  The distortion factor of a box side is ``1 + U(lo, hi)`` with (lo, hi) =
  (-r, r) for 'default', (0, r) for 'expand*' and (-r, 0) for 'shrink*'.

  * Symmetric modes keep the box centre: one factor for the height and one
    for the width (a single shared one for the ``_xy`` modes), each capped at
    ``min(2 c / size, 2 (1 - c) / size)`` so the box stays in the image; the
    new extent is ``c +- size * factor / 2``.
  * Other modes draw 4 factors, each scaling the half-extent on its own side
    of the centre: ``ymin = cy - h d0 / 2``, ``ymax = cy + h d2 / 2``, and
    likewise for x.

  Args:
    boxes: [..., 4] normalized [ymin, xmin, ymax, xmax] boxes.
    ratio: python float r >= 0; 0 returns the boxes unchanged.
    mode: one of ``JITTER_MODES``.
    seed: optional int32 [2] seed (stateless sampling); None uses the global
      random state.

  Returns:
    [..., 4] jittered boxes, same dtype as ``boxes``.
  """
  if mode not in JITTER_MODES:
    raise ValueError(f'jitter mode must be one of {JITTER_MODES}, got '
                     f'{mode!r}.')
  if ratio <= 0:
    return boxes
  dtype = boxes.dtype
  boxes = tf.cast(boxes, tf.float32)
  lo, hi = _factor_range(float(ratio), mode)
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
  center_y, center_x = 0.5 * (ymin + ymax), 0.5 * (xmin + xmax)
  height, width = ymax - ymin, xmax - xmin
  batch_shape = tf.shape(ymin)
  if 'symmetric' in mode:
    num_factors = 1 if mode.endswith('_xy') else 2
    factors = 1.0 + _uniform(tf.concat([batch_shape, [num_factors]], 0),
                             lo, hi, seed)
    if num_factors == 1:
      factors = tf.concat([factors, factors], axis=-1)
    centers = tf.stack([center_y, center_x], axis=-1)
    sizes = tf.maximum(tf.stack([height, width], axis=-1), 1e-8)
    max_factors = tf.minimum(2.0 * centers / sizes,
                             2.0 * (1.0 - centers) / sizes)
    factors = tf.minimum(factors, max_factors)
    half = 0.5 * sizes * factors
    jittered = tf.concat([centers - half, centers + half], axis=-1)
  else:
    factors = 1.0 + _uniform(tf.concat([batch_shape, [4]], 0), lo, hi, seed)
    half_extents = 0.5 * tf.stack([height, width, height, width], axis=-1)
    signs = tf.constant([-1.0, -1.0, 1.0, 1.0])
    centers = tf.stack([center_y, center_x, center_y, center_x], axis=-1)
    jittered = centers + signs * half_extents * factors
  return tf.cast(tf.clip_by_value(jittered, 0.0, 1.0), dtype)
