r"""Checks TFRecords against a pipeline config (or explicit settings) before
training, and prints what the model will learn from.

Reports the number of images, instances per class, instances with and without
masks, crowd instances, the classes allowed masks (allowed_masked_classes_ids)
and how many instances will give mask supervision, then every mismatch
(unknown or 0 class ids, missing masks, PNG vs numerical mask_type, mask and
image sizes, boxes, missing keys, undecodable images...) grouped by kind with
file, record index and source_id. Exit code: 0 clean, 1 errors, 2 bad usage.

Usage:
  python scripts/inspect_dataset.py --pipeline_config_path=pipeline.config \
      --split=all
  python scripts/inspect_dataset.py --input_path='data/train-*.tfrecord' \
      --label_map_path=label_map.pbtxt --load_instance_masks \
      --mask_type=PNG_MASKS --allowed_masked_classes_ids=1,3
"""

import json
import sys
import time

from absl import app
from absl import flags

from deepmac_tf import cli
from deepmac_tf.errors import DeepMacError

# TensorFlow is imported lazily (in main) so that --help answers at once.
_SPLITS = ('train', 'eval', 'all')

_PIPELINE = flags.DEFINE_string(
    'pipeline_config_path', None,
    'Pipeline config whose input readers are inspected.')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', None, 'Text-format fragment merged over the config.')
_SPLIT = flags.DEFINE_enum(
    'split', 'train', _SPLITS,
    'With --pipeline_config_path: which input readers to inspect.')
_INPUT_PATH = flags.DEFINE_multi_string(
    'input_path', None, 'TFRecord file or glob pattern (repeatable); use '
    'instead of --pipeline_config_path.')
_LABEL_MAP = flags.DEFINE_string(
    'label_map_path', None, 'With --input_path: the label map (.pbtxt).')
_MASK_TYPE = flags.DEFINE_enum(
    'mask_type', 'NUMERICAL_MASKS', ['DEFAULT', 'NUMERICAL_MASKS', 'PNG_MASKS'],
    'With --input_path: how the input reader expects masks.')
_LOAD_MASKS = flags.DEFINE_bool(
    'load_instance_masks', False,
    'With --input_path: the input reader loads instance masks.')
_ALLOWED = flags.DEFINE_list(
    'allowed_masked_classes_ids', [], 'With --input_path: 1-based class ids '
    'whose masks train the mask head, e.g. 1,2,3; empty means all classes.')
_NUM_CLASSES = flags.DEFINE_integer(
    'num_classes', None, 'With --input_path: the model\'s num_classes, to '
    'flag larger class ids.')
_MAX_RECORDS = flags.DEFINE_integer(
    'max_records', None, 'Read at most this many records per input reader.')
_OUTPUT_JSON = flags.DEFINE_string(
    'output_json', None, 'Also write the full report as JSON here.')
_MAX_EXAMPLES = flags.DEFINE_integer(
    'max_examples', 3, 'Examples printed per kind of issue.')
_DECODE_IMAGES = flags.DEFINE_bool(
    'decode_images', True, 'Fully decode every image (slower, catches '
    'corrupt data); --nodecode_images reads sizes from image headers.')
_PROGRESS = flags.DEFINE_bool(
    'progress', None, 'Show a progress bar on stderr (default: when stderr '
    'is a terminal).')


class _ProgressBar:
  """A one-line progress bar on stderr, redrawn at most 10 times a second."""

  def __init__(self, max_records, width=30):
    self._max_records = max_records
    self._width = width
    self._start = None
    self._last_draw = 0.0
    self._drawn = False
    self._state = None

  def __call__(self, name, done, file_index, num_files, force=False):
    if self._state and self._state[0] != name:  # Next input reader.
      self.close()
    now = time.monotonic()
    if self._start is None:
      self._start = now
    self._state = (name, done, file_index, num_files)
    if not force and now - self._last_draw < 0.1:
      return
    self._last_draw = now
    if self._max_records:
      fraction = min(1.0, done / self._max_records)
    else:
      fraction = (file_index + (1 if force else 0)) / max(num_files, 1)
    filled = int(fraction * self._width)
    rate = done / max(now - self._start, 1e-6)
    sys.stderr.write(
        f'\r{name} [{"#" * filled}{"." * (self._width - filled)}] '
        f'file {file_index + 1}/{num_files}, {done} records, '
        f'{rate:.0f}/s ')
    sys.stderr.flush()
    self._drawn = True

  def close(self):
    """Draws the final state and ends the line."""
    if self._state:
      self(*self._state, force=True)
    if self._drawn:
      sys.stderr.write('\n')
      sys.stderr.flush()
    self._state, self._drawn, self._start = None, False, None


def _parse_allowed_ids(values):
  try:
    ids = [int(v) for v in values if v.strip()]
  except ValueError:
    raise app.UsageError(f'--allowed_masked_classes_ids must be integers, got '
                         f'{",".join(values)!r}.', exitcode=2) from None
  if any(i <= 0 for i in ids):
    raise app.UsageError('--allowed_masked_classes_ids are 1-based label-map '
                         'ids; 0 and negative ids are invalid.', exitcode=2)
  return ids


def _run_inspection(progress):
  """Returns ``{reader name: InspectionReport}`` for the chosen mode."""
  if _PIPELINE.value:
    # The config is read before TensorFlow loads (with the inspector), so
    # a missing or malformed config answers in a second.
    from deepmac_tf import config  # pylint: disable=g-import-not-at-top
    configs = config.get_configs_from_pipeline_file(
        _PIPELINE.value, config_override=_CONFIG_OVERRIDE.value)
    from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
    return inspection.inspect_pipeline(
        configs, _SPLIT.value, max_records=_MAX_RECORDS.value,
        decode_images=_DECODE_IMAGES.value, progress=progress)
  from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
  callback = None
  if progress:
    callback = lambda done, i, n: progress('input_path', done, i, n)
  report = inspection.inspect_records(
      _INPUT_PATH.value, _LABEL_MAP.value, _LOAD_MASKS.value, _MASK_TYPE.value,
      _parse_allowed_ids(_ALLOWED.value), _MAX_RECORDS.value,
      num_classes=_NUM_CLASSES.value, decode_images=_DECODE_IMAGES.value,
      name='input_path', input_path_field='--input_path',
      label_map_field='--label_map_path',
      allowed_ids_field='--allowed_masked_classes_ids', progress=callback)
  return {'input_path': report}


def _write_json(path, payload):
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(payload, f, indent=2, default=str)
    f.write('\n')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}',
                         exitcode=2)
  if bool(_PIPELINE.value) == bool(_INPUT_PATH.value):
    raise app.UsageError('Give either --pipeline_config_path or --input_path '
                         '(with --label_map_path).', exitcode=2)
  show_progress = _PROGRESS.value
  if show_progress is None:
    show_progress = sys.stderr.isatty()
  bar = _ProgressBar(_MAX_RECORDS.value) if show_progress else None
  try:
    reports = _run_inspection(bar)
  except DeepMacError as e:
    print(f'ERROR: {e}', file=sys.stderr)
    if _OUTPUT_JSON.value:
      _write_json(_OUTPUT_JSON.value, {'ok': False, 'error': str(e)})
    return 1
  finally:
    if bar:
      bar.close()
  from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
  print(inspection.format_reports(reports.values(), _MAX_EXAMPLES.value))
  ok = all(report.ok for report in reports.values())
  errors = sum(report.num_errors for report in reports.values())
  print('\nRESULT: ' + ('OK: no errors.' if ok else
                        f'FAILED: {errors} error(s); fix them before '
                        'training.'))
  if _OUTPUT_JSON.value:
    _write_json(_OUTPUT_JSON.value, {
        'ok': ok,
        'reports': {name: r.to_dict() for name, r in reports.items()}})
  return 0 if ok else 1


if __name__ == '__main__':
  cli.run(main)
