"""Serving inputs of an exported model: specs, decoding and validation.

Every signature input has an unknown-rank ``TensorSpec`` so that a wrong
rank, batch or channel count reaches the graph and fails with one
``InvalidArgumentError`` whose message says what was expected (a strict
``[1, None, None, 3]`` spec would fail at binding time with TF's own words).

``--input_type`` values (the OD API's) and their ``input_tensor``:

* ``image_tensor``: uint8 [batch, height, width, 3];
* ``float_image_tensor``: float32 [batch, height, width, 3], values 0..255;
* ``encoded_image_string_tensor``: string [batch] PNG / JPEG / BMP / GIF;
* ``tf_example``: string [batch] serialized OD API tf.Examples
  (``image/encoded`` is decoded; other features are ignored);
* ``image_and_boxes_tensor``: uint8 [batch, height, width, 3] plus ``boxes``
  float32 [batch, num_boxes, 4] ymin, xmin, ymax, xmax normalized to the
  original image.

String batches of images of different sizes need a resizer with a fixed
output size (``pad_to_max_dimension`` or ``fixed_shape_resizer``).
"""

import tensorflow as tf

from deepmac_tf.data.fields import TfExampleFields

IMAGE_TENSOR = 'image_tensor'
FLOAT_IMAGE_TENSOR = 'float_image_tensor'
ENCODED_IMAGE_STRING_TENSOR = 'encoded_image_string_tensor'
TF_EXAMPLE = 'tf_example'
IMAGE_AND_BOXES_TENSOR = 'image_and_boxes_tensor'

INPUT_TYPES = (IMAGE_TENSOR, FLOAT_IMAGE_TENSOR, ENCODED_IMAGE_STRING_TENSOR,
               TF_EXAMPLE, IMAGE_AND_BOXES_TENSOR)
STRING_INPUT_TYPES = (ENCODED_IMAGE_STRING_TENSOR, TF_EXAMPLE)

INPUT_TENSOR = 'input_tensor'
BOXES = 'boxes'
# Box-prompted signature of a class-specific model (MaskX R-CNN, Mask R-CNN
# with class_agnostic: false): the mask of a box is its class's channel.
CLASSES = 'classes'
EXPECTED_CLASSES = ('int32 [batch, num_boxes] 1-based label-map ids of the '
                    'boxes (the model\'s masks are class-specific)')

_DTYPES = {
    IMAGE_TENSOR: tf.uint8,
    FLOAT_IMAGE_TENSOR: tf.float32,
    ENCODED_IMAGE_STRING_TENSOR: tf.string,
    TF_EXAMPLE: tf.string,
    IMAGE_AND_BOXES_TENSOR: tf.uint8,
}

# What each input expects, as said in error messages and export metadata.
EXPECTED = {
    IMAGE_TENSOR: 'uint8 [batch, height, width, 3]',
    FLOAT_IMAGE_TENSOR: 'float32 [batch, height, width, 3] (0..255)',
    ENCODED_IMAGE_STRING_TENSOR: 'string [batch] of encoded PNG/JPEG images',
    TF_EXAMPLE: 'string [batch] of serialized tf.Examples',
    IMAGE_AND_BOXES_TENSOR: 'uint8 [batch, height, width, 3]',
}
EXPECTED_BOXES = ('float32 [batch, num_boxes, 4] (ymin, xmin, ymax, xmax) '
                  'normalized to the original image')


def input_specs(input_type, with_classes=False):
  """The signature's ``{name: TensorSpec}`` for an input type
  (``with_classes``: the box-prompted one also takes ``classes``)."""
  specs = {INPUT_TENSOR: tf.TensorSpec(None, _DTYPES[input_type],
                                       name=INPUT_TENSOR)}
  if input_type == IMAGE_AND_BOXES_TENSOR:
    specs[BOXES] = tf.TensorSpec(None, tf.float32, name=BOXES)
    if with_classes:
      specs[CLASSES] = tf.TensorSpec(None, tf.int32, name=CLASSES)
  return specs


def _check(condition, message, *data):
  return tf.debugging.Assert(condition, [message, *data], summarize=8)


def validate_images(images, input_type):
  """Checks an image batch in-graph; returns it with a static rank.

  Args:
    images: the ``input_tensor`` of an image input type (any rank).
    input_type: its input type (for the message).

  Returns:
    [batch, height, width, 3] images, after the checks ran.
  """
  where = f'{INPUT_TENSOR}: expected {EXPECTED[input_type]}'
  shape = tf.shape(images)
  rank_ok = tf.equal(tf.rank(images), 4)
  # Guard the shape reads: index 3 / 0 exist only when the rank is 4.
  padded_shape = tf.concat([shape, tf.ones([4], tf.int32)], axis=0)
  checks = [
      _check(rank_ok, where + ', got shape', shape),
      _check(tf.logical_or(tf.logical_not(rank_ok),
                           tf.equal(padded_shape[3], 3)),
             where + ' (3 RGB channels), got shape', shape),
      _check(tf.logical_or(tf.logical_not(rank_ok),
                           tf.reduce_all(padded_shape[:3] > 0)),
             where + ' with a non-empty batch and image, got shape', shape),
  ]
  if input_type == FLOAT_IMAGE_TENSOR:
    # 0..1 images (what many libraries produce) would be seen as black.
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    checks.append(_check(
        tf.logical_and(low >= 0.0, tf.logical_or(high > 1.0, high <= 0.0)),
        f'{INPUT_TENSOR}: float_image_tensor expects pixel values 0..255 '
        '(multiply 0..1 images by 255); min / max given:', low, high))
  # A reshape, not ensure_shape: grappler would unify the shapes of input
  # and output and fold the rank check away.
  with tf.control_dependencies(checks):
    return tf.reshape(images, tf.stack([padded_shape[0], padded_shape[1],
                                        padded_shape[2], 3]))


def validate_strings(strings, input_type):
  """Checks a string batch in-graph; returns it as [batch]."""
  where = f'{INPUT_TENSOR}: expected {EXPECTED[input_type]}'
  shape = tf.shape(strings)
  checks = [
      _check(tf.equal(tf.rank(strings), 1), where + ', got shape', shape),
      _check(tf.reduce_all(shape > 0), where + ' (non-empty), got shape',
             shape),
  ]
  with tf.control_dependencies(checks):
    return tf.reshape(strings, [-1])


def validate_boxes(boxes, batch_size):
  """Checks prompted boxes in-graph; returns them as [batch, num_boxes, 4].

  Boxes must have rank 3, 4 coordinates, the images' batch size, values in
  [0, 1] and ymin <= ymax, xmin <= xmax. An empty box list is allowed.
  """
  where = f'{BOXES}: expected {EXPECTED_BOXES}'
  shape = tf.shape(boxes)
  rank_ok = tf.equal(tf.rank(boxes), 3)
  padded_shape = tf.concat([shape, tf.ones([3], tf.int32)], axis=0)
  shape_checks = [
      _check(rank_ok, where + ', got shape', shape),
      _check(tf.logical_or(tf.logical_not(rank_ok),
                           tf.equal(padded_shape[2], 4)),
             where + ' (4 coordinates per box), got shape', shape),
      _check(tf.logical_or(tf.logical_not(rank_ok),
                           tf.equal(padded_shape[0], batch_size)),
             where + ' with the batch size of input_tensor; boxes shape / '
             'image batch:', shape, batch_size),
  ]
  with tf.control_dependencies(shape_checks):
    boxes = tf.reshape(boxes, tf.stack([padded_shape[0], padded_shape[1], 4]))
  in_range = tf.reduce_all(tf.logical_and(boxes >= 0.0, boxes <= 1.0))
  ordered = tf.reduce_all(tf.logical_and(boxes[..., 2] >= boxes[..., 0],
                                         boxes[..., 3] >= boxes[..., 1]))
  finite = tf.reduce_all(tf.math.is_finite(boxes))
  value_checks = [
      _check(tf.logical_and(finite, in_range),
             f'{BOXES}: coordinates must be normalized to [0, 1] (divide '
             'pixel coordinates by the image height / width); min / max '
             'given:', tf.reduce_min(boxes), tf.reduce_max(boxes)),
      _check(ordered, f'{BOXES}: each box must be [ymin, xmin, ymax, xmax] '
             'with ymin <= ymax and xmin <= xmax; some box is inverted.'),
  ]
  with tf.control_dependencies(value_checks):
    return tf.identity(boxes)


def validate_classes(classes, boxes, num_classes):
  """Checks the classes given with prompted boxes in-graph.

  Args:
    classes: int32 tensor (any rank) of 1-based label ids.
    boxes: validated [batch, num_boxes, 4] boxes.
    num_classes: the model's number of classes.

  Returns:
    [batch, num_boxes] int32 0-based classes, after the checks ran.
  """
  where = f'{CLASSES}: expected {EXPECTED_CLASSES}'
  shape = tf.shape(classes)
  expected = tf.shape(boxes)[:2]
  rank_ok = tf.equal(tf.rank(classes), 2)
  padded_shape = tf.concat([shape, tf.ones([2], tf.int32)], axis=0)
  checks = [
      _check(tf.logical_and(rank_ok, tf.reduce_all(
          tf.equal(padded_shape[:2], expected))),
             where + ', one per box; classes shape / boxes [batch, num]:',
             shape, expected),
  ]
  with tf.control_dependencies(checks):
    classes = tf.reshape(classes, expected)
  in_range = tf.reduce_all(tf.logical_and(classes >= 1,
                                          classes <= num_classes))
  with tf.control_dependencies([_check(
      in_range, f'{CLASSES}: ids must be in 1..{num_classes}; min / max '
      'given:', tf.reduce_min(classes), tf.reduce_max(classes))]):
    return tf.identity(classes) - 1


def decode_image(encoded):
  """Encoded PNG / JPEG / BMP / GIF string -> uint8 [height, width, 3]."""
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  return tf.ensure_shape(image, [None, None, 3])


def decode_tf_example(serialized):
  """Serialized OD API tf.Example -> uint8 [height, width, 3] image."""
  features = tf.io.parse_single_example(serialized, {
      TfExampleFields.IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string)})
  return decode_image(features[TfExampleFields.IMAGE_ENCODED])
