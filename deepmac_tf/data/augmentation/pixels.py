"""Image-only steps of the OD API preprocessor (boxes and masks unchanged).

Images are float32 [height, width, 3] in [0, 255] (except after
``normalize_image`` / ``subtract_channel_mean``, which change the range as
the OD API's do). Random draws follow the OD API's: a step with
``random_coef`` is skipped with that probability.
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import color
from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields

_IMAGE = InputFields.IMAGE


def _with_image(tensors, image):
  result = dict(tensors)
  result[_IMAGE] = image
  return result


def _gray3(image):
  """[H, W, 3] -> its luminance repeated over 3 channels."""
  return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))


def normalize_image(tensors, original_minval, original_maxval,
                    target_minval=0.0, target_maxval=1.0):
  """Maps [original_minval, original_maxval] linearly onto
  [target_minval, target_maxval]."""
  image = tf.cast(tensors[_IMAGE], tf.float32)
  scale = (target_maxval - target_minval) / (original_maxval -
                                             original_minval)
  return _with_image(tensors,
                     (image - original_minval) * scale + target_minval)


def subtract_channel_mean(tensors, means):
  """image - means ([3])."""
  return _with_image(tensors, tensors[_IMAGE] - tf.constant(means,
                                                            tf.float32))


def random_pixel_value_scale(tensors, minval=0.9, maxval=1.1, seed=None):
  """Multiplies every value by its own factor from U(minval, maxval),
  clipped to [0, 255]."""
  image = tensors[_IMAGE]
  factors = tf.random.uniform(tf.shape(image), minval, maxval, seed=seed)
  return _with_image(tensors, tf.clip_by_value(image * factors, 0.0, 255.0))


def rgb_to_gray(tensors):
  """Gray image, repeated over 3 channels (the OD API returns 1 channel;
  our models take 3, as the image resizer's convert_to_grayscale)."""
  return _with_image(tensors, _gray3(tensors[_IMAGE]))


def random_rgb_to_gray(tensors, probability=0.1, seed=None):
  """``rgb_to_gray`` with ``probability``."""
  image = tensors[_IMAGE]
  gray = tf.cond(instances.coin_flip(probability, seed),
                 lambda: _gray3(image), lambda: image)
  return _with_image(tensors, gray)


def adjust_gamma(tensors, gamma=1.0, gain=1.0):
  """gain * (image / 255)^gamma * 255, clipped to [0, 255]."""
  image = tf.image.adjust_gamma(tensors[_IMAGE] / 255.0, gamma, gain)
  return _with_image(tensors, tf.clip_by_value(image * 255.0, 0.0, 255.0))


def random_distort_color(tensors, color_ordering=0, seed=None):
  """The OD API's distort_color: brightness (max delta 32/255), saturation
  (0.5, 1.5), hue (0.2), contrast (0.5, 1.5) with ``color_ordering`` 0; the
  order brightness, contrast, saturation, hue with 1."""
  brightness = lambda t: color.random_adjust_brightness(t, 32.0 / 255.0,
                                                        seed=seed)
  saturation = lambda t: color.random_adjust_saturation(t, 0.5, 1.5, seed=seed)
  hue = lambda t: color.random_adjust_hue(t, 0.2, seed=seed)
  contrast = lambda t: color.random_adjust_contrast(t, 0.5, 1.5, seed=seed)
  orders = {0: (brightness, saturation, hue, contrast),
            1: (brightness, contrast, saturation, hue)}
  if color_ordering not in orders:
    raise ValueError(f'color_ordering must be 0 or 1, got {color_ordering}.')
  for step in orders[color_ordering]:
    tensors = step(tensors)
  return tensors


def black_patch(image, y_min, x_min, box_size):
  """``image`` with a black box_size square at (y_min, x_min) (clipped)."""
  shape = tf.shape(image)
  patch = tf.image.pad_to_bounding_box(
      tf.ones([box_size, box_size, 3], image.dtype), y_min, x_min,
      tf.maximum(shape[0], y_min + box_size),
      tf.maximum(shape[1], x_min + box_size))
  return image * (1.0 - patch[:shape[0], :shape[1]])


def random_black_patches(tensors, max_black_patches=10, probability=0.5,
                         size_to_image_ratio=0.1, seed=None):
  """Up to ``max_black_patches`` black squares, each with ``probability``.

  Side: int(min(height, width) * size_to_image_ratio); top-left corner at
  int(U(0, 1 - size_to_image_ratio) * size) on each axis (OD API).
  """
  image = tensors[_IMAGE]
  shape = tf.shape(image)
  size = tf.cast(shape[:2], tf.float32)
  box_size = tf.cast(tf.reduce_min(size) * size_to_image_ratio, tf.int32)
  for _ in range(max_black_patches):
    corner = tf.random.uniform([2], 0.0, 1.0 - size_to_image_ratio,
                               seed=seed)
    y_min, x_min = tf.unstack(tf.cast(corner * size, tf.int32))
    image = tf.cond(
        tf.random.uniform([], seed=seed) > probability, lambda: image,
        lambda y=y_min, x=x_min: black_patch(image, y, x, box_size))
  return _with_image(tensors, image)


def random_jpeg_quality(tensors, min_jpeg_quality=0, max_jpeg_quality=100,
                        random_coef=0.0, seed=None):
  """JPEG round trip at a quality from U{min .. max - 1} (OD API: the image
  cast to uint8 first); skipped with probability ``random_coef``."""
  image = tensors[_IMAGE]

  def _round_trip():
    quality = instances.random_int(min_jpeg_quality, max_jpeg_quality, seed)
    as_uint8 = tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8)
    return tf.cast(tf.image.adjust_jpeg_quality(as_uint8, quality),
                   tf.float32)

  apply = tf.random.uniform([], seed=seed) >= random_coef
  out = tf.cond(apply, _round_trip, lambda: image)
  out.set_shape(image.shape)
  return _with_image(tensors, out)


def patch_mask(y, x, patch_size, height, width):
  """[height, width] bool: a patch_size square centred at (y, x), clipped
  to the image (for even sizes the centre is the lower-right middle)."""
  top = y - patch_size // 2
  left = x - patch_size // 2
  rows = tf.range(height)[:, tf.newaxis]
  cols = tf.range(width)[tf.newaxis, :]
  return tf.logical_and(
      tf.logical_and(rows >= top, rows < top + patch_size),
      tf.logical_and(cols >= left, cols < left + patch_size))


def random_patch_gaussian(tensors, min_patch_size=1, max_patch_size=250,
                          min_gaussian_stddev=0.0, max_gaussian_stddev=1.0,
                          random_coef=0.0, seed=None):
  """Gaussian noise on a random square patch (OD API, Lopes et al. 2019).

  Patch side from U{min_patch_size .. max_patch_size - 1}, centre uniform in
  the image, stddev from U(min, max) in units of image / 255; the noisy
  values are clipped to [0, 255]. Skipped with probability ``random_coef``.
  """
  image = tensors[_IMAGE]

  def _apply():
    shape = tf.shape(image)
    patch_size = instances.random_int(min_patch_size, max_patch_size, seed)
    stddev = tf.random.uniform([], min_gaussian_stddev, max_gaussian_stddev,
                               seed=seed)
    y = instances.random_int(0, shape[0], seed)
    x = instances.random_int(0, shape[1], seed)
    noise = tf.random.normal(shape, stddev=stddev, seed=seed)
    noisy = tf.clip_by_value(image / 255.0 + noise, 0.0, 1.0) * 255.0
    inside = patch_mask(y, x, patch_size, shape[0], shape[1])[..., tf.newaxis]
    return tf.where(inside, noisy, image)

  apply = tf.random.uniform([], seed=seed) >= random_coef
  out = tf.cond(apply, _apply, lambda: image)
  return _with_image(tensors, out)
