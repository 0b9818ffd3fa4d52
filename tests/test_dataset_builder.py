"""Tests for deepmac_tf.builders.dataset_builder."""

import os
import subprocess
import sys
import textwrap

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.builders import dataset_builder
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.errors import LabelMapError
from deepmac_tf.protos import image_resizer_pb2
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import pipeline_pb2
import record_helpers as rh

RESIZER = ('keep_aspect_ratio_resizer { min_dimension: 32 max_dimension: 32 '
           'pad_to_max_dimension: true }')
THREE_BOXES = ((2, 2, 10, 10), (12, 4, 30, 20), (20, 30, 31, 47))


def _write_records(tmp_path, name='train.rec', count=5, mask_type='png',
                   **kwargs):
  examples = [rh.simple_example(pixel_boxes=THREE_BOXES, classes=(1, 2, 3),
                                seed=i, source_id=f'{name}-{i}',
                                mask_type=mask_type, **kwargs)
              for i in range(count)]
  return rh.write_tfrecord(tmp_path / name, examples)


def _reader(paths, **fields):
  reader = input_reader_pb2.InputReader(
      load_instance_masks=True, mask_type=input_reader_pb2.PNG_MASKS,
      shuffle=False, num_readers=1)
  reader.tf_record_input_reader.input_path.extend(paths)
  for name, value in fields.items():
    setattr(reader, name, value)
  return reader


def _resizer(text=RESIZER):
  return text_format.Parse(text, image_resizer_pb2.ImageResizer())


def _batches(dataset, count=None):
  dataset = dataset if count is None else dataset.take(count)
  return [{k: v.numpy() for k, v in b.items()} for b in dataset]


def test_train_batches_padding_and_partial_supervision(tmp_path):
  path = _write_records(tmp_path, mask_weights=[1, 1, 0])
  dataset = dataset_builder.build(
      _reader([path]), batch_size=2, image_resizer_config=_resizer(),
      max_number_of_boxes=4, allowed_masked_class_ids=[1, 3])
  spec = dataset.element_spec
  assert spec[InputFields.IMAGE].shape == (2, 32, 32, 3)
  assert spec[InputFields.INSTANCE_MASKS].shape == (2, 4, 32, 32)
  assert spec[InputFields.BOXES].shape == (2, 4, 4)
  assert spec[InputFields.TRUE_IMAGE_SHAPE].shape == (2, 3)
  batch = _batches(dataset, 1)[0]
  np.testing.assert_array_equal(batch[InputFields.NUM_BOXES], [3, 3])
  np.testing.assert_array_equal(batch[InputFields.CLASSES][0], [1, 2, 3, 0])
  np.testing.assert_array_equal(batch[InputFields.WEIGHTS][0], [1, 1, 1, 0])
  # Class 2 is not allowed; the third instance has mask weight 0 in the
  # record; the fourth row is padding.
  np.testing.assert_array_equal(batch[InputFields.MASK_WEIGHTS][0],
                                [1, 0, 0, 0])
  assert not batch[InputFields.INSTANCE_MASKS][0, 3].any()
  assert not batch[InputFields.BOXES][0, 3].any()
  np.testing.assert_array_equal(batch[InputFields.TRUE_IMAGE_SHAPE][0],
                                [21, 32, 3])
  np.testing.assert_array_equal(batch[InputFields.ORIGINAL_IMAGE_SHAPE][0],
                                [32, 48])
  # Boxes are renormalized to the padded 32 x 32 image (content 21 x 32).
  np.testing.assert_allclose(
      batch[InputFields.BOXES][0, 0],
      [2 / 32 * 21 / 32, 2 / 48, 10 / 32 * 21 / 32, 10 / 48], atol=1e-6)
  assert batch[InputFields.SOURCE_ID][0] == b'train.rec-0'


def test_numerical_masks_and_clipping_to_max_boxes(tmp_path):
  path = _write_records(tmp_path, mask_type='numerical', count=2)
  reader = _reader([path], num_epochs=1)
  reader.mask_type = input_reader_pb2.NUMERICAL_MASKS
  dataset = dataset_builder.build(reader, 2, _resizer(), max_number_of_boxes=2,
                                  is_training=False)
  batches = _batches(dataset)
  assert len(batches) == 1
  batch = batches[0]
  np.testing.assert_array_equal(batch[InputFields.NUM_BOXES], [2, 2])
  np.testing.assert_array_equal(batch[InputFields.CLASSES], [[1, 2], [1, 2]])
  # Without allowed ids every instance with a mask trains the mask head.
  np.testing.assert_array_equal(batch[InputFields.MASK_WEIGHTS], [[1, 1]] * 2)
  masks = batch[InputFields.INSTANCE_MASKS]
  assert masks.shape == (2, 2, 32, 32) and masks[:, :2].any(axis=(2, 3)).all()


def test_eval_keeps_order_and_last_partial_batch(tmp_path):
  _write_records(tmp_path, 'a.rec', count=3)
  _write_records(tmp_path, 'b.rec', count=2)
  reader = _reader([str(tmp_path / '*.rec')], num_epochs=1)
  dataset = dataset_builder.build(reader, 2, _resizer(), is_training=False)
  assert dataset.element_spec[InputFields.IMAGE].shape[0] is None
  ids = [list(b[InputFields.SOURCE_ID]) for b in _batches(dataset)]
  assert ids == [[b'a.rec-0', b'a.rec-1'], [b'a.rec-2', b'b.rec-0'],
                 [b'b.rec-1']]
  reader.sample_1_of_n_examples = 2
  dataset = dataset_builder.build(reader, 1, _resizer(), is_training=False)
  ids = [b[InputFields.SOURCE_ID][0] for b in _batches(dataset)]
  assert ids == [b'a.rec-0', b'a.rec-2', b'b.rec-1']


def test_training_augments_and_repeats(tmp_path):
  path = _write_records(tmp_path, count=2)
  steps = text_format.Parse(
      'data_augmentation_options { random_horizontal_flip {} } '
      'data_augmentation_options { random_square_crop_by_scale { '
      'max_border: 8 } }', pipeline_pb2.TrainEvalPipelineConfig().train_config)
  dataset = dataset_builder.build(
      _reader([path], shuffle=True, shuffle_buffer_size=4), 3, _resizer(),
      max_number_of_boxes=3,
      data_augmentation_options=steps.data_augmentation_options)
  for batch in _batches(dataset, 2):  # 2 records x forever, batches of 3.
    assert batch[InputFields.IMAGE].shape == (3, 32, 32, 3)
    for masks, boxes, count in zip(batch[InputFields.INSTANCE_MASKS],
                                   batch[InputFields.BOXES],
                                   batch[InputFields.NUM_BOXES]):
      for mask, box in zip(masks[:count], boxes[:count]):
        ys, xs = np.nonzero(mask)
        tight = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
        np.testing.assert_allclose(tight, box * 32, atol=1.0)


def test_identity_resizer_pads_batches_and_rescales_boxes(tmp_path):
  small = rh.simple_example(height=16, width=20, pixel_boxes=((0, 0, 8, 10),),
                            classes=(1,), source_id='small')
  big = rh.simple_example(height=32, width=40, pixel_boxes=((0, 0, 8, 10),),
                          classes=(1,), source_id='big')
  path = rh.write_tfrecord(tmp_path / 'mixed.rec', [small, big])
  dataset = dataset_builder.build(_reader([path], num_epochs=1), 2,
                                  _resizer('identity_resizer {}'),
                                  max_number_of_boxes=1, is_training=False)
  batch = _batches(dataset)[0]
  assert batch[InputFields.IMAGE].shape == (2, 32, 40, 3)
  np.testing.assert_allclose(batch[InputFields.BOXES][:, 0],
                             [[0, 0, 0.25, 0.25], [0, 0, 0.25, 0.25]])
  np.testing.assert_array_equal(batch[InputFields.TRUE_IMAGE_SHAPE],
                                [[16, 20, 3], [32, 40, 3]])


def test_input_context_shards_and_splits_the_batch(tmp_path):
  paths = [_write_records(tmp_path, f'{i}.rec', count=2) for i in range(2)]
  reader = _reader(paths, num_epochs=1)
  seen = []
  for pipeline_id in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=pipeline_id,
                                         num_replicas_in_sync=2)
    dataset = dataset_builder.build(reader, 4, _resizer(),
                                    input_context=context)
    batches = _batches(dataset)
    assert len(batches) == 1 and batches[0][InputFields.IMAGE].shape[0] == 2
    seen += list(batches[0][InputFields.SOURCE_ID])
  assert sorted(seen) == [b'0.rec-0', b'0.rec-1', b'1.rec-0', b'1.rec-1']
  context = tf.distribute.InputContext(num_replicas_in_sync=3)
  with pytest.raises(ConfigError, match='batch_size.*not divisible'):
    dataset_builder.build(reader, 4, _resizer(), input_context=context)


def test_no_matching_files_fails_before_reading(tmp_path):
  path = _write_records(tmp_path)
  reader = _reader([path, str(tmp_path / 'missing-*.rec')])
  with pytest.raises(ConfigError) as info:
    dataset_builder.build(reader, 1, _resizer(),
                          reader_name='train_input_reader')
  message = str(info.value)
  assert 'train_input_reader.tf_record_input_reader.input_path' in message
  assert 'missing-*.rec' in message and 'matches no files' in message


def test_placeholders_and_bad_label_maps_name_the_field(tmp_path):
  path = _write_records(tmp_path)
  reader = _reader(['PATH_TO_BE_CONFIGURED/train.record-*'])
  with pytest.raises(ConfigError, match=r'^train_input_reader\.tf_record_'
                     r'input_reader\.input_path: .*PATH_TO_BE_CONFIGURED'):
    dataset_builder.build(reader, 1, _resizer(),
                          reader_name='train_input_reader')
  reader = _reader([path], label_map_path=str(tmp_path / 'nope.pbtxt'))
  with pytest.raises(LabelMapError, match=r'^train_input_reader\.label_map_'
                     r'path: Cannot read label map .*nope\.pbtxt'):
    dataset_builder.build(reader, 1, _resizer(),
                          reader_name='train_input_reader')


def test_record_errors_are_clear(tmp_path):
  no_masks = _write_records(tmp_path, 'no_masks.rec', masks=None)
  with pytest.raises(DataError, match=(
      f'record 0 of file {no_masks}: has no image/object/mask but '
      'load_instance_masks is set')):
    dataset_builder.build(_reader([no_masks]), 1, _resizer())
  numerical = _write_records(tmp_path, 'numerical.rec', mask_type='numerical')
  with pytest.raises(DataError, match='set mask_type: NUMERICAL_MASKS'):
    dataset_builder.build(_reader([numerical]), 1, _resizer())
  # A bad record further in the file fails in-graph with the same message.
  good = rh.simple_example(source_id='good')
  mixed = rh.write_tfrecord(tmp_path / 'mixed.rec',
                            [good, rh.simple_example(masks=None)])
  dataset = dataset_builder.build(_reader([mixed], num_epochs=1), 1,
                                  _resizer(), is_training=False)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f'record 1 of file {mixed}: has no image/object'):
    _batches(dataset)


def test_build_from_pipeline(tmp_path):
  path = _write_records(tmp_path, count=4)
  text = f"""
    model {{ center_net {{ num_classes: 3 image_resizer {{ {RESIZER} }}
      deepmac_mask_estimation {{ allowed_masked_classes_ids: [2] }} }} }}
    train_config {{ batch_size: 2 max_number_of_boxes: 5
      data_augmentation_options {{ random_adjust_brightness {{}} }} }}
    train_input_reader {{ tf_record_input_reader {{ input_path: "{path}" }}
      load_instance_masks: true mask_type: PNG_MASKS }}
    eval_config {{ batch_size: 3 }}
    eval_input_reader {{ tf_record_input_reader {{ input_path: "{path}" }}
      load_instance_masks: true mask_type: PNG_MASKS shuffle: false
      num_epochs: 1 }}
  """
  pipeline = text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())
  configs = {'model': pipeline.model, 'train_config': pipeline.train_config,
             'train_input_config': pipeline.train_input_reader,
             'eval_config': pipeline.eval_config,
             'eval_input_configs': list(pipeline.eval_input_reader)}
  train = _batches(dataset_builder.build_from_pipeline(configs, 'train'), 1)[0]
  assert train[InputFields.BOXES].shape == (2, 5, 4)
  np.testing.assert_array_equal(train[InputFields.MASK_WEIGHTS][:, :3],
                                [[0, 1, 0]] * 2)
  evals = _batches(dataset_builder.build_from_pipeline(configs, 'eval'))
  assert [b[InputFields.IMAGE].shape[0] for b in evals] == [3, 1]
  # Eval is unaffected by allowed_masked_classes_ids.
  np.testing.assert_array_equal(evals[0][InputFields.MASK_WEIGHTS][:, :3],
                                [[1, 1, 1]] * 3)
  configs['model'].center_net.ClearField('image_resizer')
  with pytest.raises(ConfigError, match='model.center_net.image_resizer'):
    dataset_builder.build_from_pipeline(configs, 'train')


def test_reader_max_number_of_boxes_pads_eval_only(tmp_path, caplog):
  """The OD API pads evaluation groundtruth to eval_input_reader's
  max_number_of_boxes and training to train_config's (the train reader's
  is logged as having no effect)."""
  path = _write_records(tmp_path, count=1)
  reader = f'''tf_record_input_reader {{ input_path: "{path}" }}
      shuffle: false num_readers: 1 max_number_of_boxes: 4'''
  pipeline = text_format.Parse(f"""
    model {{ center_net {{ num_classes: 3 image_resizer {{ {RESIZER} }} }} }}
    train_config {{ batch_size: 1 max_number_of_boxes: 5 }}
    train_input_reader {{ {reader} }}
    eval_input_reader {{ {reader} num_epochs: 1 }}
  """, pipeline_pb2.TrainEvalPipelineConfig())
  configs = {'model': pipeline.model, 'train_config': pipeline.train_config,
             'train_input_config': pipeline.train_input_reader,
             'eval_input_configs': list(pipeline.eval_input_reader)}
  with caplog.at_level('INFO', logger='absl'):
    train = _batches(dataset_builder.build_from_pipeline(
        configs, 'train', check_first_record=False), 1)[0]
  assert train[InputFields.BOXES].shape == (1, 5, 4)
  assert any(r.getMessage().startswith(
      'train_input_reader.max_number_of_boxes: accepted, no effect here')
             for r in caplog.records)
  evals = _batches(dataset_builder.build_from_pipeline(
      configs, 'eval', check_first_record=False))
  assert evals[0][InputFields.BOXES].shape == (1, 4, 4)
  configs['eval_input_configs'][0].max_number_of_boxes = 0
  with pytest.raises(ConfigError, match=(
      r'^eval_input_reader\[0\]\.max_number_of_boxes: must be >= 1')):
    dataset_builder.build_from_pipeline(configs, 'eval')


_DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from google.protobuf import text_format
    from deepmac_tf.builders import dataset_builder
    from deepmac_tf.protos import image_resizer_pb2, input_reader_pb2
    path, resizer_text = sys.argv[1], sys.argv[2]
    reader = text_format.Parse(
        f'tf_record_input_reader {{ input_path: "{path}" }} '
        'load_instance_masks: true mask_type: PNG_MASKS num_readers: 1',
        input_reader_pb2.InputReader())
    resizer = text_format.Parse(resizer_text, image_resizer_pb2.ImageResizer())
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    assert strategy.num_replicas_in_sync == 2
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: dataset_builder.build(reader, 4, resizer,
                                          max_number_of_boxes=3,
                                          input_context=ctx))
    batch = next(iter(dataset))
    images = strategy.experimental_local_results(
        batch['image'])
    masks = strategy.experimental_local_results(
        batch['groundtruth_instance_masks'])
    print('SHAPES', [tuple(x.shape) for x in images],
          [tuple(x.shape) for x in masks])
""")


def test_mirrored_strategy_splits_the_global_batch(tmp_path):
  path = _write_records(tmp_path, count=4)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] +
      os.environ.get('PYTHONPATH', '').split(os.pathsep)),
             TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, '-c', _DISTRIBUTED_SCRIPT, path, RESIZER], env=env,
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert ('SHAPES [(2, 32, 32, 3), (2, 32, 32, 3)] '
          '[(2, 3, 32, 32), (2, 3, 32, 32)]') in result.stdout


def test_training_drops_crowd_instances_eval_keeps_them(tmp_path):
  examples = [rh.simple_example(pixel_boxes=THREE_BOXES, classes=(1, 2, 3),
                                seed=0, source_id='crowd', is_crowd=[0, 1, 0])]
  rh.write_tfrecord(tmp_path / 'c.rec', examples)
  reader = _reader([str(tmp_path / 'c.rec')], num_epochs=1)
  train = _batches(dataset_builder.build(reader, 1, _resizer(),
                                         max_number_of_boxes=4,
                                         is_training=True))[0]
  assert train[InputFields.NUM_BOXES][0] == 2
  assert list(train[InputFields.CLASSES][0]) == [1, 3, 0, 0]
  assert not train[InputFields.IS_CROWD].any()
  evaluation = _batches(dataset_builder.build(reader, 1, _resizer(),
                                              max_number_of_boxes=4,
                                              is_training=False))[0]
  assert evaluation[InputFields.NUM_BOXES][0] == 3
  assert list(evaluation[InputFields.IS_CROWD][0]) == [False, True, False,
                                                       False]
