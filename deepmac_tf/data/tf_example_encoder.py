"""Builds OD API ``tf.train.Example`` records and writes them to sharded files.

The records use the OD API feature keys (``deepmac_tf.data.fields``):

* ``image/encoded`` (JPEG or PNG bytes), ``image/format``, ``image/height``,
  ``image/width``, ``image/filename``, ``image/source_id``,
  ``image/key/sha256`` (hex sha256 of the encoded bytes);
* per instance: ``image/object/bbox/{xmin,xmax,ymin,ymax}`` normalized to
  [0, 1], ``image/object/class/label`` (1-based label-map ids),
  ``image/object/class/text``, ``image/object/is_crowd``,
  ``image/object/area`` (pixels);
* optionally ``image/object/mask`` as either ``PNG_MASKS`` (one single-channel
  PNG per instance, image-sized, values 0/1) or ``NUMERICAL_MASKS`` (a float
  list of ``num_instances * height * width`` values). The input reader's
  ``mask_type`` must name the same kind.

Sharded files are named ``<prefix>-<index:05d>-of-<num_shards:05d>`` (always,
also for a single shard), e.g. ``coco_train.record-00000-of-00100``; a config
reads them all with ``input_path: "<prefix>-?????-of-00100"``.
"""

import hashlib
import io
import os

import numpy as np
from PIL import Image
import tensorflow as tf

from deepmac_tf.data.fields import TfExampleFields as F
from deepmac_tf.errors import DataError

PNG_MASKS = 'PNG_MASKS'
NUMERICAL_MASKS = 'NUMERICAL_MASKS'
# InstanceMaskType enum values of input_reader.proto (DEFAULT = NUMERICAL).
_MASK_TYPE_ENUM = {0: NUMERICAL_MASKS, 1: NUMERICAL_MASKS, 2: PNG_MASKS}

# Normalized coordinates may exceed [0, 1] by this much (float rounding).
_BOX_TOLERANCE = 1e-6


def int64_list_feature(values):
  """A ``tf.train.Feature`` holding a list of ints."""
  return tf.train.Feature(
      int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_list_feature(values):
  """A ``tf.train.Feature`` holding a list of floats."""
  return tf.train.Feature(float_list=tf.train.FloatList(
      value=np.asarray(values, dtype=np.float32).reshape(-1).tolist()))


def bytes_list_feature(values):
  """A ``tf.train.Feature`` holding a list of byte strings (str -> utf-8)."""
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[v.encode('utf-8') if isinstance(v, str) else bytes(v)
             for v in values]))


def normalize_mask_type(mask_type):
  """Returns ``PNG_MASKS`` or ``NUMERICAL_MASKS``.

  Args:
    mask_type: one of those strings (any case), or an ``InstanceMaskType``
      enum value of ``input_reader.proto`` (0 DEFAULT, 1 NUMERICAL, 2 PNG).

  Raises:
    DataError: for anything else.
  """
  if isinstance(mask_type, (int, np.integer)) and not isinstance(
      mask_type, bool):
    if int(mask_type) in _MASK_TYPE_ENUM:
      return _MASK_TYPE_ENUM[int(mask_type)]
  elif isinstance(mask_type, str):
    upper = mask_type.upper()
    if upper in (PNG_MASKS, NUMERICAL_MASKS):
      return upper
  raise DataError(f'mask_type {mask_type!r} is not supported; expected '
                  f'{PNG_MASKS!r} or {NUMERICAL_MASKS!r}.')


def encode_png_mask(mask):
  """Encodes one binary instance mask as a single-channel 8-bit PNG.

  Args:
    mask: [height, width] array of bool, or numbers that are all 0 or 1.

  Returns:
    PNG bytes whose pixels are 0 (background) or 1 (instance).

  Raises:
    DataError: the mask is not 2-D or holds values other than 0 and 1.
  """
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise DataError(f'A PNG instance mask must be 2-D [height, width]; got '
                    f'shape {mask.shape}.')
  if mask.dtype != np.bool_ and mask.size and not np.all(
      (mask == 0) | (mask == 1)):
    raise DataError('A PNG instance mask must hold only 0 and 1; got values '
                    f'{np.unique(mask)[:5].tolist()}... (threshold it first).')
  buffer = io.BytesIO()
  Image.fromarray(mask.astype(np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def _as_array(values, dtype, name, num_instances, where):
  array = np.asarray(values if values is not None else [], dtype=dtype)
  array = array.reshape(-1)
  if array.shape[0] != num_instances:
    raise DataError(f'{where}: {name} has {array.shape[0]} values but there '
                    f'are {num_instances} boxes.')
  return array


def _check_boxes(boxes, where):
  boxes = np.asarray(boxes, dtype=np.float64)
  if boxes.size == 0:
    return boxes.reshape(0, 4)
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise DataError(f'{where}: boxes must have shape [num_instances, 4] '
                    f'(ymin, xmin, ymax, xmax); got {boxes.shape}.')
  if not np.all(np.isfinite(boxes)):
    raise DataError(f'{where}: boxes hold NaN or infinite values.')
  if np.any(boxes < -_BOX_TOLERANCE) or np.any(boxes > 1 + _BOX_TOLERANCE):
    raise DataError(f'{where}: boxes must be normalized to [0, 1] '
                    f'(ymin, xmin, ymax, xmax); got values in '
                    f'[{boxes.min():g}, {boxes.max():g}].')
  if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
    raise DataError(f'{where}: boxes need ymin <= ymax and xmin <= xmax.')
  return np.clip(boxes, 0.0, 1.0)


def _mask_feature(masks, mask_type, num_instances, height, width, where):
  masks = np.asarray(masks)
  if masks.size == 0 and num_instances == 0:
    masks = masks.reshape(0, height, width)
  if masks.shape != (num_instances, height, width):
    raise DataError(f'{where}: masks must have shape [num_instances, height, '
                    f'width] = {[num_instances, height, width]}; got '
                    f'{list(masks.shape)}.')
  if normalize_mask_type(mask_type) == PNG_MASKS:
    return bytes_list_feature([encode_png_mask(m) for m in masks])
  return float_list_feature(masks)


def create_tf_example(encoded_image,
                      height,
                      width,
                      boxes,
                      class_ids,
                      class_texts=None,
                      *,
                      image_format='jpeg',
                      filename='',
                      source_id='',
                      is_crowd=None,
                      area=None,
                      masks=None,
                      mask_type=PNG_MASKS):
  """Builds one OD API ``tf.train.Example``.

  Args:
    encoded_image: the encoded image bytes (JPEG or PNG).
    height: image height in pixels.
    width: image width in pixels.
    boxes: [num_instances, 4] float boxes ``(ymin, xmin, ymax, xmax)``
      normalized to [0, 1].
    class_ids: [num_instances] 1-based label-map class ids.
    class_texts: [num_instances] class names (str or bytes); omitted -> the
      key is written empty.
    image_format: ``'jpeg'`` or ``'png'`` (written to ``image/format``).
    filename: written to ``image/filename``.
    source_id: written to ``image/source_id`` (e.g. the COCO image id).
    is_crowd: [num_instances] 0/1 flags; omitted -> all 0.
    area: [num_instances] areas in pixels; omitted -> box areas in pixels.
    masks: optional [num_instances, height, width] binary masks (0/1 or bool).
      When given, ``image/object/mask`` is written, also for 0 instances.
    mask_type: ``PNG_MASKS`` (default, what COCO conversion writes) or
      ``NUMERICAL_MASKS``; see ``normalize_mask_type``.

  Returns:
    A ``tf.train.Example``.

  Raises:
    DataError: inconsistent lengths, unnormalized boxes or bad masks; the
      message names the example by source id or filename.
  """
  where = f'Example {source_id or filename or "<unnamed>"}'
  height, width = int(height), int(width)
  if height <= 0 or width <= 0:
    raise DataError(f'{where}: image height and width must be positive; got '
                    f'{height}x{width}.')
  boxes = _check_boxes(boxes, where)
  num_instances = boxes.shape[0]
  class_ids = _as_array(class_ids, np.int64, 'class_ids', num_instances, where)
  if np.any(class_ids <= 0):
    raise DataError(f'{where}: class ids must be >= 1 (0 is the background); '
                    f'got {sorted(set(class_ids.tolist()))}.')
  if class_texts is None:
    class_texts = []
  elif len(class_texts) != num_instances:
    raise DataError(f'{where}: class_texts has {len(class_texts)} values but '
                    f'there are {num_instances} boxes.')
  if is_crowd is None:
    is_crowd = np.zeros([num_instances], np.int64)
  is_crowd = _as_array(is_crowd, np.int64, 'is_crowd', num_instances, where)
  if area is None:
    area = ((boxes[:, 2] - boxes[:, 0]) * height *
            (boxes[:, 3] - boxes[:, 1]) * width)
  area = _as_array(area, np.float32, 'area', num_instances, where)

  features = {
      F.IMAGE_ENCODED: bytes_list_feature([encoded_image]),
      F.IMAGE_FORMAT: bytes_list_feature([image_format]),
      F.HEIGHT: int64_list_feature([height]),
      F.WIDTH: int64_list_feature([width]),
      F.FILENAME: bytes_list_feature([filename]),
      F.SOURCE_ID: bytes_list_feature([str(source_id)]),
      F.KEY_SHA256: bytes_list_feature(
          [hashlib.sha256(encoded_image).hexdigest()]),
      F.BBOX_YMIN: float_list_feature(boxes[:, 0]),
      F.BBOX_XMIN: float_list_feature(boxes[:, 1]),
      F.BBOX_YMAX: float_list_feature(boxes[:, 2]),
      F.BBOX_XMAX: float_list_feature(boxes[:, 3]),
      F.CLASS_LABEL: int64_list_feature(class_ids),
      F.CLASS_TEXT: bytes_list_feature(class_texts),
      F.IS_CROWD: int64_list_feature(is_crowd),
      F.AREA: float_list_feature(area),
  }
  if masks is not None:
    features[F.MASK] = _mask_feature(masks, mask_type, num_instances, height,
                                     width, where)
  return tf.train.Example(features=tf.train.Features(feature=features))


def sharded_record_paths(output_path_prefix, num_shards):
  """The file names ``<prefix>-00000-of-0000N`` ... of a sharded record set."""
  _check_num_shards(num_shards)
  return [f'{output_path_prefix}-{index:05d}-of-{num_shards:05d}'
          for index in range(num_shards)]


def sharded_record_pattern(output_path_prefix, num_shards):
  """The glob for a config's ``input_path``: ``<prefix>-?????-of-0000N``."""
  _check_num_shards(num_shards)
  return f'{output_path_prefix}-?????-of-{num_shards:05d}'


def _check_num_shards(num_shards):
  if isinstance(num_shards, bool) or not isinstance(
      num_shards, (int, np.integer)) or num_shards < 1:
    raise DataError(f'num_shards must be a positive integer; got '
                    f'{num_shards!r}.')


class ShardedTFRecordWriter:
  """Writes examples round-robin into ``num_shards`` TFRecord files.

  Example ``i`` goes to shard ``i % num_shards``. Use as a context manager;
  every file is created (possibly empty) and closed on exit, also on errors::

    with ShardedTFRecordWriter('/out/coco_train.record', 10) as writer:
      writer.write(example)
  """

  def __init__(self, output_path_prefix, num_shards=1):
    self.paths = sharded_record_paths(output_path_prefix, num_shards)
    self.num_written = 0
    self._writers = None

  def __enter__(self):
    parent = os.path.dirname(self.paths[0])
    if parent:
      tf.io.gfile.makedirs(parent)
    self._writers = []
    try:
      for path in self.paths:
        self._writers.append(tf.io.TFRecordWriter(path))
    except (tf.errors.OpError, OSError) as e:
      self.close()
      raise DataError(f'Cannot open TFRecord file for writing under '
                      f'{parent or "."}: {e}') from None
    return self

  def __exit__(self, exc_type, exc_value, traceback):
    self.close()
    return False

  def write(self, example):
    """Writes a ``tf.train.Example`` (or already serialized bytes)."""
    if self._writers is None:
      raise RuntimeError('ShardedTFRecordWriter is not open; use it in a '
                         '"with" statement.')
    if isinstance(example, tf.train.Example):
      example = example.SerializeToString(deterministic=True)
    self._writers[self.num_written % len(self._writers)].write(example)
    self.num_written += 1

  def close(self):
    """Flushes and closes every shard (idempotent)."""
    for writer in self._writers or []:
      writer.close()
    self._writers = None
