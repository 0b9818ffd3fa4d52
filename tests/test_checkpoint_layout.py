"""OD API Deep-MAC checkpoints of every release restore (issue 13, part 1).

The OD API's later code builds the embedding heads' first conv 1x3 and keeps
a ``_self_supervised_rng`` object in the model; its 2021 release builds 3x3
and has no RNG. A checkpoint laid out as the OD API writes it (object names,
kernel shapes, the RNG object) must restore into the model built from the
same config with ``embedding_head_kernel: AUTO``, every object matched, and
give the same outputs.
"""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.builders import model_builder
from deepmac_tf.errors import ConfigError
import pipeline_fixtures

_KEY = ('model/_prediction_head_dict/{head}/0/layer_with_weights-0/kernel/'
        '.ATTRIBUTES/VARIABLE_VALUE')
_RNG_KEY = 'model/_self_supervised_rng/_state_var/.ATTRIBUTES/VARIABLE_VALUE'


def _model_config(kernel=None):
  configs = config_lib.get_configs_from_pipeline_file(
      pipeline_fixtures.TINY_CONFIG)
  model_config = configs['model']
  if kernel is not None:
    model_config.center_net.deepmac_mask_estimation.embedding_head_kernel = (
        kernel)
  return model_config


def _images():
  return tf.random.stateless_uniform([1, 64, 64, 3], (3, 4), maxval=255.0)


def _outputs(model):
  predictions = model(_images(), training=False)
  detections = model.postprocess(predictions)
  return {k: v.numpy() for k, v in detections.items()}


def _odapi_checkpoint(tmp_path, kernel, with_rng):
  """Writes a checkpoint with the OD API's layout; returns (path, outputs)."""
  model = model_builder.build(_model_config(kernel), is_training=False)
  outputs = _outputs(model)
  if with_rng:
    # The OD API's DeepMACMetaArch keeps this generator as an attribute.
    model._self_supervised_rng = (  # pylint: disable=protected-access
        tf.random.Generator.from_seed(7))
  step = tf.Variable(51, dtype=tf.int64)
  path = tf.train.Checkpoint(step=step, model=model).save(
      str(tmp_path / 'odapi' / 'ckpt'))
  return path, outputs


_Kernel = checkpoint_layout._Kernel  # pylint: disable=protected-access


@pytest.mark.parametrize('kernel,shape,with_rng', [
    (_Kernel.KERNEL_1X3, (1, 3), True),     # later OD API releases
    (_Kernel.KERNEL_3X3, (3, 3), False),    # the 2021 release
])
def test_odapi_checkpoint_restores_into_auto_model(tmp_path, kernel, shape,
                                                   with_rng):
  path, expected = _odapi_checkpoint(tmp_path, kernel, with_rng)
  saved = dict(tf.train.list_variables(path))
  for head in checkpoint_layout.EMBEDDING_HEADS:
    assert tuple(saved[_KEY.format(head=head)][:2]) == shape
  assert (_RNG_KEY in saved) == with_rng
  assert checkpoint_layout.checkpoint_embedding_kernel(path) == shape

  auto = _model_config()  # embedding_head_kernel: AUTO
  resolved = checkpoint_layout.model_config_for_checkpoint(auto, path)
  model = model_builder.build(resolved, is_training=False)
  assert model.deepmac_params.embedding_head_kernel_shape == shape
  _outputs(model)  # creates the variables
  status = tf.train.Checkpoint(model=model).restore(path)
  status.expect_partial()  # the step is a training-loop object
  status.assert_existing_objects_matched()
  assert checkpoint_layout.log_ignored_odapi_objects(path) == (
      [_RNG_KEY] if with_rng else [])
  actual = _outputs(model)
  for key, value in expected.items():
    np.testing.assert_array_equal(actual[key], value, err_msg=key)


def test_default_model_without_checkpoint_is_3x3():
  model = model_builder.build(_model_config(), is_training=False)
  assert model.deepmac_params.embedding_head_kernel_shape == (3, 3)
  assert checkpoint_layout.model_config_for_checkpoint(
      _model_config(), None).center_net.deepmac_mask_estimation \
      .embedding_head_kernel == _Kernel.AUTO


def test_explicit_kernel_contradicting_checkpoint_names_the_field(tmp_path):
  path, _ = _odapi_checkpoint(tmp_path, _Kernel.KERNEL_1X3, with_rng=False)
  with pytest.raises(ConfigError, match='embedding_head_kernel: KERNEL_3X3 '
                     'but checkpoint .* has 1x3'):
    checkpoint_layout.model_config_for_checkpoint(
        _model_config(_Kernel.KERNEL_3X3), path)
  same = _model_config(_Kernel.KERNEL_1X3)
  assert checkpoint_layout.model_config_for_checkpoint(same, path) is same


def test_checkpoint_without_embedding_heads_leaves_config(tmp_path):
  path = tf.train.Checkpoint(model=tf.train.Checkpoint(
      _feature_extractor=tf.train.Checkpoint(v=tf.Variable(1.0)))).save(
          str(tmp_path / 'backbone' / 'ckpt'))
  config = _model_config()
  assert checkpoint_layout.model_config_for_checkpoint(config, path) is config


def test_fine_tune_full_from_odapi_checkpoint(tmp_path):
  """fine_tune_checkpoint of the OD API's later layout: the run's model is
  built 1x3 and every variable restores; the RNG is not 'unused'."""
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import fine_tune  # pylint: disable=g-import-not-at-top
  path, expected = _odapi_checkpoint(tmp_path, _Kernel.KERNEL_1X3,
                                     with_rng=True)
  configs = config_lib.get_configs_from_pipeline_file(
      pipeline_fixtures.TINY_CONFIG)
  train_config = configs['train_config']
  train_config.fine_tune_checkpoint = str(tmp_path / 'odapi')  # a directory
  train_config.fine_tune_checkpoint_type = 'full'
  start = fine_tune.starting_checkpoint(str(tmp_path / 'run'), train_config)
  assert start == path
  configs = checkpoint_layout.configs_for_checkpoint(configs, start)
  model = model_builder.build(configs['model'], is_training=True)
  model_variables.build_model_variables(model, 64, 64)
  report = fine_tune.restore_fine_tune_checkpoint(model, train_config)
  assert not report.missing and not report.shape_mismatch
  assert not report.unused
  actual = _outputs(model)
  np.testing.assert_array_equal(actual['detection_masks'],
                                expected['detection_masks'])
