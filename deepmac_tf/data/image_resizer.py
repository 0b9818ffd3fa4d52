"""Image resizing from the ``ImageResizer`` proto (OD API semantics).

- ``keep_aspect_ratio_resizer``: scale so the shorter side is min_dimension,
  unless the longer side would then exceed max_dimension, in which case the
  longer side is max_dimension (new sides are rounded). With
  ``pad_to_max_dimension`` the result is padded at the bottom / right to
  max_dimension x max_dimension with ``per_channel_pad_value`` (default 0).
- ``fixed_shape_resizer``: resize to height x width (aspect not kept).
- ``identity_resizer``: no change.
- ``conditional_shape_resizer`` / ``pad_to_multiple_resizer`` (OD API): parse,
  refused by ``build`` in one line.

Masks are resized with nearest neighbour (they stay 0/1) and zero-padded like
the image. ``convert_to_grayscale`` converts to grayscale and repeats it over
3 channels, so models always see [height, width, 3].
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import image_resizer_pb2

_METHODS = {
    image_resizer_pb2.BILINEAR: tf.image.ResizeMethod.BILINEAR,
    image_resizer_pb2.NEAREST_NEIGHBOR: tf.image.ResizeMethod.NEAREST_NEIGHBOR,
    image_resizer_pb2.BICUBIC: tf.image.ResizeMethod.BICUBIC,
    image_resizer_pb2.AREA: tf.image.ResizeMethod.AREA,
}

KEEP_ASPECT_RATIO = 'keep_aspect_ratio_resizer'
FIXED_SHAPE = 'fixed_shape_resizer'
IDENTITY = 'identity_resizer'
# OD API resizers that parse but are not built here (their output size
# follows each image's, so the images of a batch would not stack).
REFUSED_RESIZERS = ('conditional_shape_resizer', 'pad_to_multiple_resizer')


class ImageResizer:
  """Resizes one image [height, width, 3] and its masks [n, height, width]."""

  def __init__(self, kind, min_dimension=None, max_dimension=None,
               pad_to_max_dimension=False, height=None, width=None,
               method=image_resizer_pb2.BILINEAR, convert_to_grayscale=False,
               per_channel_pad_value=()):
    """Creates a resizer; prefer ``build`` from the proto."""
    if kind not in (KEEP_ASPECT_RATIO, FIXED_SHAPE, IDENTITY):
      raise ValueError(f'Unknown resizer kind {kind!r}.')
    self.kind = kind
    self.min_dimension = min_dimension
    self.max_dimension = max_dimension
    self.pad_to_max_dimension = pad_to_max_dimension
    self.height = height
    self.width = width
    self.method = _METHODS[method]
    self.convert_to_grayscale = convert_to_grayscale
    self.per_channel_pad_value = tuple(per_channel_pad_value)

  @property
  def output_size(self):
    """Static (height, width) of every output image, or None if it varies."""
    if self.kind == FIXED_SHAPE:
      return (self.height, self.width)
    if self.kind == KEEP_ASPECT_RATIO and self.pad_to_max_dimension:
      return (self.max_dimension, self.max_dimension)
    return None

  def resized_size(self, image_size):
    """Unpadded output size [2] int32 for an input ``image_size`` [2]."""
    if self.kind == IDENTITY:
      return tf.cast(image_size, tf.int32)
    if self.kind == FIXED_SHAPE:
      return tf.constant([self.height, self.width], tf.int32)
    size = tf.cast(image_size, tf.float32)
    scale = float(self.min_dimension) / tf.reduce_min(size)
    if self.max_dimension:
      scale = tf.minimum(scale, float(self.max_dimension) /
                         tf.reduce_max(size))
    new_size = tf.cast(tf.round(size * scale), tf.int32)
    if self.max_dimension:
      new_size = tf.minimum(new_size, self.max_dimension)
    return tf.maximum(new_size, 1)

  def __call__(self, image, masks=None):
    """Resizes (and pads) an image and its masks.

    Args:
      image: [height, width, 3] image (any real dtype).
      masks: optional [n, height, width] float32 masks.

    Returns:
      (image [H, W, 3] float32, masks [n, H, W] or None,
       true_image_shape [3] int32 = unpadded resized height, width, 3).
    """
    image = tf.cast(image, tf.float32)
    if self.convert_to_grayscale:
      image = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    new_size = self.resized_size(tf.shape(image)[:2])
    if self.kind != IDENTITY:
      image = tf.image.resize(image, new_size, method=self.method)
      if self.method == tf.image.ResizeMethod.BICUBIC:
        image = tf.clip_by_value(image, 0.0, 255.0)
      if masks is not None:
        masks = instances.resize_masks(masks, new_size)
    true_shape = tf.concat([new_size, [3]], axis=0)
    if self.output_size is not None and self.kind == KEEP_ASPECT_RATIO:
      image = self._pad(image)
      if masks is not None:
        masks = instances.pad_masks(masks, 0, 0, self.max_dimension,
                                    self.max_dimension)
    if self.output_size is not None:
      image.set_shape(list(self.output_size) + [3])
      if masks is not None:
        masks.set_shape([None] + list(self.output_size))
    return image, masks, true_shape

  def _pad(self, image):
    size = self.max_dimension
    if not self.per_channel_pad_value:
      return tf.image.pad_to_bounding_box(image, 0, 0, size, size)
    return instances.pad_with_color(image, 0, 0, size, size,
                                    self.per_channel_pad_value)


def build(image_resizer_config, config_path='image_resizer'):
  """Builds an ``ImageResizer`` from an ``ImageResizer`` proto.

  Raises:
    ConfigError: no resizer set or invalid dimensions (naming the field).
  """
  kind = image_resizer_config.WhichOneof('image_resizer_oneof')
  if kind is None:
    raise ConfigError(f'{config_path}: no resizer set; expected one of '
                      f'{KEEP_ASPECT_RATIO}, {FIXED_SHAPE}, {IDENTITY}.')
  config = getattr(image_resizer_config, kind)
  path = f'{config_path}.{kind}'
  if kind in REFUSED_RESIZERS:
    raise ConfigError(f'{path}: supported by the OD API, not by deepmac_tf '
                      '(its output size follows each image\'s); use '
                      f'{KEEP_ASPECT_RATIO}, {FIXED_SHAPE} or {IDENTITY}.')
  if kind == IDENTITY:
    return ImageResizer(IDENTITY)
  if kind == FIXED_SHAPE:
    if config.height < 1 or config.width < 1:
      raise ConfigError(f'{path}: height and width must be >= 1, got '
                        f'{config.height} x {config.width}.')
    return ImageResizer(FIXED_SHAPE, height=config.height, width=config.width,
                        method=config.resize_method,
                        convert_to_grayscale=config.convert_to_grayscale)
  if config.min_dimension < 1:
    raise ConfigError(f'{path}.min_dimension: must be >= 1, got '
                      f'{config.min_dimension}.')
  if config.max_dimension < config.min_dimension:
    raise ConfigError(f'{path}: min_dimension ({config.min_dimension}) must '
                      f'not exceed max_dimension ({config.max_dimension}).')
  if config.per_channel_pad_value and len(config.per_channel_pad_value) != 3:
    raise ConfigError(f'{path}.per_channel_pad_value: needs 3 values (one per '
                      f'channel), got {len(config.per_channel_pad_value)}.')
  return ImageResizer(
      KEEP_ASPECT_RATIO, min_dimension=config.min_dimension,
      max_dimension=config.max_dimension,
      pad_to_max_dimension=config.pad_to_max_dimension,
      method=config.resize_method,
      convert_to_grayscale=config.convert_to_grayscale,
      per_channel_pad_value=config.per_channel_pad_value)


def resize_input_tensors(tensors, resizer):
  """Resizes one image's tensor dict for the model.

  Image and masks are resized / padded; normalized boxes are rescaled to the
  padded image (a box keeps its pixel position in the unpadded part);
  ``true_image_shape`` [3] int32 is added.

  Args:
    tensors: dict keyed by ``InputFields`` with an image [height, width, 3].
    resizer: an ``ImageResizer``.

  Returns:
    The updated dict (image float32 [H, W, 3]).
  """
  result = dict(tensors)
  image, masks, true_shape = resizer(tensors[InputFields.IMAGE],
                                     tensors.get(InputFields.INSTANCE_MASKS))
  result[InputFields.IMAGE] = image
  result[InputFields.TRUE_IMAGE_SHAPE] = true_shape
  if masks is not None:
    result[InputFields.INSTANCE_MASKS] = masks
  if InputFields.BOXES in tensors:
    padded = tf.cast(tf.shape(image)[:2], tf.float32)
    ratio = tf.cast(true_shape[:2], tf.float32) / padded
    result[InputFields.BOXES] = tensors[InputFields.BOXES] * tf.concat(
        [ratio, ratio], axis=0)
  return result
