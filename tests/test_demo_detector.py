"""The demo's shipped detector and the configs that must agree with it."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs')
DETECTOR_CONFIG = os.path.join(CONFIGS,
                               'center_net_synthetic_demo_detector.config')
DEMO_CONFIG = os.path.join(
    CONFIGS, 'center_net_deepmac_synthetic_demo_from_detector.config')
SCRATCH_CONFIG = os.path.join(CONFIGS,
                              'center_net_deepmac_synthetic_demo.config')


def _pipeline(path):
  with open(path, encoding='utf-8') as f:
    text = f.read().replace(demo.PLACEHOLDER, '/x/ckpt-0')
  return config_lib.get_pipeline_config_from_text(text, source=path)


def test_the_three_demo_configs_share_one_detector():
  # The demo restores the detector by variable name and shape: its
  # CenterNet must be the demo model without the mask head.
  detector = _pipeline(DETECTOR_CONFIG).model.center_net
  assert not detector.HasField('deepmac_mask_estimation')
  for path in (DEMO_CONFIG, SCRATCH_CONFIG):
    model = type(detector)()
    model.CopyFrom(_pipeline(path).model.center_net)
    assert model.HasField('deepmac_mask_estimation'), path
    model.ClearField('deepmac_mask_estimation')
    assert model == detector, path
  demo_train = _pipeline(DEMO_CONFIG).train_config
  assert demo_train.fine_tune_checkpoint == '/x/ckpt-0'
  assert demo_train.fine_tune_checkpoint_type == 'full'


def test_fill_template(tmp_path):
  text = f'fine_tune_checkpoint: "{demo.PLACEHOLDER}"'
  prefix = str(tmp_path / 'ckpt-0')
  with pytest.raises(ConfigError, match='is not a checkpoint'):
    demo.fill_template(text, prefix)
  with pytest.raises(ConfigError, match='none is given'):
    demo.fill_template(text, '')
  (tmp_path / 'ckpt-0.index').write_bytes(b'')
  assert demo.fill_template(text, prefix) == (
      f'fine_tune_checkpoint: "{prefix}"')
  # A template without the placeholder needs no detector.
  assert demo.fill_template('model {}', '') == 'model {}'


def test_ensure_dataset_renders_once(tmp_path, capsys):
  data_dir = str(tmp_path / 'data')
  assert demo.ensure_dataset(data_dir, 2, 1, 0)
  assert demo.ensure_dataset(data_dir, 2, 1, 0) is False
  assert 'reusing' in capsys.readouterr().out
  with open(os.path.join(data_dir, demo.DATASET_KEY_FILE)) as f:
    assert json.load(f) == {'num_train_images': 2, 'num_val_images': 1,
                            'seed': 0}


def test_write_model_checkpoint_keeps_the_model_only(tmp_path):
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import checkpoints  # pylint: disable=g-import-not-at-top
  model_config = _pipeline(DETECTOR_CONFIG).model
  model = model_builder.build(model_config, is_training=True)
  model_variables.build_model_variables(model, 64, 64)
  optimizer = tf_keras_adam()
  optimizer.build(model.trainable_variables)
  training, _ = checkpoints.make_training_checkpoint(model, optimizer)
  saved = training.save(str(tmp_path / 'train' / 'ckpt'))
  prefix = demo.write_model_checkpoint(model_config, saved,
                                       str(tmp_path / 'out'), {'seed': 0})
  assert prefix == str(tmp_path / 'out' / 'ckpt-0')
  keys = dict(tf.train.list_variables(prefix))
  assert not any(k.startswith(('optimizer', 'step')) for k in keys)
  reader = tf.train.load_checkpoint(prefix)
  kernel = model.trainable_variables[0]
  matches = [k for k in keys if k.startswith('model/') and
             list(keys[k]) == kernel.shape.as_list() and np.array_equal(
                 reader.get_tensor(k), kernel.numpy())]
  assert matches
  assert demo.read_provenance(str(tmp_path / 'out')) == {'seed': 0}


def tf_keras_adam():
  import tf_keras  # pylint: disable=g-import-not-at-top
  return tf_keras.optimizers.Adam(1e-3)


def test_shipped_detector_fills_every_detector_variable_of_the_demo():
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import fine_tune  # pylint: disable=g-import-not-at-top
  pipeline = _pipeline(DEMO_CONFIG)
  pipeline.train_config.fine_tune_checkpoint = demo.shipped_checkpoint()
  model = model_builder.build(pipeline.model, is_training=True)
  model_variables.build_model_variables(model, 64, 64)
  report = fine_tune.restore_fine_tune_checkpoint(model,
                                                  pipeline.train_config)
  saved = [k for k, _ in tf.train.list_variables(demo.shipped_checkpoint())
           if k.endswith(fine_tune.VARIABLE_SUFFIX)]
  assert not report.shape_mismatch and not report.unused
  assert sorted(report.restored) == sorted(saved)
  # What the detector lacks is the mask branch, which starts fresh.
  assert report.missing and all('_mask_net' in k or 'EMBEDDING' in k
                                for k in report.missing), report.missing
  provenance = demo.read_provenance()
  assert provenance['train_steps'] > 0
  assert provenance['dataset']['trained_on'] == 'train split'


def test_the_demo_val_split_is_the_one_the_detector_was_measured_on(tmp_path):
  # A change to the default synthetic data changes the demo's val split:
  # retrain the shipped detector (scripts/train_demo_detector.py) with it.
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  dataset = demo.read_provenance()['dataset']
  synthetic.create_dataset(str(tmp_path), 0, dataset['num_val_images'],
                           seed=dataset['seed'], write_records=False,
                           show_progress=False)
  assert demo.val_split_fingerprint(str(tmp_path)) == dataset[
      'val_split_sha256']


def test_train_demo_detector_script_writes_a_checkpoint_like_the_shipped_one(
    tmp_path):
  """The script end to end at toy size: dataset, training with box AP
  evaluations, then the model-only checkpoint and its provenance."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  export_dir = tmp_path / 'export'
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'scripts', 'train_demo_detector.py'),
       f'--work_dir={tmp_path / "work"}', f'--export_dir={export_dir}',
       '--num_train_images=8', '--num_val_images=4', '--num_train_steps=2',
       '--eval_every_n_steps=2', '--checkpoint_every_n=2',
       '--log_every_n_steps=1', '--config_override=train_config { '
       'batch_size: 2 }'],
      capture_output=True, text=True, timeout=600, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr[-3000:]
  assert '[4/4] Writing the detector' in result.stdout
  with open(export_dir / demo.PROVENANCE_NAME, encoding='utf-8') as f:
    provenance = json.load(f)
  assert provenance['train_steps'] == 2
  assert list(provenance['val_box_ap_by_step']) == ['2']
  assert provenance['dataset']['num_train_images'] == 8
  assert 'DetectionBoxes_Precision/mAP' in provenance['val_metrics']
  # The same variables, shapes included, as the checkpoint the demo ships.
  written = tf.train.list_variables(str(export_dir / demo.CHECKPOINT_NAME))
  shipped = tf.train.list_variables(demo.shipped_checkpoint())
  assert sorted(written) == sorted(shipped)
