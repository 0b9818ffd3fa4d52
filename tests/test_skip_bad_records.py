"""--skip_bad_records: records that cannot be read or decoded are skipped,
named and counted (input pipeline, preflight, training loop, flag)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
import record_helpers
from deepmac_tf import config as config_lib
from deepmac_tf.builders import dataset_builder
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import DataError
from deepmac_tf.training import preflight
from deepmac_tf.training import train_loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_GOOD = [record_helpers.simple_example(seed=i, source_id=f'good{i}')
         for i in range(4)]
# PNG masks of the wrong size: the decoder's assertion fails on it.
_BAD_MASKS = record_helpers.simple_example(
    masks=np.ones([2, 16, 16], np.float32), source_id='bad')


def _corrupt_payload(path, index):
  """Flips a byte in the payload of record ``index`` (its CRC no longer
  matches: TF's reader stops there)."""
  data = bytearray(open(path, 'rb').read())
  position = 0
  for _ in range(index):
    length = int.from_bytes(data[position:position + 8], 'little')
    position += 12 + length + 4
  data[position + 12 + 5] ^= 0xFF
  open(path, 'wb').write(bytes(data))


def _bad_files(tmp_path):
  """mid: [good, bad masks, good]; crc: [good, corrupt, good] (records 1 and
  2 unreachable); cut: [good, good] with the last one truncated."""
  mid = record_helpers.write_tfrecord(tmp_path / 'a_mid.record',
                                      [_GOOD[0], _BAD_MASKS, _GOOD[1]])
  crc = record_helpers.write_tfrecord(tmp_path / 'b_crc.record',
                                      [_GOOD[2], _GOOD[0], _GOOD[3]])
  _corrupt_payload(crc, 1)
  cut = record_helpers.write_tfrecord(tmp_path / 'c_cut.record',
                                      [_GOOD[1], _GOOD[2]])
  data = open(cut, 'rb').read()
  open(cut, 'wb').write(data[:-20])
  return mid, crc, cut


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
  """One rendering of the tiny dataset and config for the module."""
  root = tmp_path_factory.mktemp('tiny')
  pipeline_fixtures.tiny_pipeline(root)
  return root


def _configs(root, files, batch_size=1):
  path = pipeline_fixtures.tiny_pipeline(root)
  configs = config_lib.get_configs_from_pipeline_file(path)
  reader = configs['train_input_config']
  reader.shuffle = False
  reader.num_readers = 1
  reader.num_epochs = 1
  reader.tf_record_input_reader.input_path[:] = list(files)
  configs['train_config'].batch_size = batch_size
  return configs


def test_pipeline_skips_names_and_counts_bad_records(tmp_path, tiny_root,
                                                     capfd):
  mid, crc, cut = _bad_files(tmp_path)
  configs = _configs(tiny_root, [mid, crc, cut])
  dataset = dataset_builder.build_from_pipeline(configs, 'train',
                                                skip_bad_records=True)
  ids, counts = [], []
  for batch in dataset:
    ids.append(batch[InputFields.SOURCE_ID].numpy()[0].decode())
    counts.append(int(batch[dataset_builder.SKIPPED_RECORDS].numpy()[0]))
  # 8 records announced by the framing, 4 usable, in order.
  assert ids == ['good0', 'good1', 'good2', 'good1']
  assert counts == [0, 1, 1, 3]
  # The training loop takes the count out of the batch before the step.
  batch = dict(batch)
  assert train_loop._pop_skipped_count(tf.distribute.get_strategy(),
                                       batch) == 3
  assert dataset_builder.SKIPPED_RECORDS not in batch
  err = capfd.readouterr().err
  skipped = [line for line in err.splitlines()
             if line.startswith('WARNING: skipped')]
  assert skipped == [
      f'WARNING: skipped record 1 of file {mid}: it cannot be decoded '
      '(scripts/inspect_dataset.py names the problem); 1 record(s) skipped '
      'so far (--skip_bad_records).',
      f'WARNING: skipped record 1 of file {crc}: it cannot be read (the '
      'TFRecord file is corrupt or truncated at this record or before it; TF '
      'reads no further in that file: 2 record(s) from here on skipped); 3 '
      'record(s) skipped so far (--skip_bad_records).',
      f'WARNING: skipped record 1 of file {cut}: it cannot be read (the '
      'TFRecord file is corrupt or truncated at this record or before it; TF '
      'reads no further in that file: 1 record(s) from here on skipped); 4 '
      'record(s) skipped so far (--skip_bad_records).']


def test_too_many_bad_records_in_a_row_stop_the_input(tmp_path, tiny_root,
                                                      monkeypatch):
  bad = record_helpers.write_tfrecord(
      tmp_path / 'bad.record', [_GOOD[0]] + [_BAD_MASKS] * 3 + [_GOOD[1]])
  monkeypatch.setattr(dataset_builder, 'MAX_CONSECUTIVE_BAD', 3)
  configs = _configs(tiny_root, [bad])
  dataset = dataset_builder.build_from_pipeline(configs, 'train',
                                                skip_bad_records=True)
  with pytest.raises(Exception, match=f'record 3 of file {bad}: 3 records in '
                     'a row could not be used'):
    list(dataset)


def test_preflight_warns_about_skippable_records_unless_all_are_bad(
    tmp_path, tiny_root):
  mid = record_helpers.write_tfrecord(tmp_path / 'mid.record',
                                      [_GOOD[0], _BAD_MASKS, _GOOD[1]])
  configs = _configs(tiny_root, [mid])
  with pytest.raises(DataError, match='record 1'):
    preflight.check_training_inputs(configs, str(tmp_path / 'm1'))
  preflight.check_training_inputs(configs, str(tmp_path / 'm2'),
                                  skip_bad_records=True)
  all_bad = record_helpers.write_tfrecord(tmp_path / 'all_bad.record',
                                          [_BAD_MASKS] * 2)
  configs = _configs(tiny_root, [all_bad])
  with pytest.raises(DataError, match='mask 0 is 16x16'):
    preflight.check_training_inputs(configs, str(tmp_path / 'm3'),
                                    skip_bad_records=True)


def test_model_main_refuses_the_flag_in_evaluation_mode(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'scripts', 'model_main_tf2.py'),
       '--pipeline_config_path=x.config', f'--model_dir={tmp_path}',
       f'--checkpoint_dir={tmp_path}', '--skip_bad_records'],
      capture_output=True, text=True, timeout=60, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 1, result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      'ERROR: --skip_bad_records: applies to training; evaluation '
      '(--checkpoint_dir) reads every eval record.')
