"""Result of dataset inspection: counts per class, grouped issues, and the
text formatting that the ``inspect_dataset.py`` script prints.

Issues are grouped by kind: a report keeps every count but only the first few
examples of each kind, so a dataset with 10k identical errors prints a few
lines, not 10k.
"""

import collections
import dataclasses
from typing import Dict, Iterable, List, Optional, Tuple

PNG_MASKS = 'PNG_MASKS'
NUMERICAL_MASKS = 'NUMERICAL_MASKS'
ERROR = 'error'
WARNING = 'warning'

# kind -> (severity, one-line title shown above the examples).
ISSUE_KINDS = {
    'input_path_missing': (ERROR, 'no input path configured'),
    'input_path_no_match': (ERROR, 'input path pattern matches no file'),
    'label_map_unreadable': (ERROR, 'label map cannot be loaded'),
    'no_label_map': (WARNING, 'no label map: class ids not checked'),
    'allowed_class_unknown': (ERROR, 'allowed_masked_classes_ids not in the '
                              'label map'),
    'masks_not_loaded': (ERROR, 'the model needs masks but '
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
    'class_text_unknown': (WARNING, 'class text not in the label map: '
                           'instances dropped'),
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

  def new_class(self, class_id, name) -> ClassStats:
    """Adds (and returns) the counts of a class id."""
    allowed = (not self.allowed_masked_class_ids or
               class_id in self.allowed_masked_class_ids)
    stats = ClassStats(class_id, name, allowed)
    self.classes[class_id] = stats
    return stats

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


def _percent(part, whole):
  return f'{100.0 * part / whole:.1f}%' if whole else '-'


def _class_table(report):
  """Rows of the per-class table, header first, then a total row."""
  header = ('id', 'name', 'instances', 'crowd', 'with mask', 'without mask',
            'masks allowed', 'mask-supervised')
  rows = [header]
  for class_id in sorted(report.classes):
    s = report.classes[class_id]
    rows.append((str(s.class_id), s.name, str(s.instances), str(s.crowd),
                 str(s.with_mask), str(s.without_mask),
                 'yes' if s.masks_allowed else 'no', str(s.mask_supervised)))
  rows.append(('', 'total', *(str(report.total(f)) for f in (
      'instances', 'crowd', 'with_mask', 'without_mask')), '',
               str(report.total('mask_supervised'))))
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = []
  for n, row in enumerate(rows):
    cells = [cell.ljust(w) if i == 1 else cell.rjust(w)
             for i, (cell, w) in enumerate(zip(row, widths))]
    lines.append('  ' + '  '.join(cells).rstrip())
    if n == 0 or n == len(rows) - 2:
      lines.append('  ' + '  '.join('-' * w for w in widths))
  return lines


def _issue_lines(report, max_examples):
  lines = []
  for severity in (ERROR, WARNING):
    # In ISSUE_KINDS order: config problems, then files, then records.
    kinds = [k for k in ISSUE_KINDS
             if k in report.issue_counts and ISSUE_KINDS[k][0] == severity]
    if not kinds:
      continue
    total = sum(report.issue_counts[k] for k in kinds)
    lines.append(f'{severity.upper()}S: {total} in {len(kinds)} kind(s)')
    for kind in kinds:
      count = report.issue_counts[kind]
      lines.append(f'  [{kind}] x{count}: {ISSUE_KINDS[kind][1]}')
      shown = report.examples.get(kind, [])[:max_examples]
      lines.extend(f'    - {issue}' for issue in shown)
      if count > len(shown):
        lines.append(f'    ... and {count - len(shown)} more')
  return lines


def format_report(report: InspectionReport, max_examples: int = 3) -> str:
  """Formats a report: settings, per-class table, grouped issues, verdict.

  Args:
    report: the report to format.
    max_examples: examples shown per issue kind (the rest are counted).

  Returns:
    Multi-line text, without a trailing newline.
  """
  truncated = ' (stopped at max_records)' if report.truncated else ''
  lines = [f'=== {report.name or "dataset"}: {len(report.files)} file(s), '
           f'{report.num_records} image(s){truncated} ===']
  lines.append(f'mask_type: {report.mask_type}   load_instance_masks: '
               f'{str(report.load_instance_masks).lower()}')
  detected = ', '.join(f'{kind} in {n} record(s)' for kind, n in
                       sorted(report.detected_mask_types.items()))
  lines.append(f'records contain masks as: {detected or "(no masks)"}')
  if report.allowed_masked_class_ids:
    allowed = ', '.join(
        f'{i} ({report.classes[i].name})' if i in report.classes else str(i)
        for i in report.allowed_masked_class_ids)
  else:
    allowed = 'all (allowed_masked_classes_ids is empty)'
  lines.append(f'classes allowed masks: {allowed}')
  lines.append('')
  lines.extend(_class_table(report))
  lines.append('')
  instances = report.total('instances')
  supervised = report.total('mask_supervised')
  lines.append(f'images without instances: '
               f'{report.num_images_without_instances}   crowd instances: '
               f'{report.total("crowd")}')
  lines.append(f'mask supervision: {supervised} of {instances} instances '
               f'({_percent(supervised, instances)}) will train the mask head'
               + ('' if report.load_instance_masks else
                  ' (load_instance_masks is false)') + '.')
  issue_lines = _issue_lines(report, max_examples)
  if issue_lines:
    lines.append('')
    lines.extend(issue_lines)
  lines.append('')
  lines.append(f'{report.name or "dataset"}: ' + (
      'OK' if report.ok else f'FAILED with {report.num_errors} error(s)') +
               f', {report.num_warnings} warning(s).')
  return '\n'.join(lines)


def format_reports(reports: Iterable[InspectionReport],
                   max_examples: int = 3) -> str:
  """Formats several reports (e.g. train and eval readers) one after another."""
  return '\n\n'.join(format_report(r, max_examples) for r in reports)
