"""Per-record checks of dataset inspection (see ``inspection.py``).

``check_record`` parses one raw TFRecord entry as a ``tf.train.Example`` and
reports, on an ``InspectionReport``, everything the model's decoder would
choke on or silently mis-learn from, then tallies its instances per class.
Checks on one record report each problem kind at most once, with the
offending instances listed in the message.
"""

import dataclasses
import io
from typing import Dict, Optional, Tuple

from google.protobuf import message as protobuf_message
import numpy as np
from PIL import Image
import tensorflow as tf

from deepmac_tf.data.fields import TfExampleFields as F
from deepmac_tf.data.inspection_report import NUMERICAL_MASKS
from deepmac_tf.data.inspection_report import PNG_MASKS

UNKNOWN_CLASS_NAME = '<not in label map>'
BACKGROUND_CLASS_NAME = '<background: invalid>'
# Box coordinates may exceed [0, 1] a little (the decoder accepts
# [-0.1, 1.1]); more means pixel coordinates were stored.
BOX_TOLERANCE = 0.1
# Per-instance mask availability, 0 = no mask (OD API key, read by the
# decoder; not in TfExampleFields yet).
MASK_WEIGHT_KEY = F.MASK_WEIGHT
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_BOX_KEYS = (F.BBOX_YMIN, F.BBOX_XMIN, F.BBOX_YMAX, F.BBOX_XMAX)
_MASK_DESCRIPTIONS = {PNG_MASKS: 'PNG bytes (PNG_MASKS)',
                      NUMERICAL_MASKS: 'a float list (NUMERICAL_MASKS)'}


@dataclasses.dataclass
class RecordContext:
  """What records are checked against (derived from the config).

  Attributes:
    class_names: ``{id: name}`` of the label map, None without a label map.
    text_to_id: ``{class text: id}`` for records that only store class text.
    load_instance_masks: whether the input reader loads masks.
    mask_type: ``PNG_MASKS`` or ``NUMERICAL_MASKS``.
    allowed: 1-based class ids whose masks supervise; empty means all.
    num_classes: the model's class count, or None when unknown.
    decode_images: fully decode images instead of reading their header.
  """
  class_names: Optional[Dict[int, str]]
  text_to_id: Dict[str, int]
  load_instance_masks: bool
  mask_type: str
  allowed: Tuple[int, ...]
  num_classes: Optional[int]
  decode_images: bool


def _first_line(error):
  text = getattr(error, 'message', None) or str(error)
  return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _short_list(values, limit=5):
  values = list(values)
  text = ', '.join(str(v) for v in values[:limit])
  return text + (f', ... ({len(values)} in all)' if len(values) > limit else '')


def _image_size(data, decode):
  """Returns ``(height, width)`` of encoded image bytes; ValueError if bad."""
  if decode:
    try:
      shape = tf.io.decode_image(data, channels=3,
                                 expand_animations=False).shape
    except (tf.errors.OpError, ValueError) as e:
      raise ValueError(_first_line(e)) from None
    return int(shape[0]), int(shape[1])
  try:
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
  except (OSError, ValueError, SyntaxError) as e:
    raise ValueError(_first_line(e)) from None
  return height, width


def _box_text(box):
  return '(' + ', '.join(f'{v:.4g}' for v in box.tolist()) + ')'


def _describe_bytes(data):
  if data.startswith(b'\xff\xd8'):
    return 'JPEG data: masks must be lossless PNGs'
  return f'{len(data)} bytes starting {data[:8]!r}'


def check_record(raw, path, index, ctx, report):
  """Checks one serialized record; adds issues and counts to ``report``."""
  try:
    example = tf.train.Example.FromString(raw)
  except protobuf_message.DecodeError as e:
    report.add_issue('record_unparsable', f'not a tf.train.Example '
                     f'({_first_line(e)}).', path, index)
    return
  _RecordChecker(example, path, index, ctx, report).run()


class _RecordChecker:
  """Checks one parsed ``tf.train.Example``."""

  def __init__(self, example, path, index, ctx, report):
    self._features = example.features.feature
    self._path, self._index = path, index
    self._ctx, self._report = ctx, report
    self._wrong_type = False
    self._mask_weights = None
    self._source_id = None
    ids = (self._values(F.SOURCE_ID, 'bytes_list') or
           self._values(F.FILENAME, 'bytes_list'))
    if ids:
      self._source_id = ids[0].decode('utf-8', 'replace')

  def _issue(self, kind, message):
    self._report.add_issue(kind, message, self._path, self._index,
                           self._source_id)

  def _values(self, key, kind):
    """Values of a feature; None if absent or of the wrong type (reported)."""
    if key not in self._features:
      return None
    found = self._features[key].WhichOneof('kind')
    if found is None:
      return []
    if found != kind:
      self._wrong_type = True
      self._issue('wrong_feature_type', f'{key} is a {found}; expected a '
                  f'{kind}.')
      return None
    return list(getattr(self._features[key], kind).value)

  def run(self):
    image_hw, header_hw = self._check_image()
    instances = self._check_instances()
    if instances is None:
      return
    class_ids, crowd = instances
    has_mask = self._check_masks(len(class_ids), image_hw, header_hw)
    self._tally(class_ids, crowd, has_mask)

  def _check_image(self):
    """Returns ``(decoded (h, w) or None, header (h, w) or None)``."""
    height = self._values(F.HEIGHT, 'int64_list')
    width = self._values(F.WIDTH, 'int64_list')
    header_hw = (height[0], width[0]) if height and width else None
    encoded = self._values(F.IMAGE_ENCODED, 'bytes_list')
    if not encoded or not encoded[0]:
      if encoded is None and not self._wrong_type:
        self._issue('missing_key', f'required key {F.IMAGE_ENCODED} is '
                    'missing.')
      elif encoded is not None:
        self._issue('missing_key', f'{F.IMAGE_ENCODED} is empty.')
      return None, header_hw
    try:
      image_hw = _image_size(encoded[0], self._ctx.decode_images)
    except ValueError as e:
      self._issue('image_undecodable', f'{F.IMAGE_ENCODED}: {e}')
      return None, header_hw
    if header_hw and header_hw != image_hw:
      self._issue('image_size_mismatch', f'{F.HEIGHT} x {F.WIDTH} = '
                  f'{header_hw[0]}x{header_hw[1]} but the encoded image is '
                  f'{image_hw[0]}x{image_hw[1]}.')
    return image_hw, header_hw

  def _labels_from_text(self, texts):
    """Maps class text through the label map (as the OD API decoder does)."""
    if self._ctx.class_names is None:
      self._issue('missing_key', f'no {F.CLASS_LABEL}; {F.CLASS_TEXT} alone '
                  'needs a label map (label_map_path) to give class ids.')
      return None
    names = [t.decode('utf-8', 'replace') for t in texts]
    unknown = sorted({n for n in names if n not in self._ctx.text_to_id})
    if unknown:
      self._issue('class_text_unknown', f'{F.CLASS_TEXT} value(s) '
                  f'{_short_list(unknown)} not in the label map; the decoder '
                  'drops these instances.')
    # None marks a dropped instance (kept in place to align boxes and masks).
    return [self._ctx.text_to_id.get(n) for n in names]

  def _check_instances(self):
    """Returns ``(class_ids, crowd flags)``, or None if the record is broken."""
    boxes = {key: self._values(key, 'float_list') for key in _BOX_KEYS}
    labels = self._values(F.CLASS_LABEL, 'int64_list')
    texts = self._values(F.CLASS_TEXT, 'bytes_list')
    crowd = self._values(F.IS_CROWD, 'int64_list')
    self._mask_weights = self._values(MASK_WEIGHT_KEY, 'float_list')
    if self._wrong_type:
      return None
    if not labels and texts:
      labels = self._labels_from_text(texts)
      if labels is None:
        return None
    lengths = {key: len(values) for key, values in boxes.items() if values}
    if labels:
      lengths[F.CLASS_LABEL] = len(labels)
    num = max(lengths.values(), default=0)
    if num == 0:
      return [], []
    missing = [k for k in (*_BOX_KEYS, F.CLASS_LABEL) if k not in lengths]
    if missing:
      self._issue('missing_key', f'{num} instance(s) but {", ".join(missing)}'
                  ' missing or empty.')
      return None
    if crowd:
      lengths[F.IS_CROWD] = len(crowd)
    if self._mask_weights:
      lengths[MASK_WEIGHT_KEY] = len(self._mask_weights)
    if len(set(lengths.values())) > 1:
      self._issue('count_mismatch', 'per-instance lengths differ: ' + ', '.join(
          f'{key}={n}' for key, n in lengths.items()) + '.')
      return None
    self._check_boxes(np.array([boxes[k] for k in _BOX_KEYS], np.float64).T)
    self._check_class_ids(labels)
    return labels, crowd or [0] * num

  def _check_boxes(self, boxes):
    """Checks ``boxes`` [num, 4] (ymin, xmin, ymax, xmax) are normalized."""
    with np.errstate(invalid='ignore'):
      inside = (boxes >= -BOX_TOLERANCE) & (boxes <= 1 + BOX_TOLERANCE)
    outside = ~np.all(inside, axis=1)
    if outside.any():
      i = int(np.argmax(outside))
      hint = ''
      if np.nanmax(boxes) > 1 + BOX_TOLERANCE:
        hint = ('; these look like pixel coordinates: divide by the image '
                'width / height')
      self._issue('box_not_normalized', f'{int(outside.sum())} of '
                  f'{len(boxes)} boxes outside [0, 1], e.g. instance {i}: '
                  f'(ymin, xmin, ymax, xmax) = {_box_text(boxes[i])}'
                  f'{hint}.')
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if degenerate.any():
      i = int(np.argmax(degenerate))
      self._issue('box_degenerate', f'{int(degenerate.sum())} of {len(boxes)}'
                  f' boxes have no area, e.g. instance {i}: (ymin, xmin, ymax,'
                  f' xmax) = {_box_text(boxes[i])}; need ymin < ymax and '
                  'xmin < xmax.')

  def _check_class_ids(self, labels):
    labels = [c for c in labels if c is not None]
    zero = [i for i, c in enumerate(labels) if c == 0]
    if zero:
      self._issue('class_id_zero', f'instance(s) {_short_list(zero)} have '
                  'class id 0, which is reserved for the background; '
                  'label-map ids start at 1.')
    names = self._ctx.class_names
    unknown = sorted({c for c in labels if c != 0 and
                      (c < 0 if names is None else c not in names)})
    if unknown:
      known = 'ids must be positive' if names is None else (
          f'label map ids: {_short_list(sorted(names), 10)}')
      self._issue('class_id_unknown', f'class id(s) {_short_list(unknown)} '
                  f'not in the label map ({known}).')
    if self._ctx.num_classes:
      over = sorted({c for c in labels if c > self._ctx.num_classes})
      if over:
        self._issue('class_id_exceeds_num_classes', f'class id(s) '
                    f'{_short_list(over)} exceed the model\'s num_classes '
                    f'({self._ctx.num_classes}).')

  def _check_masks(self, num, image_hw, header_hw):
    """Returns per-instance ``has a usable, non-empty mask`` flags."""
    none = [False] * num
    weights = self._mask_weights or [1.0] * num
    feature = self._features.get(F.MASK) if F.MASK in self._features else None
    kind = feature.WhichOneof('kind') if feature is not None else None
    values = getattr(feature, kind).value if kind else []
    if not len(values):  # pylint: disable=g-explicit-length-test
      if self._ctx.load_instance_masks and num:
        self._issue('masks_absent', f'{num} instance(s) but no {F.MASK}; with'
                    ' load_instance_masks: true every record with boxes needs'
                    ' one mask per box (the OD API failed here with "indices'
                    '[0] = 0 is not in [0, 0)").')
      return none
    if kind not in ('bytes_list', 'float_list'):
      self._issue('wrong_feature_type', f'{F.MASK} is a {kind}; expected PNG '
                  'bytes (PNG_MASKS) or a float list (NUMERICAL_MASKS).')
      return none
    found = PNG_MASKS if kind == 'bytes_list' else NUMERICAL_MASKS
    self._report.detected_mask_types[found] += 1
    if not self._ctx.load_instance_masks:
      self._issue('masks_ignored', f'the record has {found} masks but '
                  'load_instance_masks is false; set load_instance_masks: '
                  f'true and mask_type: {found} to train on them.')
      size = header_hw[0] * header_hw[1] if header_hw else 0
      count = len(values) if found == PNG_MASKS else (
          len(values) // size if size else 0)
      return [count == num and w > 0 for w in weights]
    if found != self._ctx.mask_type:
      self._issue('mask_type_mismatch', f'{F.MASK} holds '
                  f'{_MASK_DESCRIPTIONS[found]} but the input reader has '
                  f'mask_type: {self._ctx.mask_type}; set mask_type: {found}.')
    if found == PNG_MASKS:
      masks = self._decode_png_masks(values, num, image_hw)
    else:
      masks = self._reshape_numerical_masks(values, num, header_hw)
    if masks is None:
      return none
    has_mask = [bool(m.any()) and w > 0 for m, w in zip(masks, weights)]
    empty = [i for i, (m, w) in enumerate(zip(masks, weights))
             if w > 0 and not m.any()]
    if empty:
      self._issue('empty_mask', f'instance(s) {_short_list(empty)} have '
                  'all-zero masks.')
    return has_mask

  def _decode_png_masks(self, values, num, image_hw):
    if len(values) != num:
      self._issue('mask_count_mismatch', f'{len(values)} PNG masks for {num} '
                  f'boxes; {F.MASK} needs one mask per box, in box order.')
      return None
    masks = []
    for i, data in enumerate(values):
      if not data.startswith(_PNG_SIGNATURE):
        self._issue('mask_undecodable', f'mask {i} is not a PNG '
                    f'({_describe_bytes(data)}).')
        return None
      try:
        mask = tf.io.decode_png(data, channels=1).numpy()[:, :, 0]
      except tf.errors.OpError as e:
        self._issue('mask_undecodable', f'mask {i}: {_first_line(e)}')
        return None
      if image_hw and mask.shape != tuple(image_hw):
        self._issue('mask_size_mismatch', f'mask {i} is {mask.shape[0]}x'
                    f'{mask.shape[1]} but the image is {image_hw[0]}x'
                    f'{image_hw[1]}; masks must be full-image size.')
        return None
      masks.append(mask)
    return masks

  def _reshape_numerical_masks(self, values, num, header_hw):
    if not header_hw:
      self._issue('missing_key', f'NUMERICAL_MASKS need {F.HEIGHT} and '
                  f'{F.WIDTH} to reshape {F.MASK}.')
      return None
    height, width = header_hw
    size = height * width
    if len(values) == num * size:
      return np.asarray(values, np.float32).reshape(num, height, width) > 0
    if size and len(values) % size == 0:
      self._issue('mask_count_mismatch', f'{F.MASK} holds {len(values) // size}'
                  f' masks of {height}x{width} for {num} boxes.')
    else:
      self._issue('mask_size_mismatch', f'{F.MASK} has {len(values)} floats, '
                  f'not a multiple of the image size {height}x{width}; expected'
                  f' num_boxes * height * width = {num * size}.')
    return None

  def _tally(self, class_ids, crowd, has_mask):
    report, ctx = self._report, self._ctx
    if all(class_id is None for class_id in class_ids):
      report.num_images_without_instances += 1
      return
    for class_id, is_crowd, masked in zip(class_ids, crowd, has_mask):
      if class_id is None:  # Dropped: its class text is not in the label map.
        continue
      stats = report.classes.get(class_id)
      if stats is None:
        name = UNKNOWN_CLASS_NAME if ctx.class_names is not None else ''
        if class_id == 0:
          name = BACKGROUND_CLASS_NAME
        stats = report.new_class(class_id, name)
      stats.instances += 1
      stats.crowd += bool(is_crowd)
      stats.with_mask += masked
      stats.without_mask += not masked
      valid = class_id > 0 and (ctx.class_names is None or
                                class_id in ctx.class_names)
      if ctx.load_instance_masks and masked and valid and stats.masks_allowed:
        stats.mask_supervised += 1
