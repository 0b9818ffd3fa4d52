"""Decodes serialized OD API ``tf.Example`` records into tensors.

Output (one image, unbatched; keys and dtypes of ``fields.InputFields``):
image [height, width, 3] uint8 (PNG / JPEG / BMP / GIF; grayscale -> RGB),
original_image_spatial_shape [2], source_id / key / filename [] string,
groundtruth_boxes [n, 4] normalized yxyx, and [n] vectors classes (int32,
1-based), weights (default 1), is_crowd (default False), area (default: box
area in original pixels) and instance_mask_weights
(``image/object/mask/weight`` or 1; all 0 when masks are not loaded); with
``load_instance_masks`` also groundtruth_instance_masks [n, height, width]
float32 in {0, 1}.

Mask binarization: a mask pixel is foreground iff its stored value is > 0, for
both mask types, as in the OD API. PNG masks may hold 0/1 or 0/255; numerical
masks should hold 0/1 (soft values > 0 count as foreground).

Classes: ``image/object/class/label`` when present; otherwise
``image/object/class/text`` mapped through the label map (instances whose text
is not in the label map are dropped, as the OD API drops unrecognized classes).

Every user mistake found in a record fails with an in-graph assertion whose
message starts with the record's source (``record 3 of file /data/x.tfrecord``)
and says what was expected. ``TfExampleDecoder.check_record`` runs the same
checks eagerly in Python and raises ``DataError``.
"""

import tensorflow as tf

from deepmac_tf.data import fields
from deepmac_tf.data import label_map_util
from deepmac_tf.data.augmentation import instances
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.protos import input_reader_pb2

TfExampleFields = fields.TfExampleFields
InputFields = fields.InputFields

# Per-instance mask availability (OD API key).
MASK_WEIGHT_KEY = TfExampleFields.MASK_WEIGHT

# Coordinates beyond these bounds are taken for pixel coordinates.
_MIN_NORMALIZED_COORD = -0.1
_MAX_NORMALIZED_COORD = 1.1

_BYTES = 'bytes_list'
_FLOAT = 'float_list'
_INT64 = 'int64_list'


class TfExampleDecoder:
  """Decodes OD API tf.Examples (see the module docstring for the output)."""

  def __init__(self,
               load_instance_masks=False,
               mask_type=input_reader_pb2.NUMERICAL_MASKS,
               label_map_path=None,
               use_display_name=False,
               num_classes=None):
    """Creates the decoder.

    Args:
      load_instance_masks: decode ``image/object/mask``; records with boxes but
        no masks then fail.
      mask_type: an ``InstanceMaskType`` value: ``NUMERICAL_MASKS`` (or
        ``DEFAULT``) for a flattened float list of num_instances x height x
        width values, ``PNG_MASKS`` for one PNG per instance.
      label_map_path: optional label map used to map
        ``image/object/class/text`` to ids when records carry no labels.
      use_display_name: map text through ``display_name`` instead of ``name``.
      num_classes: the model's class count: a record with a larger class id
        fails (naming it) instead of training as background. With a label
        map, an ``image/object/class/label`` id it lacks fails too (the
        pre-training check samples the first records; this covers the rest).

    Raises:
      ConfigError: unknown ``mask_type``.
      LabelMapError: unreadable or invalid label map.
    """
    if mask_type not in input_reader_pb2.InstanceMaskType.values():
      raise ConfigError(
          f'input_reader.mask_type: unknown value {mask_type!r}; expected one '
          f'of {list(input_reader_pb2.InstanceMaskType.keys())}.')
    self._load_instance_masks = bool(load_instance_masks)
    self._png_masks = mask_type == input_reader_pb2.PNG_MASKS
    self._mask_type = mask_type
    self._label_table = None
    self._num_classes = int(num_classes or 0)
    self._label_map_path = label_map_path
    self._label_ids = None
    if label_map_path:
      name_to_id = label_map_util.get_label_map_dict(
          label_map_path, use_display_name=use_display_name)
      self._label_ids = sorted(set(name_to_id.values()))
      self._label_table = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(
              tf.constant(list(name_to_id.keys()), tf.string),
              tf.constant(list(name_to_id.values()), tf.int64)),
          default_value=-1)

  @classmethod
  def from_input_reader_config(cls, input_reader_config, num_classes=None):
    """Builds a decoder from an ``InputReader`` proto (and the model's
    ``num_classes``, see ``__init__``)."""
    return cls(
        load_instance_masks=input_reader_config.load_instance_masks,
        mask_type=input_reader_config.mask_type,
        label_map_path=input_reader_config.label_map_path or None,
        use_display_name=input_reader_config.use_display_name,
        num_classes=num_classes)

  @property
  def load_instance_masks(self):
    return self._load_instance_masks

  def _features_spec(self):
    spec = {
        TfExampleFields.IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string, ''),
        TfExampleFields.FILENAME: tf.io.FixedLenFeature((), tf.string, ''),
        TfExampleFields.SOURCE_ID: tf.io.FixedLenFeature((), tf.string, ''),
        TfExampleFields.KEY_SHA256: tf.io.FixedLenFeature((), tf.string, ''),
        TfExampleFields.CLASS_TEXT: tf.io.VarLenFeature(tf.string),
        TfExampleFields.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
        TfExampleFields.IS_CROWD: tf.io.VarLenFeature(tf.int64),
        TfExampleFields.AREA: tf.io.VarLenFeature(tf.float32),
        TfExampleFields.WEIGHT: tf.io.VarLenFeature(tf.float32),
    }
    for key in _BOX_KEYS:
      spec[key] = tf.io.VarLenFeature(tf.float32)
    if self._load_instance_masks:
      spec[TfExampleFields.MASK] = tf.io.VarLenFeature(
          tf.string if self._png_masks else tf.float32)
      spec[MASK_WEIGHT_KEY] = tf.io.VarLenFeature(tf.float32)
    return spec

  def expected_feature_kinds(self):
    """``{key: 'bytes_list' | 'float_list' | 'int64_list'}`` it reads."""
    kinds = {}
    for key, feature in self._features_spec().items():
      kinds[key] = {tf.string: _BYTES, tf.float32: _FLOAT,
                    tf.int64: _INT64}[feature.dtype]
    return kinds

  def decode(self, serialized, source=None):
    """Decodes one serialized tf.Example.

    Args:
      serialized: scalar string tensor.
      source: optional scalar string tensor naming the record in error
        messages, e.g. ``record 3 of file /data/train.tfrecord``.

    Returns:
      A dict of tensors keyed by ``InputFields`` (see the module docstring).
    """
    source = tf.constant('record') if source is None else source
    parsed = tf.io.parse_single_example(serialized, self._features_spec())
    dense = {}
    for key, value in parsed.items():
      if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value)
      dense[key] = value

    checks = []
    encoded = dense[TfExampleFields.IMAGE_ENCODED]
    checks.append(_assert(tf.strings.length(encoded) > 0, source,
                          'has no image/encoded (or it is empty)'))
    checks.append(_assert(
        tf.logical_or(tf.strings.length(encoded) == 0, is_image_bytes(encoded)),
        source, 'image/encoded is not a JPEG, PNG, GIF or BMP image'))
    with tf.control_dependencies(checks):
      image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image_shape = tf.shape(image)[:2]
    height, width = image_shape[0], image_shape[1]

    boxes, box_checks = _decode_boxes(dense, source)
    checks += box_checks
    num_boxes = tf.shape(boxes)[0]

    classes, keep, class_checks = self._decode_classes(dense, num_boxes, source)
    checks += class_checks

    box_area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) *
                tf.cast(height * width, tf.float32))
    weights, c1 = _per_instance(dense[TfExampleFields.WEIGHT], num_boxes,
                                tf.ones([num_boxes]), TfExampleFields.WEIGHT,
                                source)
    is_crowd, c2 = _per_instance(
        tf.cast(dense[TfExampleFields.IS_CROWD], tf.bool), num_boxes,
        tf.zeros([num_boxes], tf.bool), TfExampleFields.IS_CROWD, source)
    area, c3 = _per_instance(dense[TfExampleFields.AREA], num_boxes, box_area,
                             TfExampleFields.AREA, source)
    checks += [c1, c2, c3]

    tensors = {
        InputFields.IMAGE: image,
        InputFields.ORIGINAL_IMAGE_SHAPE: image_shape,
        InputFields.SOURCE_ID: dense[TfExampleFields.SOURCE_ID],
        InputFields.KEY: dense[TfExampleFields.KEY_SHA256],
        InputFields.FILENAME: dense[TfExampleFields.FILENAME],
        InputFields.BOXES: boxes,
        InputFields.CLASSES: classes,
        InputFields.WEIGHTS: weights,
        InputFields.IS_CROWD: is_crowd,
        InputFields.AREA: area,
    }
    if self._load_instance_masks:
      masks, mask_checks = self._decode_masks(
          dense[TfExampleFields.MASK], num_boxes, height, width, source)
      mask_weights, c4 = _per_instance(dense[MASK_WEIGHT_KEY], num_boxes,
                                       tf.ones([num_boxes]), MASK_WEIGHT_KEY,
                                       source)
      checks += mask_checks + [c4]
      tensors[InputFields.INSTANCE_MASKS] = masks
      tensors[InputFields.MASK_WEIGHTS] = mask_weights
    else:
      tensors[InputFields.MASK_WEIGHTS] = tf.zeros([num_boxes])

    with tf.control_dependencies(checks):
      tensors = {k: tf.identity(v) for k, v in tensors.items()}
    if keep is not None:
      tensors = instances.gather_instances(tensors, keep)
    return tensors

  def _decode_classes(self, dense, num_boxes, source):
    """Returns (classes [n] int32, indices to keep or None, checks)."""
    labels = dense[TfExampleFields.CLASS_LABEL]
    checks = [_assert(
        tf.reduce_all(labels >= 1), source,
        'image/object/class/label holds an id < 1; class ids start at 1 '
        '(0 is reserved for the background)')]
    keep = None
    if self._label_table is not None:
      from_text = self._label_table.lookup(dense[TfExampleFields.CLASS_TEXT])
      use_labels = tf.size(labels) > 0
      classes = tf.cond(use_labels, lambda: labels, lambda: from_text)
      keep = tf.cond(
          use_labels, lambda: tf.range(tf.size(classes)),
          lambda: tf.cast(tf.reshape(tf.where(from_text >= 1), [-1]),
                          tf.int32))
      missing = ('image/object/class/label (or image/object/class/text) '
                 'values')
    else:
      classes = labels
      missing = ('image/object/class/label values (records with only '
                 'image/object/class/text need input_reader.label_map_path)')
    checks.append(_assert(
        tf.equal(tf.size(classes), num_boxes), source, 'has ', num_boxes,
        ' boxes but ', tf.size(classes), ' ', missing))
    checks.extend(self._known_class_checks(labels, classes, source))
    return tf.cast(classes, tf.int32), keep, checks

  def _known_class_checks(self, labels, classes, source):
    """Class ids the model or the label map does not know (see __init__)."""
    checks = []
    if self._num_classes:
      checks.append(_assert(
          tf.reduce_all(classes <= self._num_classes), source,
          'holds class id ', tf.reduce_max(classes), ' but the model has '
          f'num_classes {self._num_classes} (raise num_classes or fix the '
          'records)'))
    if self._label_ids is not None:
      known = tf.reduce_any(tf.equal(
          labels[:, None], tf.constant(self._label_ids, tf.int64)[None, :]),
                            axis=1)
      checks.append(_assert(
          tf.reduce_all(known), source, 'holds class id ',
          tf.reduce_max(tf.where(known, tf.zeros_like(labels), labels)),
          f' (image/object/class/label), which the label map '
          f'{self._label_map_path} lacks (add it to the label map or fix the '
          'records)'))
    return checks

  def _decode_masks(self, raw, num_boxes, height, width, source):
    """Returns (masks [n, height, width] float32 in {0, 1}, checks)."""
    count = tf.size(raw)
    missing = _assert(
        tf.logical_or(num_boxes == 0, count > 0), source,
        'has no image/object/mask but load_instance_masks is set (either '
        'write masks or set load_instance_masks: false)')
    if self._png_masks:
      count_check = _assert(
          tf.equal(count, num_boxes), source, 'has ', count,
          ' PNG masks in image/object/mask but ', num_boxes,
          ' boxes; expected one mask per box')
      with tf.control_dependencies([missing, count_check]):
        masks = tf.cond(
            count > 0,
            lambda: _decode_png_masks(raw, height, width, source),
            lambda: tf.zeros([0, height, width]))
      return masks, [missing, count_check]
    expected = num_boxes * height * width
    size_check = _assert(
        tf.equal(count, expected), source, 'has ', count,
        ' values in image/object/mask but NUMERICAL_MASKS needs num_boxes x '
        'height x width = ', expected, ' (one image-sized mask per box)')
    with tf.control_dependencies([missing, size_check]):
      masks = tf.reshape(raw, tf.stack([num_boxes, height, width]))
    return tf.cast(masks > 0.0, tf.float32), [missing, size_check]

  def check_record(self, serialized, source):
    """Checks one record eagerly and raises ``DataError`` if it is unusable.

    Catches what is best said before training starts: a mask stored as the
    other ``mask_type``, a feature of the wrong type, missing masks, counts
    that do not match.

    Args:
      serialized: bytes of one serialized tf.Example.
      source: description used in messages, e.g. ``record 0 of file x``.

    Raises:
      DataError: naming the record, the key and what was expected.
    """
    example = tf.train.Example()
    try:
      example.ParseFromString(serialized)
    except Exception:  # pylint: disable=broad-except
      raise DataError(f'{source}: is not a serialized tf.train.Example.') \
          from None
    features = example.features.feature
    for key, expected in self.expected_feature_kinds().items():
      if key not in features:
        continue
      kind = features[key].WhichOneof('kind')
      if kind is None or kind == expected:
        continue
      message = (f'{source}: feature {key} is a {kind} but a {expected} was '
                 'expected')
      if key == TfExampleFields.MASK:
        configured = input_reader_pb2.InstanceMaskType.Name(self._mask_type)
        stored = {_FLOAT: 'NUMERICAL_MASKS', _BYTES: 'PNG_MASKS'}.get(kind)
        message += f' (input reader mask_type is {configured}'
        if stored:
          message += f'; these records hold {stored}: set mask_type: {stored}'
        message += ')'
      raise DataError(message + '.')
    try:
      self.decode(tf.constant(serialized), tf.constant(source))
    except tf.errors.OpError as e:
      raise DataError(_clean_message(e.message, source)) from None


_BOX_KEYS = (TfExampleFields.BBOX_YMIN, TfExampleFields.BBOX_XMIN,
             TfExampleFields.BBOX_YMAX, TfExampleFields.BBOX_XMAX)


def _decode_boxes(dense, source):
  """Returns (boxes [n, 4] float32 yxyx, checks)."""
  coords = [dense[key] for key in _BOX_KEYS]
  sizes = [tf.size(c) for c in coords]
  same = tf.reduce_all(tf.equal(tf.stack(sizes), sizes[0]))
  checks = [_assert(
      same, source, 'image/object/bbox/ymin, xmin, ymax, xmax have different '
      'lengths (', tf.strings.reduce_join(tf.strings.as_string(sizes),
                                          separator=', '),
      '); expected one value per box')]
  with tf.control_dependencies(checks):
    boxes = tf.stack(coords, axis=1)
  boxes = tf.reshape(boxes, [-1, 4])
  in_range = tf.reduce_all(
      tf.logical_and(boxes >= _MIN_NORMALIZED_COORD,
                     boxes <= _MAX_NORMALIZED_COORD))
  largest = tf.reduce_max(tf.abs(tf.concat([boxes, tf.zeros([1, 4])], 0)))
  checks.append(_assert(
      in_range, source, 'has box coordinates outside [0, 1] (largest ',
      largest, '); image/object/bbox/* must be normalized by the image size, '
      'not pixels'))
  return boxes, checks


def _decode_png_masks(pngs, height, width, source):
  """Decodes PNG masks to [n, height, width] float32 in {0, 1}."""
  index = tf.range(tf.size(pngs))

  def decode_one(args):
    png, i = args
    is_image = _assert(is_image_bytes(png), source, 'mask ', i,
                       ' in image/object/mask is not a PNG image')
    with tf.control_dependencies([is_image]):
      mask = tf.io.decode_image(png, channels=1, expand_animations=False)
    shape = tf.shape(mask)
    check = _assert(
        tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width)),
        source, 'mask ', i, ' in image/object/mask is ', shape[0], 'x',
        shape[1], ' but the image is ', height, 'x', width,
        '; masks must be image-sized')
    with tf.control_dependencies([check]):
      return tf.cast(mask[:, :, 0] > 0, tf.float32)

  return tf.map_fn(decode_one, (pngs, index),
                   fn_output_signature=tf.TensorSpec([None, None], tf.float32))


_IMAGE_SIGNATURES = (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'BM')


def is_image_bytes(data):
  """Scalar bool: ``data`` starts like a JPEG, PNG, GIF or BMP file (what
  ``tf.io.decode_image`` reads)."""
  return tf.reduce_any(tf.stack([
      tf.equal(tf.strings.substr(data, 0, len(signature)), signature)
      for signature in _IMAGE_SIGNATURES]))


def _per_instance(values, num_boxes, default, key, source):
  """Returns (values or default when empty, check that sizes agree)."""
  count = tf.size(values)
  check = _assert(
      tf.logical_or(count == 0, count == num_boxes), source, 'has ', count,
      f' values in {key} but ', num_boxes, ' boxes; expected one per box')
  with tf.control_dependencies([check]):
    result = tf.cond(count > 0, lambda: values, lambda: default)
  return result, check


def _to_string(value):
  if isinstance(value, str):
    return tf.constant(value)
  if value.dtype == tf.string:
    return value
  return tf.strings.as_string(value)


def _assert(condition, source, *parts):
  """An assert op failing with '<source>: <parts joined>'.

  ``parts`` are Python strings and scalar tensors (numbers are formatted).
  """
  message = tf.strings.join([_to_string(p) for p in (source, ': ') + parts])
  return tf.debugging.Assert(condition, [message])


def _clean_message(message, source):
  """Extracts our assertion text from a TF error message."""
  start = message.find(source)
  if start < 0:
    return f'{source}: {message.strip()}'
  text = message[start:].split('\n')[0]
  return text.rstrip('\'"]').replace('\\"', '"')
