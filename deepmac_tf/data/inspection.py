"""Dataset inspection: check TFRecords against a config before training.

Reads raw records (``tf.train.Example`` parsed in Python, not the model's
decoder) so that every record the decoder would choke on is reported with its
file, record index and source id, and counts what the model will learn from:
instances per class, instances with and without masks, crowd instances, and
how many instances give mask supervision under ``allowed_masked_classes_ids``.

Entry points: ``inspect_records`` (explicit settings) and ``inspect_pipeline``
(the input readers of a pipeline config). Results are ``InspectionReport``s;
``format_report`` turns one into the text ``scripts/inspect_dataset.py``
prints. Per-record checks live in ``inspection_checks``.
"""

from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from deepmac_tf.config import model_spec
from deepmac_tf.data import label_map_util
from deepmac_tf.data.inspection_checks import check_record
from deepmac_tf.data.inspection_checks import RecordContext
from deepmac_tf.data import inspection_report
from deepmac_tf.errors import LabelMapError
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import string_int_label_map_pb2

# Re-exported so that one import serves inspecting and formatting.
ClassStats = inspection_report.ClassStats
InspectionReport = inspection_report.InspectionReport
Issue = inspection_report.Issue
ISSUE_KINDS = inspection_report.ISSUE_KINDS
ERROR = inspection_report.ERROR
WARNING = inspection_report.WARNING
PNG_MASKS = inspection_report.PNG_MASKS
NUMERICAL_MASKS = inspection_report.NUMERICAL_MASKS
format_report = inspection_report.format_report
format_reports = inspection_report.format_reports

SPLITS = ('train', 'eval', 'all')
_ALLOWED_IDS_FIELD = 'allowed_masked_classes_ids'


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
    try:
      matched = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    except tf.errors.OpError:
      matched = []
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
                    allowed_ids_field: str = _ALLOWED_IDS_FIELD,
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
    allowed_ids_field: how issues name the allowed class ids setting.
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
        report.add_issue('allowed_class_unknown', f'{allowed_ids_field} '
                         f'contains {class_id}, which is not in the label '
                         f'map (ids {sorted(names)}).')
    for class_id in sorted(names):
      report.new_class(class_id, names[class_id])
  if model_predicts_masks and not load_instance_masks:
    field = f'{name}.load_instance_masks' if name else 'load_instance_masks'
    report.add_issue('masks_not_loaded', f'{field} is false but the model '
                     'predicts masks; set load_instance_masks: true.')
  ctx = RecordContext(names, text_to_id, bool(load_instance_masks),
                      report.mask_type, allowed, num_classes, decode_images)
  report.files = expand_file_patterns(file_patterns, report, input_path_field)
  _read_files(report, ctx, max_records, progress)
  return report


def _read_files(report, ctx, max_records, progress):
  """Checks every record of ``report.files``, up to ``max_records``."""
  for file_index, path in enumerate(report.files):
    index = -1
    try:
      for index, raw in enumerate(tf.data.TFRecordDataset(path)):
        if max_records is not None and report.num_records >= max_records:
          report.truncated = True
          return
        report.num_records += 1
        check_record(raw.numpy(), path, index, ctx, report)
        if progress:
          progress(report.num_records, file_index, len(report.files))
    except (tf.errors.OpError, OSError) as e:
      message = getattr(e, 'message', str(e)).splitlines()[0]
      report.add_issue('file_unreadable', f'cannot read past record '
                       f'{index + 1}: {message}', path, index + 1)


def model_mask_settings(model_config):
  """What inspection needs from a ``DetectionModel`` (``config.model_spec``).

  Returns:
    ``(num_classes or None, allowed_masked_classes_ids, predicts_masks,
    field path of the allowed ids or None)``.
  """
  spec = model_spec.from_model_config(model_config)
  return (spec.num_classes or None, spec.seen_class_ids, spec.predicts_masks,
          spec.seen_class_ids_field)


def _readers_for_split(configs, split):
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
  readers = []
  if split in ('train', 'all'):
    readers.append(('train_input_reader', configs.get('train_input_config')))
  if split in ('eval', 'all'):
    evals = list(configs.get('eval_input_configs') or [])
    if not evals:
      readers.append(('eval_input_reader', None))
    for i, reader in enumerate(evals):
      name = 'eval_input_reader' if len(evals) == 1 else (
          f'eval_input_reader[{i}]')
      readers.append((name, reader))
  return readers


def inspect_pipeline(configs, split: str = 'train',
                     max_records: Optional[int] = None,
                     decode_images: bool = True,
                     progress: Optional[Callable[[str, int, int, int],
                                                 None]] = None
                     ) -> Dict[str, InspectionReport]:
  """Inspects the input readers of a pipeline config.

  Args:
    configs: the dict of ``config.get_configs_from_pipeline_file``.
    split: ``'train'``, ``'eval'`` or ``'all'``.
    max_records: records read per input reader at most.
    decode_images: see ``inspect_records``.
    progress: called as ``progress(reader_name, records_done, file_index,
      num_files)``.

  Returns:
    ``{reader name: InspectionReport}``, e.g. ``{'train_input_reader': ...}``.
  """
  num_classes, allowed, predicts_masks, allowed_field = model_mask_settings(
      configs.get('model'))
  eval_config = configs.get('eval_config')
  # Eval readers need masks only when mask metrics are asked for.
  eval_needs_masks = bool(eval_config) and (
      'coco_mask_metrics' in eval_config.metrics_set or
      eval_config.eval_instance_masks)
  reports = {}
  for name, reader in _readers_for_split(configs, split):
    if reader is None:
      reader = input_reader_pb2.InputReader()
    needs_masks = predicts_masks and (name.startswith('train') or
                                      eval_needs_masks)
    callback = None
    if progress:
      callback = lambda done, i, n, name=name: progress(name, done, i, n)
    reports[name] = inspect_records(
        list(reader.tf_record_input_reader.input_path),
        reader.label_map_path or None, reader.load_instance_masks,
        reader.mask_type, allowed, max_records, num_classes=num_classes,
        model_predicts_masks=needs_masks,
        use_display_name=reader.use_display_name, decode_images=decode_images,
        name=name, input_path_field=f'{name}.tf_record_input_reader.input_path',
        label_map_field=f'{name}.label_map_path',
        allowed_ids_field=allowed_field or _ALLOWED_IDS_FIELD,
        progress=callback)
  return reports
