"""Checks that run before a model is built, in seconds (training and eval).

``check_training_inputs(configs, model_dir)`` raises the project's error
classes (one line naming the file / field / record) for:

* an unwritable ``model_dir`` (``--model_dir``);
* ``train_config.batch_size`` < 1, ``allowed_masked_classes_ids`` outside
  1..num_classes;
* input readers: no ``tf_record_input_reader``, placeholders
  (``PATH_TO_BE_CONFIGURED``), patterns that match no file,
  ``load_instance_masks: false`` for a model with a mask head;
* the label map: unreadable, or ids larger than the model's ``num_classes``;
* a quick sample of the records (``SAMPLE_RECORDS`` from the first file),
  read with the dataset inspector: class ids above ``num_classes``, ids
  missing from the label map, missing masks, a mask whose size differs from
  its image, undecodable images / masks, a truncated file.

Degenerate boxes in the sample are not fatal (training drops them and
counts them); they are logged as a warning. With ``skip_bad_records``
(``--skip_bad_records``), a sampled record that training would skip
(``SKIPPABLE_KINDS``: it cannot be read or decoded) is a warning too, unless
every sampled record is one: then the input or the config is wrong.
"""

import collections

from absl import logging

from deepmac_tf import file_checks
from deepmac_tf.config import model_spec
from deepmac_tf.config import validation
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import LabelMapError

SAMPLE_RECORDS = 16

# Inspection issue kinds that stop training (all others are logged).
_FATAL_KINDS = {
    'input_path_missing': ConfigError, 'input_path_no_match': ConfigError,
    'file_unreadable': DataError, 'record_unparsable': DataError,
    'missing_key': DataError, 'wrong_feature_type': DataError,
    'image_undecodable': DataError, 'count_mismatch': DataError,
    'class_id_zero': DataError, 'class_id_unknown': LabelMapError,
    'class_id_exceeds_num_classes': ConfigError,
    'box_not_normalized': DataError, 'masks_absent': DataError,
    'mask_type_mismatch': DataError, 'mask_count_mismatch': DataError,
    'mask_size_mismatch': DataError, 'mask_undecodable': DataError,
    'allowed_class_unknown': ConfigError, 'label_map_unreadable':
        LabelMapError,
}

# Kinds the input pipeline fails on for that record alone (the decoder's
# assertions, TF's reader): skipped and counted with --skip_bad_records.
SKIPPABLE_KINDS = frozenset({
    'file_unreadable', 'record_unparsable', 'image_undecodable',
    'count_mismatch', 'class_id_zero', 'box_not_normalized',
    'mask_count_mismatch', 'mask_size_mismatch', 'mask_undecodable'})

Preflight = collections.namedtuple('Preflight', ['train_files'])


def _label_map_ids(path, field):
  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  try:
    return label_map_util.create_category_index(
        label_map_util.load_label_map(path))
  except LabelMapError as e:
    raise LabelMapError(f'{field}: {e}') from None


def _check_label_map(reader, field, num_classes, arch):
  if not reader.label_map_path:
    return
  categories = _label_map_ids(reader.label_map_path, f'{field}.label_map_path')
  too_big = sorted(i for i in categories if i > num_classes)
  if num_classes and too_big:
    first = too_big[0]
    raise LabelMapError(
        f'{field}.label_map_path: {reader.label_map_path} has id {first} '
        f'({categories[first]["name"]!r}) but model.{arch}.num_classes is '
        f'{num_classes}; raise num_classes or fix the label map.')


def _skippable(issues, num_sampled):
  """The issues --skip_bad_records turns into skips: record-level kinds,
  as long as some sampled record is usable."""
  located = [i for i in issues if i.kind in SKIPPABLE_KINDS and
             i.file is not None and i.record_index is not None]
  bad_records = {(i.file, i.record_index) for i in located}
  if num_sampled and len(bad_records) >= num_sampled:
    return []
  return located


def _named(field, issue):
  """``<field>: <issue>``, unless the issue already names a field of it."""
  text = str(issue)
  return text if text.startswith(f'{field}.') else f'{field}: {text}'


def _sample_error_message(field, issue, num_sampled):
  """``<field>: <issue>``; a record's issue adds how many were sampled (a
  path or label-map issue already names its field and concerns no record)."""
  message = _named(field, issue)
  if issue.record_index is None:
    return message
  return (f'{message} (checked the first {num_sampled} record(s) before '
          'training; scripts/inspect_dataset.py checks them all)')


def _check_sample(reader, field, num_classes, allowed, predicts_masks,
                  skip_bad_records=False, box_only_model=False):
  from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
  report = inspection.inspect_records(
      list(reader.tf_record_input_reader.input_path),
      reader.label_map_path or None, reader.load_instance_masks,
      reader.mask_type, allowed, SAMPLE_RECORDS, num_classes=num_classes,
      model_predicts_masks=predicts_masks,
      use_display_name=reader.use_display_name, decode_images=True,
      name=field, input_path_field=f'{field}.tf_record_input_reader.'
      'input_path', label_map_field=f'{field}.label_map_path')
  skipped = (_skippable(report.issues, report.num_records)
             if skip_bad_records else [])
  for issue in skipped:
    logging.warning('%s (will be skipped: --skip_bad_records)',
                    _named(field, issue))
  for issue in report.issues:
    error_class = _FATAL_KINDS.get(issue.kind)
    if error_class is not None and issue not in skipped:
      raise error_class(_sample_error_message(field, issue,
                                              report.num_records))
  unread_masks = [issue for issue in report.issues
                  if issue.kind == 'masks_ignored' and box_only_model]
  if unread_masks:  # Expected for a box-only model: one line, not a warning.
    logging.info('%s: %d of %d sampled record(s) hold masks; this model '
                 'predicts none, so they are not read.', field,
                 len(unread_masks), report.num_records)
  for issue in report.issues:
    if issue not in skipped and issue not in unread_masks:
      logging.warning('%s', _named(field, issue))
  return report.files


def check_input_reader(reader, field, configs, require_masks,
                       skip_bad_records=False):
  """Config, label map and a record sample of one input reader
  (``skip_bad_records``: see the module doc).

  Returns:
    The files its patterns match.
  """
  validation.validate_input_reader(reader, field, require_masks=require_masks)
  spec = model_spec.from_configs(configs)
  num_classes = spec.num_classes or None
  _check_label_map(reader, field, num_classes, spec.architecture)
  allowed = spec.mask_weight_class_ids(is_training=field.startswith('train'))
  return _check_sample(reader, field, num_classes, allowed, require_masks,
                       skip_bad_records,
                       box_only_model=not spec.predicts_masks)


def _check_training_settings(configs):
  """Numbers the model builder does not look at."""
  train_config = configs.get('train_config')
  if train_config is not None and train_config.batch_size < 1:
    raise ConfigError(f'train_config.batch_size: must be >= 1, got '
                      f'{train_config.batch_size}.')
  spec = model_spec.from_configs(configs)
  outside = [i for i in spec.seen_class_ids
             if i < 1 or (spec.num_classes and i > spec.num_classes)]
  if outside:
    raise ConfigError(
        f'{spec.seen_class_ids_field}: {outside} outside the class ids '
        f'1..{spec.num_classes} (model.{spec.architecture}.num_classes).')


def check_training_inputs(configs, model_dir, with_eval=False,
                          skip_bad_records=False):
  """Everything about a training run that can fail before the model exists.

  Args:
    configs: dict of ``config.get_configs_from_pipeline_file``.
    model_dir: the training ``--model_dir``.
    with_eval: also check the first ``eval_input_reader`` (evaluation during
      training).
    skip_bad_records: sampled training records that cannot be read or
      decoded are warnings (training skips them), see the module doc.

  Returns:
    ``Preflight(train_files)``.

  Raises:
    ConfigError / LabelMapError / DataError: naming what is wrong.
  """
  file_checks.check_writable_dir(model_dir, '--model_dir')
  _check_training_settings(configs)
  reader = configs.get('train_input_config')
  if reader is None:
    raise ConfigError('train_input_reader: is not set.')
  files = check_input_reader(reader, 'train_input_reader', configs,
                             model_spec.from_configs(configs).predicts_masks,
                             skip_bad_records)
  if with_eval:
    if not configs.get('eval_input_configs'):
      raise ConfigError('--eval_every_n_steps: the config has no '
                        'eval_input_reader.')
    check_eval_inputs(configs)
  return Preflight(files)


def check_eval_inputs(configs, eval_input_index=0, output_dir=None):
  """The eval input reader (paths, label map, a record sample) and, when
  given, that ``output_dir`` (under ``--model_dir``) can be written.

  Returns:
    The files the eval reader's patterns match.
  """
  evals = configs.get('eval_input_configs') or []
  if eval_input_index >= len(evals):
    raise ConfigError(f'eval_input_reader: the config has {len(evals)} eval '
                      f'input reader(s); index {eval_input_index} asked '
                      '(--eval_input_index).')
  if output_dir is not None:
    file_checks.check_writable_dir(output_dir, '--model_dir')
  name = ('eval_input_reader' if len(evals) == 1 else
          f'eval_input_reader[{eval_input_index}]')
  _check_super_categories_have_names(configs, evals[eval_input_index], name)
  return check_input_reader(evals[eval_input_index], name, configs, False)


def _check_super_categories_have_names(configs, reader, field):
  """``eval_config.super_categories`` lists class names: without a label
  map the classes are only numbered, so say what is missing (rather than
  that the names are unknown)."""
  eval_config = configs.get('eval_config')
  if reader.label_map_path or eval_config is None or (
      not eval_config.super_categories):
    return
  key = sorted(eval_config.super_categories)[0]
  raise ConfigError(
      f'{field}.label_map_path: not set, but eval_config.super_categories '
      f'names classes ({key!r}: {eval_config.super_categories[key]}); set '
      'label_map_path to the label map that defines those names (without '
      'one, classes are known by id only).')
