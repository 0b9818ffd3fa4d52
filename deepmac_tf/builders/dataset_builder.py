"""Builds the tf.data input pipeline from OD API input-reader configs.

Pipeline (per input pipeline / replica group):
  glob ``tf_record_input_reader.input_path`` -> shard (``input_context``) ->
  shuffle files -> repeat (``num_epochs``, 0 = forever) -> interleave records
  of ``num_readers`` files -> ``sample_1_of_n_examples`` -> shuffle records ->
  decode -> drop crowd instances (training) -> clip boxes to the image and
  drop (counting, reporting) those with no area -> augment (training) ->
  resize -> partial-supervision mask weights -> pad / clip instances to
  ``max_number_of_boxes`` -> batch -> prefetch.

Each element is a dict keyed by ``fields.InputFields`` (see there for shapes);
``groundtruth_instance_masks`` is present only with ``load_instance_masks``.
Padding rows have boxes 0, class 0, weight 0, mask weight 0, is_crowd False,
area 0 and all-zero masks; ``num_groundtruth_boxes`` counts the real rows.

With ``skip_bad_records`` (``model_main_tf2.py --skip_bad_records``) a record
that cannot be read (corrupt or truncated TFRecord framing: TF's reader stops
there, so the rest of that file is skipped too, in one line that counts
them) or decoded (any decoder assertion, undecodable image or mask) is
skipped instead of ending the run: each skip is a ``WARNING: skipped record
<i> of file <f> ...`` line with the running count, and every element carries
that count of its input pipeline as ``SKIPPED_RECORDS`` [B] (the training
loop reports it at the end). A record is counted each time it is read (once
per epoch). ``MAX_CONSECUTIVE_BAD`` skip lines in a row end the run: the
input or the config is wrong, not a record.
"""

from absl import logging
import tensorflow as tf

from deepmac_tf import graph_functions
from deepmac_tf.builders import hyperparams_builder
from deepmac_tf.config import config_util
from deepmac_tf.config import model_spec
from deepmac_tf.config import validation
from deepmac_tf.data import decoder as decoder_lib
from deepmac_tf.data import image_resizer
from deepmac_tf.data import record_errors
from deepmac_tf.data.augmentation import build_augmentation_fn
from deepmac_tf.data.augmentation import instances
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.ops import mask_weights

_SOURCE = '_source'
# --skip_bad_records: 0 a good element, else why it is a placeholder for a
# skipped record; and how many records it stands for.
_BAD = '_bad_record'
_BAD_COUNT = '_bad_record_count'
_UNDECODABLE, _UNREADABLE = 1, 2
SKIPPED_RECORDS = 'skipped_bad_records'
MAX_CONSECUTIVE_BAD = 1000
_TFRECORD_BUFFER_BYTES = 8 * 1000 * 1000


def _glob_input_files(input_reader_config, reader_name):
  """Returns the sorted files matched by every input_path pattern."""
  # Missing reader block, empty paths, PATH_TO_BE_CONFIGURED left in a path.
  validation.validate_input_reader(input_reader_config, reader_name)
  path = f'{reader_name}.tf_record_input_reader.input_path'
  patterns = list(input_reader_config.tf_record_input_reader.input_path)
  filenames = []
  for pattern in patterns:
    matches = sorted(tf.io.gfile.glob(pattern))
    if not matches:
      raise ConfigError(f'{path}: pattern {pattern!r} matches no files.')
    filenames.extend(matches)
  return list(dict.fromkeys(filenames))  # Drop duplicates, keep order.


def _record_source(filename, index):
  """'record <index> of file <filename>' (scalar string tensor)."""
  return tf.strings.join(['record ', tf.strings.as_string(index),
                          ' of file ', filename])


def _read_file(filename):
  records = tf.data.TFRecordDataset(filename,
                                    buffer_size=_TFRECORD_BUFFER_BYTES)
  return records.enumerate().map(graph_functions.dataset_function(
      lambda index, record: (_record_source(filename, index), record)))


def _read_file_frames(filename, num_frames):
  """``--skip_bad_records`` reading: (source, record, readable, count).

  Each record TF's reader returns comes as (source, record, True, 1); if it
  stops before the ``num_frames`` records the file's framing announces (a
  corrupt or truncated record), one (source of the first record not read,
  '', False, number not read) follows.
  """
  read = tf.data.TFRecordDataset(
      filename, buffer_size=_TFRECORD_BUFFER_BYTES).ignore_errors()
  end = tf.data.Dataset.from_tensors((tf.constant(b''), tf.constant(False)))

  def step(index, frame):
    record, readable = frame
    count = tf.where(readable, tf.constant(1, tf.int64), num_frames - index)
    return index + 1, (_record_source(filename, index), record, readable,
                       count)

  frames = read.map(graph_functions.dataset_function(
      lambda r: (r, tf.constant(True)))).concatenate(end).scan(
          tf.constant(0, tf.int64), graph_functions.dataset_function(step))
  return frames.filter(graph_functions.dataset_function(
      lambda source, record, readable, count: count > 0))


def _placeholder(spec, source, reason, count):
  """An element of ``spec`` standing for ``count`` skipped records from
  ``source`` on (zeros, empty dimensions where the size is not static)."""
  element = tf.nest.map_structure(
      lambda s: tf.zeros([0 if d is None else d for d in s.shape], s.dtype),
      spec)
  element[_SOURCE] = source
  element[_BAD] = reason
  element[_BAD_COUNT] = count
  return element


def _process_or_skip(process):
  """Per record: ``process``'s element with ``_BAD`` 0, or, when the record
  was unreadable or ``process`` fails on it, a placeholder naming it."""

  def one_record(source, serialized, readable, count):
    record = tf.data.Dataset.from_tensors(
        (source, serialized, readable, count))
    good = record.filter(lambda s, r, ok, n: ok).map(
        lambda s, r, ok, n: process(s, r)).ignore_errors()
    spec = good.element_spec
    good = good.map(lambda t: dict(t, **{_BAD: tf.constant(0),
                                         _BAD_COUNT: tf.constant(0, tf.int64)}))
    bad = record.map(lambda s, r, ok, n: _placeholder(
        spec, s, tf.where(ok, _UNDECODABLE, _UNREADABLE), n))
    return good.concatenate(bad).take(1)

  return graph_functions.dataset_function(one_record)


def _check_first_record(decoder, filenames, skip_bad_records=False):
  """Decodes the first record eagerly so format mistakes fail right away.

  With ``skip_bad_records`` the first usable record of the first
  ``SAMPLE_FOR_SKIPPING`` is checked (the bad ones before it are logged as
  to be skipped); none usable is the same error as without.
  """
  limit = SAMPLE_FOR_SKIPPING if skip_bad_records else 1
  for filename in filenames:
    try:
      records = [r.numpy() for r in
                 tf.data.TFRecordDataset(filename).take(limit)]
    except tf.errors.OpError as e:
      if skip_bad_records:
        logging.warning('file %s: cannot be read (%s); its records will be '
                        'skipped (--skip_bad_records).', filename,
                        e.message.splitlines()[0])
        continue
      raise DataError(f'file {filename}: is not a readable TFRecord file '
                      f'({e.message.splitlines()[0]}).') from None
    if not records:
      continue
    first_error = None
    for index, record in enumerate(records):
      try:
        decoder.check_record(record, f'record {index} of file {filename}')
        return
      except DataError as e:
        if not skip_bad_records:
          raise
        first_error = first_error or e
        logging.warning('%s (it will be skipped: --skip_bad_records)', e)
    raise DataError(f'{str(first_error).rstrip(".")}; none of the first '
                    f'{len(records)} record(s) of this file can be used, so '
                    '--skip_bad_records would skip everything: fix the config '
                    'or the records.')


SAMPLE_FOR_SKIPPING = 16


def _allowed_mask_weights(tensors, allowed_ids):
  """Zeroes the mask weight of instances whose class may not train masks."""
  if not allowed_ids:
    return tensors
  result = dict(tensors)
  result[InputFields.MASK_WEIGHTS] = mask_weights.instance_mask_weights(
      tensors[InputFields.CLASSES], allowed_ids,
      tensors[InputFields.MASK_WEIGHTS])
  return result


def _drop_crowd_instances(tensors):
  """Removes crowd instances (training only).

  A crowd annotation is one box and mask around a group of objects; as a
  detection or mask target it teaches the wrong thing, so training skips it
  (as TF-Vision's Mask R-CNN input does). Eval keeps it for COCO metrics,
  which treat crowd regions as ignore areas.
  """
  not_crowd = tf.logical_not(tensors[InputFields.IS_CROWD])
  return instances.gather_instances(tensors,
                                    tf.reshape(tf.where(not_crowd), [-1]))


def _clip_boxes(tensors):
  """Clips boxes to [0, 1] (the decoder accepts coordinates up to 0.1
  outside; models get boxes inside the image)."""
  tensors = dict(tensors)
  tensors[InputFields.BOXES] = tf.clip_by_value(tensors[InputFields.BOXES],
                                                0.0, 1.0)
  return tensors


def _clip_boxes_and_drop_degenerate(tensors):
  """Clips the records' boxes to [0, 1] and drops those with no area left
  (ymax <= ymin or xmax <= xmin: inverted, flat, or outside the image).

  Runs before augmentation, so what it counts are the data's own boxes
  (crops drop the boxes they cut away themselves).
  """
  tensors = _clip_boxes(tensors)
  boxes = tensors[InputFields.BOXES]
  valid = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
  kept = instances.gather_instances(tensors, tf.reshape(tf.where(valid), [-1]))
  # Counted and reported by _report_clipping_and_drops.
  kept[_NUM_DEGENERATE] = tf.reduce_sum(
      tf.cast(tf.logical_not(valid), tf.int64))
  return kept


_PADDED_KEYS = instances.PER_INSTANCE_KEYS
_NUM_BEFORE_CLIP = '_num_instances_before_clip'
_NUM_DEGENERATE = '_num_degenerate_boxes'


def _pad_instances(tensors, max_instances):
  """Keeps the first ``max_instances`` instances and zero-pads to that many.

  Adds ``num_groundtruth_boxes`` (real rows) and a private count of the
  instances before clipping (for the warning).
  """
  num = tf.shape(tensors[InputFields.BOXES])[0]
  kept = tf.minimum(num, max_instances)
  result = dict(tensors)
  for key in _PADDED_KEYS:
    if key not in tensors:
      continue
    value = tensors[key][:kept]
    rank = len(value.shape)
    paddings = [[0, max_instances - kept]] + [[0, 0]] * (rank - 1)
    value = tf.pad(value, paddings)
    value.set_shape([max_instances] + value.shape.as_list()[1:])
    result[key] = value
  result[InputFields.NUM_BOXES] = kept
  result[_NUM_BEFORE_CLIP] = num
  return result


def _is_new_decade(before, after):
  """True when ``after`` reaches the next power of ten (1, 10, 100, ...)."""
  digits = lambda x: tf.strings.length(tf.strings.as_string(x))
  return tf.logical_and(after > before, tf.logical_or(
      tf.equal(before, 0), digits(after) > digits(before)))


def _report_skip(tensors, skipped, consecutive):
  """``--skip_bad_records``: logs a placeholder's record, returns the new
  (skipped, consecutive) counts; too many in a row fail the input."""
  bad = tensors[_BAD] > 0
  source = tensors[_SOURCE]
  count = tensors[_BAD_COUNT]

  def report():
    why = tf.where(
        tensors[_BAD] == _UNREADABLE,
        tf.strings.join([
            'it cannot be read (the TFRecord file is corrupt or truncated at '
            'this record or before it; TF reads no further in that file: ',
            tf.strings.as_string(count), ' record(s) from here on skipped)']),
        'it cannot be decoded (scripts/inspect_dataset.py names the problem)')
    message = tf.strings.join([
        'WARNING: skipped ', source, ': ', why, '; ',
        tf.strings.as_string(skipped + count), ' record(s) skipped so far '
        '(--skip_bad_records).'])
    check = tf.debugging.Assert(consecutive + 1 < MAX_CONSECUTIVE_BAD, [
        tf.strings.join([source, f': {MAX_CONSECUTIVE_BAD} records in a row '
                         'could not be used (--skip_bad_records); the input '
                         'or the config is wrong, not a few records: check '
                         'it with scripts/inspect_dataset.py'])])
    with tf.control_dependencies([tf.print(message), check]):
      return tf.identity(count)

  added = tf.cond(bad, report, lambda: tf.constant(0, tf.int64))
  return skipped + added, tf.where(bad, consecutive + 1,
                                   tf.zeros_like(consecutive))


def _report_clipping_and_drops(dataset, max_instances, source_key):
  """Logs what the pipeline drops, without a Python callback or variable.

  * once per iterator: an image had more than ``max_instances`` instances;
  * boxes with no area (ymax <= ymin or xmax <= xmin) dropped: counted, and
    reported with the record when the count reaches 1, 10, 100, ...
  * with ``--skip_bad_records``, each skipped record (``_report_skip``);
    every element then carries the running count as ``SKIPPED_RECORDS``
    and the placeholders are removed.

  A ``scan`` carries the state (the dataset stays serializable).
  """
  counts_skips = _BAD in dataset.element_spec

  def step(state, tensors):
    warned, dropped, skipped, consecutive = state
    tensors = dict(tensors)
    if counts_skips:
      skipped, consecutive = _report_skip(tensors, skipped, consecutive)
      tensors[SKIPPED_RECORDS] = skipped
    num = tensors.pop(_NUM_BEFORE_CLIP)
    degenerate = tensors.pop(_NUM_DEGENERATE)
    source = tensors.pop(source_key)
    clipped = num > max_instances
    should_warn = tf.logical_and(clipped, tf.logical_not(warned))

    def warn():
      message = tf.strings.join([
          'WARNING: ', source, ' has ', tf.strings.as_string(num),
          f' instances; keeping the first {max_instances} '
          '(train_config.max_number_of_boxes). Further clipping is not '
          'reported.'])
      with tf.control_dependencies([tf.print(message)]):
        return tf.constant(True)

    def report_drops():
      message = tf.strings.join([
          'WARNING: ', source, ': dropped ', tf.strings.as_string(degenerate),
          ' box(es) with no area (ymax <= ymin or xmax <= xmin after '
          'clipping to the image); ',
          tf.strings.as_string(dropped + degenerate), ' dropped so far '
          '(reported at 1, 10, 100, ...; scripts/inspect_dataset.py lists '
          'them).'])
      with tf.control_dependencies([tf.print(message)]):
        return tf.constant(True)

    printed = tf.cond(should_warn, warn, lambda: tf.constant(False))
    with tf.control_dependencies([tf.cond(
        _is_new_decade(dropped, dropped + degenerate), report_drops,
        lambda: tf.constant(False))]):
      dropped = tf.identity(dropped + degenerate)
    return (tf.logical_or(warned, printed), dropped, skipped,
            consecutive), tensors

  zero = tf.constant(0, tf.int64)
  dataset = dataset.scan((tf.constant(False), zero, zero, zero),
                         graph_functions.dataset_function(step))
  if counts_skips:
    dataset = dataset.filter(graph_functions.dataset_function(
        lambda t: t[_BAD] == 0)).map(graph_functions.dataset_function(
            lambda t: {k: v for k, v in t.items()
                       if k not in (_BAD, _BAD_COUNT)}))
  return dataset


def _batch(dataset, batch_size, drop_remainder, static_size):
  """Batches; images of varying size are zero-padded bottom / right.

  With a resizer of varying output size (identity, keep-aspect without
  padding) and batch_size > 1, each image lands in the top-left of the
  batch's largest size and its normalized boxes are rescaled to it.
  """
  if static_size is not None or batch_size == 1:
    return dataset.batch(batch_size, drop_remainder=drop_remainder)
  dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)

  def renormalize_boxes(tensors):
    tensors = dict(tensors)
    padded = tf.cast(tf.shape(tensors[InputFields.IMAGE])[1:3], tf.float32)
    ratio = tf.cast(tensors[InputFields.TRUE_IMAGE_SHAPE][:, :2],
                    tf.float32) / padded
    scale = tf.concat([ratio, ratio], axis=1)[:, tf.newaxis, :]
    tensors[InputFields.BOXES] = tensors[InputFields.BOXES] * scale
    return tensors

  return dataset.map(graph_functions.dataset_function(renormalize_boxes),
                     num_parallel_calls=tf.data.AUTOTUNE)


def _per_replica_batch_size(batch_size, input_context, batch_field):
  if batch_size < 1:
    raise ConfigError(f'{batch_field}: must be >= 1, got {batch_size}.')
  if input_context is None:
    return batch_size
  try:
    return input_context.get_per_replica_batch_size(batch_size)
  except ValueError:
    raise ConfigError(
        f'{batch_field}: the global batch size {batch_size} is not divisible '
        f'by the {input_context.num_replicas_in_sync} replicas.') from None


def build(input_reader_config,
          batch_size,
          image_resizer_config,
          max_number_of_boxes=100,
          data_augmentation_options=(),
          allowed_masked_class_ids=(),
          is_training=True,
          input_context=None,
          reader_name='input_reader',
          batch_field='batch_size',
          check_first_record=True,
          skip_bad_records=False,
          num_classes=None):
  """Builds a batched, prefetched dataset of InputFields dicts.

  Args:
    input_reader_config: an ``InputReader`` proto.
    batch_size: global batch size; with ``input_context`` each pipeline
      batches ``input_context.get_per_replica_batch_size(batch_size)``.
    image_resizer_config: the model's ``ImageResizer`` proto.
    max_number_of_boxes: instances per image after padding; extra instances
      are dropped (the first ones are kept; a warning is logged once).
    data_augmentation_options: ``PreprocessingStep`` protos (training only).
    allowed_masked_class_ids: class ids whose masks may train the mask head;
      empty means all (partial supervision).
    is_training: augment and drop the last partial batch.
    input_context: optional ``tf.distribute.InputContext``.
    reader_name: config path of the reader, for error messages.
    batch_field: config path of the batch size, for error messages.
    check_first_record: decode the first record eagerly so a record / config
      mismatch raises ``DataError`` before training starts.
    skip_bad_records: skip and count records that cannot be read or decoded
      (see the module doc) instead of failing.
    num_classes: the model's class count: a record with a larger class id,
      or an id the reader's label map lacks, fails naming the record
      (``TfExampleDecoder``).

  Returns:
    A ``tf.data.Dataset`` of dicts keyed by ``InputFields``: image [B, H, W, 3]
    float32, boxes [B, N, 4], classes / weights / mask weights / area /
    is_crowd [B, N], masks [B, N, H, W] (with ``load_instance_masks``), ...

  Raises:
    ConfigError: bad config values or input paths that match no file.
    DataError: the first record does not fit the config.
    LabelMapError: bad label map.
  """
  # One log line per field without effect here, a ConfigError per value
  # that cannot be honoured (faster_rcnn_options.FIELD_HANDLING).
  from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
  faster_rcnn_options.check_fields(input_reader_config, reader_name)
  filenames = _glob_input_files(input_reader_config, reader_name)
  if max_number_of_boxes < 1:
    raise ConfigError('max_number_of_boxes: must be >= 1, got '
                      f'{max_number_of_boxes}.')
  bad_ids = [i for i in allowed_masked_class_ids if i < 1]
  if bad_ids:
    raise ConfigError(f'allowed_masked_classes_ids: class ids start at 1, got '
                      f'{bad_ids}.')
  per_replica_batch = _per_replica_batch_size(batch_size, input_context,
                                              batch_field)
  try:
    decoder = decoder_lib.TfExampleDecoder.from_input_reader_config(
        input_reader_config, num_classes=num_classes)
  except LabelMapError as e:
    raise LabelMapError(f'{reader_name}.label_map_path: {e}') from None
  resizer = image_resizer.build(image_resizer_config)
  augment = (build_augmentation_fn(data_augmentation_options)
             if is_training else None)
  config = input_reader_config

  if skip_bad_records:
    # What each file should hold, so records TF cannot reach are counted.
    files = tf.data.Dataset.from_tensor_slices(
        (filenames, tf.constant([record_errors.count_frames(f)
                                 for f in filenames], tf.int64)))
    read_file = _read_file_frames
  else:
    files = tf.data.Dataset.from_tensor_slices(filenames)
    read_file = _read_file
  num_files = len(filenames)
  shard_records = False
  if input_context is not None and input_context.num_input_pipelines > 1:
    pipelines = input_context.num_input_pipelines
    if num_files >= pipelines:
      files = files.shard(pipelines, input_context.input_pipeline_id)
      num_files = len(filenames[input_context.input_pipeline_id::pipelines])
    else:
      shard_records = True
  if check_first_record and tf.executing_eagerly():
    _check_first_record(decoder, filenames, skip_bad_records)
  if config.shuffle:
    files = files.shuffle(max(config.filenames_shuffle_buffer_size, 1))
  files = files.repeat(config.num_epochs or None)
  cycle_length = max(1, min(config.num_readers, num_files))
  parallel = {}
  if cycle_length > 1:
    parallel = {'num_parallel_calls': tf.data.AUTOTUNE,
                'deterministic': not config.shuffle}
  records = files.interleave(
      graph_functions.dataset_function(read_file), cycle_length=cycle_length,
      block_length=max(config.read_block_length, 1), **parallel)
  if shard_records:
    records = records.shard(input_context.num_input_pipelines,
                            input_context.input_pipeline_id)
  if config.sample_1_of_n_examples > 1:
    records = records.shard(config.sample_1_of_n_examples, 0)
  if config.shuffle:
    records = records.shuffle(max(config.shuffle_buffer_size, 1))

  def process(source, serialized):
    tensors = decoder.decode(serialized, source)
    tensors[InputFields.IMAGE] = tf.cast(tensors[InputFields.IMAGE],
                                         tf.float32)
    if is_training:
      tensors = _drop_crowd_instances(tensors)
    tensors = _clip_boxes_and_drop_degenerate(tensors)
    if augment is not None:
      tensors = _clip_boxes(augment(tensors))
    tensors = image_resizer.resize_input_tensors(tensors, resizer)
    tensors = _allowed_mask_weights(tensors, allowed_masked_class_ids)
    tensors = _pad_instances(tensors, max_number_of_boxes)
    tensors[_SOURCE] = source
    return tensors

  if skip_bad_records:
    dataset = records.interleave(
        _process_or_skip(process), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not config.shuffle)
  else:
    dataset = records.map(graph_functions.dataset_function(process),
                          num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=not config.shuffle)
  dataset = _report_clipping_and_drops(dataset, max_number_of_boxes, _SOURCE)
  dataset = _batch(dataset, per_replica_batch, drop_remainder=is_training,
                   static_size=resizer.output_size)
  prefetch = config.num_prefetch_batches
  return dataset.prefetch(prefetch if prefetch > 0 else tf.data.AUTOTUNE)


def build_from_pipeline(configs, split='train', input_context=None,
                        eval_input_index=0, check_first_record=True,
                        skip_bad_records=False):
  """Builds the train or eval dataset from ``get_configs_from_pipeline_file``.

  Reads the image resizer of ``model.center_net`` / ``model.faster_rcnn``,
  ``train_config.batch_size`` / ``max_number_of_boxes`` /
  ``data_augmentation_options`` and, for training,
  ``model.center_net.deepmac_mask_estimation.allowed_masked_classes_ids`` /
  ``model.faster_rcnn.deepmarc_mask_head.allowed_masked_classes_ids``.
  Eval uses ``eval_config.batch_size``, no augmentation, all mask classes and
  keeps the last partial batch; it pads groundtruth to the eval reader's
  ``max_number_of_boxes`` (as the OD API; unset: train_config's value).

  Args:
    configs: dict with ``model``, ``train_config``, ``train_input_config``,
      ``eval_config`` and ``eval_input_configs``.
    split: 'train' or 'eval'.
    input_context: optional ``tf.distribute.InputContext``.
    eval_input_index: which ``eval_input_reader`` to read.
    check_first_record: see ``build``.
    skip_bad_records: see ``build`` (training input only).

  Returns:
    A ``tf.data.Dataset`` (see ``build``).
  """
  if split not in ('train', 'eval'):
    raise ConfigError(f"split must be 'train' or 'eval', got {split!r}.")
  arch, model = config_util.get_model_message(configs['model'])
  if not model.HasField('image_resizer'):
    raise ConfigError(f'model.{arch}.image_resizer: is not set.')
  image_resizer.build(model.image_resizer, f'model.{arch}.image_resizer')
  train_config = configs.get('train_config')
  max_boxes = train_config.max_number_of_boxes if train_config else 100
  if split == 'train':
    if train_config is None or configs.get('train_input_config') is None:
      raise ConfigError('train_config and train_input_reader must both be '
                        'set to build the training input.')
    spec = model_spec.from_configs(configs)
    # A mask model trained without masks would learn nothing (loss 0).
    validation.validate_input_reader(configs['train_input_config'],
                                     'train_input_reader',
                                     require_masks=spec.predicts_masks)
    allowed = spec.mask_weight_class_ids(is_training=True)
    if configs['train_input_config'].HasField('max_number_of_boxes'):
      hyperparams_builder.log_no_effect(
          'train_input_reader.max_number_of_boxes',
          'training pads groundtruth to train_config.max_number_of_boxes '
          f'({max_boxes}), as in the OD API')
    return build(
        configs['train_input_config'], train_config.batch_size,
        model.image_resizer, max_number_of_boxes=max_boxes,
        data_augmentation_options=train_config.data_augmentation_options,
        allowed_masked_class_ids=allowed, is_training=True,
        input_context=input_context, reader_name='train_input_reader',
        batch_field='train_config.batch_size',
        check_first_record=check_first_record,
        skip_bad_records=skip_bad_records, num_classes=spec.num_classes)
  eval_inputs = configs.get('eval_input_configs') or []
  if eval_input_index >= len(eval_inputs):
    raise ConfigError(f'eval_input_reader: the config has {len(eval_inputs)} '
                      f'eval input readers; index {eval_input_index} asked.')
  eval_config = configs.get('eval_config')
  reader = eval_inputs[eval_input_index]
  if reader.HasField('max_number_of_boxes'):
    # The OD API pads evaluation groundtruth to the eval reader's value.
    max_boxes = reader.max_number_of_boxes
    if max_boxes < 1:
      raise ConfigError(f'eval_input_reader[{eval_input_index}].'
                        f'max_number_of_boxes: must be >= 1, got {max_boxes}.')
  return build(
      reader,
      eval_config.batch_size if eval_config else 1, model.image_resizer,
      max_number_of_boxes=max_boxes, is_training=False,
      input_context=input_context,
      reader_name=f'eval_input_reader[{eval_input_index}]',
      batch_field='eval_config.batch_size',
      check_first_record=check_first_record,
      num_classes=model_spec.from_configs(configs).num_classes)
