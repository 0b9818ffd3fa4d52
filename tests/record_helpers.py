"""Builds small OD API tf.Examples and TFRecord files for input-pipeline tests.

Written with ``tf.train.Example`` directly so the tests do not depend on the
production encoder.
"""

import io

import numpy as np
from PIL import Image
import tensorflow as tf


def encode_image(array, fmt='png'):
  """Encodes a uint8 [H, W] or [H, W, C] array as PNG or JPEG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(
      buffer, format='JPEG' if fmt == 'jpeg' else 'PNG')
  return buffer.getvalue()


def box_masks(height, width, pixel_boxes):
  """Rectangular masks [n, H, W] float32 for [y0, x0, y1, x1) pixel boxes."""
  masks = np.zeros([len(pixel_boxes), height, width], np.float32)
  for i, (y0, x0, y1, x1) in enumerate(pixel_boxes):
    masks[i, y0:y1, x0:x1] = 1.0
  return masks


def normalized_boxes(height, width, pixel_boxes):
  """[n, 4] float32 normalized yxyx boxes for [y0, x0, y1, x1) pixel boxes."""
  boxes = np.array(pixel_boxes, np.float32).reshape([-1, 4])
  return boxes / np.array([height, width, height, width], np.float32)


def _bytes(values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(
      value=[float(v) for v in np.asarray(values).reshape([-1])]))


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(
      value=[int(v) for v in values]))


def make_example(image,
                 boxes,
                 classes=None,
                 masks=None,
                 mask_type='png',
                 image_format='png',
                 class_text=None,
                 source_id='img',
                 weights=None,
                 is_crowd=None,
                 area=None,
                 mask_weights=None):
  """Returns a serialized OD API tf.Example.

  Args:
    image: uint8 [H, W, 3] (or [H, W] grayscale) array.
    boxes: [n, 4] normalized yxyx boxes.
    classes: n label ids, or None to omit image/object/class/label.
    masks: optional [n, H, W] 0/1 masks.
    mask_type: 'png' (one PNG per instance) or 'numerical' (float list).
    image_format: 'png' or 'jpeg'.
    class_text: optional n class names.
    source_id: image/source_id.
    weights, is_crowd, area, mask_weights: optional per-instance lists.
  """
  image = np.asarray(image, np.uint8)
  boxes = np.asarray(boxes, np.float32).reshape([-1, 4])
  feature = {
      'image/encoded': _bytes([encode_image(image, image_format)]),
      'image/format': _bytes([image_format.encode()]),
      'image/height': _ints([image.shape[0]]),
      'image/width': _ints([image.shape[1]]),
      'image/filename': _bytes([(source_id + '.' + image_format).encode()]),
      'image/source_id': _bytes([source_id.encode()]),
      'image/key/sha256': _bytes([b'key-' + source_id.encode()]),
      'image/object/bbox/ymin': _floats(boxes[:, 0]),
      'image/object/bbox/xmin': _floats(boxes[:, 1]),
      'image/object/bbox/ymax': _floats(boxes[:, 2]),
      'image/object/bbox/xmax': _floats(boxes[:, 3]),
  }
  if classes is not None:
    feature['image/object/class/label'] = _ints(classes)
  if class_text is not None:
    feature['image/object/class/text'] = _bytes(
        [t.encode() for t in class_text])
  if weights is not None:
    feature['image/object/weight'] = _floats(weights)
  if is_crowd is not None:
    feature['image/object/is_crowd'] = _ints(is_crowd)
  if area is not None:
    feature['image/object/area'] = _floats(area)
  if mask_weights is not None:
    feature['image/object/mask/weight'] = _floats(mask_weights)
  if masks is not None:
    masks = np.asarray(masks)
    if mask_type == 'png':
      feature['image/object/mask'] = _bytes(
          [encode_image(m.astype(np.uint8)) for m in masks])
    else:
      feature['image/object/mask'] = _floats(masks)
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  return example.SerializeToString()


def write_tfrecord(path, serialized_examples):
  """Writes serialized examples to a TFRecord file; returns the path."""
  with tf.io.TFRecordWriter(str(path)) as writer:
    for serialized in serialized_examples:
      writer.write(serialized)
  return str(path)


def simple_example(height=32, width=48, pixel_boxes=((4, 6, 20, 30),
                                                     (10, 20, 30, 44)),
                   classes=(1, 2), seed=0, **kwargs):
  """An example with a random image and rectangular masks on the boxes."""
  rng = np.random.RandomState(seed)
  image = rng.randint(0, 255, size=[height, width, 3]).astype(np.uint8)
  masks = box_masks(height, width, pixel_boxes)
  boxes = normalized_boxes(height, width, pixel_boxes)
  kwargs.setdefault('masks', masks)
  classes = None if classes is None else list(classes)
  return make_example(image, boxes, classes=classes, **kwargs)


def write_label_map(path, names):
  """Writes a label map with ids 1..len(names); returns the path."""
  lines = []
  for i, name in enumerate(names, start=1):
    lines.append(f"item {{ id: {i} name: '{name}' display_name: "
                 f"'{name.upper()}' }}")
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')
  return str(path)
