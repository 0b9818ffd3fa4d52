"""Dataset inspection: check TFRecords against a config before training.

Reads raw records (``tf.train.Example`` parsed in Python, not the model's
decoder) so that every record the decoder would choke on is reported with its
file, record index and source id, and counts what the model will learn from:
instances per class, instances with and without masks, crowd instances, and
how many instances give mask supervision under ``allowed_masked_classes_ids``.

Issues are grouped by kind: a report keeps every count but only the first few
examples of each kind, so 10k identical errors cost 10k counter increments.
"""

import collections
import dataclasses
import io
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
import tensorflow as tf

from deepmac_tf.data import label_map_util
from deepmac_tf.data.fields import TfExampleFields as F
from deepmac_tf.errors import LabelMapError
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import string_int_label_map_pb2

PNG_MASKS = 'PNG_MASKS'
NUMERICAL_MASKS = 'NUMERICAL_MASKS'
ERROR = 'error'
WARNING = 'warning'
# Box coordinates may exceed [0, 1] by rounding; more means pixels were used.
_BOX_TOLERANCE = 1e-2
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_UNKNOWN_NAME = '<not in label map>'

# kind -> (severity, one-line title shown above the examples).
ISSUE_KINDS = {
    'input_path_missing': (ERROR, 'no input path configured'),
    'input_path_no_match': (ERROR, 'input path pattern matches no file'),
    'label_map_unreadable': (ERROR, 'label map cannot be loaded'),
    'no_label_map': (WARNING, 'no label map: class ids not checked'),
    'allowed_class_unknown': (ERROR, 'allowed_masked_classes_ids not in the '
                              'label map'),
    'masks_not_loaded': (ERROR, 'model predicts masks but '
                         'load_instance_masks is false'),
    'file_unreadable': (ERROR, 'TFRecord file is corrupt or unreadable'),
    'record_unparsable': (ERROR, 'record is not a tf.train.Example'),
    'missing_key': (ERROR, 'required feature key missing'),
    'wrong_feature_type': (ERROR, 'feature has the wrong type'),
    'image_undecodable': (ERROR, 'image/encoded cannot be decoded'),
    'image_size_mismatch': (ERROR, 'image/height, image/width differ from '
                            'the encoded image'),
    'count_mismatch': (ERROR, 'per-instance features have different lengths'),
    'class_id_zero': (ERROR, 'class id 0 (reserved for the background)'),
    'class_id_unknown': (ERROR, 'class id not in the label map'),
    'class_text_unknown': (ERROR, 'class text not in the label map'),
    'class_id_exceeds_num_classes': (ERROR, 'class id > model num_classes'),
    'box_not_normalized': (ERROR, 'box coordinates outside [0, 1]'),
    'box_degenerate': (ERROR, 'box with zero or negative area'),
    'masks_absent': (ERROR, 'load_instance_masks is true but the record has '
                     'no masks'),
    'mask_type_mismatch': (ERROR, 'mask_type does not match the records'),
    'mask_count_mismatch': (ERROR, 'number of masks != number of boxes'),
    'mask_size_mismatch': (ERROR, 'mask size differs from the image size'),
    'mask_undecodable': (ERROR, 'PNG mask cannot be decoded'),
    'masks_ignored': (WARNING, 'records have masks but load_instance_masks '
                      'is false: no mask supervision'),
    'empty_mask': (WARNING, 'all-zero mask (counted as without mask)'),
}


@dataclasses.dataclass(frozen=True)
class Issue:
  """One problem, located as precisely as known."""
  kind: str
  message: str
  file: Optional[str] = None
  record_index: Optional[int] = None
  source_id: Optional[str] = None

  @property
  def severity(self) -> str:
    return ISSUE_KINDS[self.kind][0]

  def location(self) -> str:
    parts = [self.file] if self.file else []
    if self.record_index is not None:
      parts.append(f'record {self.record_index}')
    if self.source_id:
      parts.append(f'source_id {self.source_id!r}')
    return ', '.join(parts)

  def __str__(self):
    where = self.location()
    return f'{where}: {self.message}' if where else self.message


@dataclasses.dataclass
class ClassStats:
  """Instance counts of one class id."""
  class_id: int
  name: str
  masks_allowed: bool
  instances: int = 0
  crowd: int = 0
  with_mask: int = 0
  without_mask: int = 0
  mask_supervised: int = 0


@dataclasses.dataclass
class InspectionReport:
  """Counts and issues of one set of TFRecords (one input reader)."""
  name: str = ''
  files: List[str] = dataclasses.field(default_factory=list)
  mask_type: str = NUMERICAL_MASKS
  load_instance_masks: bool = False
  allowed_masked_class_ids: Tuple[int, ...] = ()
  num_records: int = 0
  num_images_without_instances: int = 0
  truncated: bool = False
  classes: Dict[int, ClassStats] = dataclasses.field(default_factory=dict)
  detected_mask_types: Dict[str, int] = dataclasses.field(
      default_factory=collections.Counter)
  issue_counts: Dict[str, int] = dataclasses.field(
      default_factory=collections.Counter)
  examples: Dict[str, List[Issue]] = dataclasses.field(default_factory=dict)
  max_examples_per_kind: int = 20

  def add_issue(self, kind, message, file=None, record_index=None,
                source_id=None):
    """Counts an issue and keeps it if its kind has few examples so far."""
    if kind not in ISSUE_KINDS:
      raise ValueError(f'Unknown issue kind {kind!r}.')
    self.issue_counts[kind] += 1
    kept = self.examples.setdefault(kind, [])
    if len(kept) < self.max_examples_per_kind:
      kept.append(Issue(kind, message, file, record_index, source_id))

  def _count(self, severity):
    return sum(n for kind, n in self.issue_counts.items()
               if ISSUE_KINDS[kind][0] == severity)

  @property
  def num_errors(self) -> int:
    return self._count(ERROR)

  @property
  def num_warnings(self) -> int:
    return self._count(WARNING)

  @property
  def ok(self) -> bool:
    return self.num_errors == 0

  @property
  def issues(self) -> List[Issue]:
    """The kept examples of every kind, errors first."""
    kinds = sorted(self.examples, key=lambda k: ISSUE_KINDS[k][0] != ERROR)
    return [issue for kind in kinds for issue in self.examples[kind]]

  def total(self, field_name: str) -> int:
    """Sums a ``ClassStats`` field over classes, e.g. ``total('crowd')``."""
    return sum(getattr(s, field_name) for s in self.classes.values())

  def to_dict(self) -> dict:
    """A JSON-serializable view of the report."""
    return {
        'name': self.name, 'files': list(self.files),
        'mask_type': self.mask_type,
        'load_instance_masks': self.load_instance_masks,
        'allowed_masked_class_ids': list(self.allowed_masked_class_ids),
        'num_records': self.num_records,
        'num_images_without_instances': self.num_images_without_instances,
        'truncated': self.truncated,
        'classes': [dataclasses.asdict(self.classes[k])
                    for k in sorted(self.classes)],
        'detected_mask_types': dict(self.detected_mask_types),
        'num_errors': self.num_errors, 'num_warnings': self.num_warnings,
        'issues': {kind: {'severity': ISSUE_KINDS[kind][0],
                          'title': ISSUE_KINDS[kind][1], 'count': count,
                          'examples': [dataclasses.asdict(i) for i in
                                       self.examples.get(kind, [])]}
                   for kind, count in self.issue_counts.items()},
    }


@dataclasses.dataclass
class _Context:
  """What records are checked against (derived from the config)."""
  class_names: Optional[Dict[int, str]]
  text_to_id: Dict[str, int]
  load_instance_masks: bool
  mask_type: str
  allowed: Tuple[int, ...]
  num_classes: Optional[int]
  decode_images: bool


def normalize_mask_type(mask_type) -> str:
  """Maps an ``InstanceMaskType`` (enum value or name) to its record format."""
  if isinstance(mask_type, int):
    mask_type = input_reader_pb2.InstanceMaskType.Name(mask_type)
  mask_type = (mask_type or 'DEFAULT').upper()
  if mask_type == 'DEFAULT':
    return NUMERICAL_MASKS
  if mask_type not in (PNG_MASKS, NUMERICAL_MASKS):
    raise ValueError(f'mask_type must be PNG_MASKS or NUMERICAL_MASKS, got '
                     f'{mask_type!r}.')
  return mask_type


def expand_file_patterns(file_patterns, report, field='input_path'):
  """Globs each pattern; reports patterns that match nothing, naming field."""
  if not file_patterns:
    report.add_issue('input_path_missing', f'{field}: no input path given; '
                     'expected TFRecord files or glob patterns.')
    return []
  files = []
  for pattern in file_patterns:
    matched = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    hint = ''
    if 'PATH_TO_BE_CONFIGURED' in pattern:
      hint = ' (replace the PATH_TO_BE_CONFIGURED placeholder)'
    if not matched:
      report.add_issue('input_path_no_match', f'{field}: pattern {pattern!r} '
                       f'matches no file{hint}.')
    files.extend(f for f in matched if f not in files)
  return files


def _load_label_map(label_map, report, field):
  """Returns a StringIntLabelMap (or None), reporting load failures."""
  if label_map is None or label_map == '':
    report.add_issue('no_label_map', f'{field}: not set; class ids are not '
                     'checked against a label map.')
    return None
  if isinstance(label_map, string_int_label_map_pb2.StringIntLabelMap):
    return label_map
  try:
    return label_map_util.load_label_map(label_map)
  except LabelMapError as e:
    report.add_issue('label_map_unreadable', f'{field}: {e}')
    return None


def inspect_records(file_patterns: Sequence[str], label_map,
                    load_instance_masks: bool = False,
                    mask_type=NUMERICAL_MASKS,
                    allowed_masked_class_ids: Sequence[int] = (),
                    max_records: Optional[int] = None, *,
                    num_classes: Optional[int] = None,
                    model_predicts_masks: bool = False,
                    use_display_name: bool = False,
                    decode_images: bool = True,
                    name: str = '',
                    input_path_field: str = 'input_path',
                    label_map_field: str = 'label_map_path',
                    progress: Optional[Callable[[int, int, int], None]] = None
                    ) -> InspectionReport:
  """Reads TFRecords of tf.Examples and reports counts and every mismatch.

  Args:
    file_patterns: TFRecord paths or glob patterns.
    label_map: a label map path, a ``StringIntLabelMap``, or None.
    load_instance_masks: whether the input reader loads masks.
    mask_type: the configured ``InstanceMaskType`` (name or enum value).
    allowed_masked_class_ids: 1-based ids whose masks supervise the mask
      head; empty means all classes.
    max_records: stop after this many records (report marked truncated).
    num_classes: the model's class count, to flag larger ids (optional).
    model_predicts_masks: the model has a mask head; then masks must load.
    use_display_name: map ``image/object/class/text`` through display names.
    decode_images: fully decode images (slower; catches corrupt data) rather
      than reading their size from the header.
    name: report name, e.g. ``'train_input_reader'``.
    input_path_field: how issues name the input path setting.
    label_map_field: how issues name the label map setting.
    progress: called as ``progress(records_done, file_index, num_files)``.

  Returns:
    An ``InspectionReport``; ``report.ok`` is False when there are errors.
  """
  allowed = tuple(sorted(set(int(i) for i in allowed_masked_class_ids)))
  report = InspectionReport(
      name=name, mask_type=normalize_mask_type(mask_type),
      load_instance_masks=bool(load_instance_masks),
      allowed_masked_class_ids=allowed)
  proto = _load_label_map(label_map, report, label_map_field)
  names, text_to_id = None, {}
  if proto is not None:
    names = {i: c['name'] for i, c in
             label_map_util.create_category_index(proto).items()}
    text_to_id = label_map_util.get_label_map_dict(proto, use_display_name)
    for class_id in allowed:
      if class_id not in names:
        report.add_issue('allowed_class_unknown', f'allowed_masked_classes_ids'
                         f' contains {class_id}, which is not in the label '
                         f'map (ids {sorted(names)}).')
    for class_id in sorted(names):
      report.classes[class_id] = ClassStats(
          class_id, names[class_id], not allowed or class_id in allowed)
  if model_predicts_masks and not load_instance_masks:
    report.add_issue('masks_not_loaded', f'{name or "input reader"}: the model'
                     ' predicts masks; set load_instance_masks: true.')
  ctx = _Context(names, text_to_id, bool(load_instance_masks),
                 report.mask_type, allowed, num_classes, decode_images)
  report.files = expand_file_patterns(file_patterns, report, input_path_field)
  _read_files(report, ctx, max_records, progress)
  return report


def _read_files(report, ctx, max_records, progress):
  """Checks every record of ``report.files``, up to ``max_records``."""
  # Imported here: record checks live in their own module.
  from deepmac_tf.data import inspection_checks  # pylint: disable=g-import-not-at-top
  for file_index, path in enumerate(report.files):
    index = -1
    try:
      for index, raw in enumerate(tf.data.TFRecordDataset(path)):
        if max_records is not None and report.num_records >= max_records:
          report.truncated = True
          return
        report.num_records += 1
        inspection_checks.check_record(raw.numpy(), path, index, ctx, report)
        if progress:
          progress(report.num_records, file_index, len(report.files))
    except (tf.errors.OpError, OSError) as e:
      message = getattr(e, 'message', str(e)).splitlines()[0]
      report.add_issue('file_unreadable', f'cannot read past record '
                       f'{index + 1}: {message}', path, index + 1)
