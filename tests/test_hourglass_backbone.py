"""Tests of the CenterNet hourglass feature extractors and their registry."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf.backbones import base
from deepmac_tf.backbones import hourglass
from deepmac_tf.backbones import registry
from official.projects.deepmac_maskrcnn.modeling.heads import (
    hourglass_network as reference)

HOURGLASS_TYPES = ('hourglass_10', 'hourglass_104', 'hourglass_20',
                   'hourglass_32', 'hourglass_52')


def test_registry_names():
  assert set(HOURGLASS_TYPES) <= set(registry.feature_extractor_names())


def test_unknown_type_raises_argument_error():
  with pytest.raises(errors.ArgumentError) as info:
    registry.build_feature_extractor('hourglass_105')
  message = str(info.value)
  assert info.value.argument == 'type' and 'model.' not in message
  assert 'hourglass_105' in message
  for name in HOURGLASS_TYPES:
    assert name in message


def test_bad_options_raise_argument_error():
  with pytest.raises(errors.ArgumentError, match='channel_means'):
    registry.build_feature_extractor('hourglass_10', channel_means=(1, 2))
  with pytest.raises(errors.ArgumentError, match='channel_stds'):
    registry.build_feature_extractor('hourglass_10', channel_stds=(1, 0, 1))
  with pytest.raises(errors.ArgumentError, match='use_depthwise'):
    registry.build_feature_extractor('hourglass_10', use_depthwise=True)


def test_register_feature_extractor_decorator():
  calls = []

  @registry.register_feature_extractor('test_only_extractor')
  def factory(channel_means, channel_stds, bgr_ordering, **kwargs):
    calls.append((channel_means, channel_stds, bgr_ordering, kwargs))
    return 'built'

  try:
    assert 'test_only_extractor' in registry.feature_extractor_names()
    built = registry.build_feature_extractor(
        'test_only_extractor', [1, 2, 3], bgr_ordering=True, depth=2)
    assert built == 'built'
    assert calls == [((1, 2, 3), (), True, {'depth': 2})]
    with pytest.raises(ValueError, match='already registered'):
      registry.register_feature_extractor('test_only_extractor')(lambda: None)
  finally:
    registry.FEATURE_EXTRACTORS.unregister('test_only_extractor')


@pytest.mark.parametrize('bgr', [False, True])
def test_preprocess(bgr):
  extractor = registry.build_feature_extractor(
      'hourglass_10', channel_means=(10., 20., 30.),
      channel_stds=(2., 4., 5.), bgr_ordering=bgr)
  images = tf.constant([[[[100., 150., 200.]]]])
  expected = [(200 - 10) / 2, (150 - 20) / 4, (100 - 30) / 5] if bgr else [
      (100 - 10) / 2, (150 - 20) / 4, (200 - 30) / 5]
  np.testing.assert_allclose(
      extractor.preprocess(images).numpy().ravel(), expected, rtol=1e-6)
  identity = registry.build_feature_extractor('hourglass_10')
  assert identity.channel_means == (0., 0., 0.)
  assert identity.channel_stds == (1., 1., 1.)
  np.testing.assert_allclose(
      identity.preprocess(tf.cast(images, tf.uint8)).numpy(), images.numpy())


@pytest.mark.parametrize('type_name,size,channels', [
    ('hourglass_10', 32, 64), ('hourglass_20', 32, 96),
    ('hourglass_32', 32, 96), ('hourglass_52', 128, 128)])
def test_small_extractors(type_name, size, channels):
  depth, nc = hourglass.SMALL_HOURGLASS_CHANNELS[type_name]
  extractor = registry.build_feature_extractor(type_name)
  assert isinstance(extractor, base.CenterNetFeatureExtractor)
  images = tf.random.uniform([1, size, size, 3], maxval=255.)
  features = extractor(extractor.preprocess(images), training=False)
  assert isinstance(features, list) and len(features) == 1
  assert features[0].shape == (1, size // 4, size // 4, channels)
  assert extractor.num_feature_outputs == 1 and extractor.out_stride == 4
  ref = getattr(reference, f'hourglass_{depth}')(nc)
  ref(images)
  assert extractor.count_params() == ref.count_params()


def test_gradients_and_checkpoint_path(tmp_path):
  extractor = registry.build_feature_extractor('hourglass_10')
  images = tf.random.uniform([2, 16, 16, 3], maxval=255.)
  with tf.GradientTape() as tape:
    features = extractor(extractor.preprocess(images), training=True)
    loss = tf.reduce_sum(tf.square(features[0]))
  grads = tape.gradient(loss, extractor.trainable_variables)
  assert all(g is not None for g in grads)
  # The OD API's path: model/_feature_extractor/_network/...
  ckpt = tf.train.Checkpoint(
      model=tf.train.Checkpoint(_feature_extractor=extractor))
  keys = {k for k, _ in tf.train.list_variables(
      ckpt.write(str(tmp_path / 'ckpt')))}
  assert ('model/_feature_extractor/_network/downsample_input/conv_block/'
          'conv/kernel/.ATTRIBUTES/VARIABLE_VALUE') in keys


def test_serialization_and_jit():
  extractor = registry.build_feature_extractor(
      'hourglass_10', channel_means=(1., 2., 3.), bgr_ordering=True)
  rebuilt = tf_keras.layers.deserialize(tf_keras.layers.serialize(extractor))
  assert rebuilt.channel_means == (1., 2., 3.) and rebuilt.bgr_ordering
  images = tf.random.uniform([1, 16, 16, 3], maxval=255.)
  rebuilt(images)
  extractor(images)
  assert rebuilt.count_params() == extractor.count_params()
  compiled = tf.function(
      lambda x: extractor(extractor.preprocess(x), training=False),
      jit_compile=True)
  np.testing.assert_allclose(
      compiled(images)[0].numpy(),
      extractor(extractor.preprocess(images), training=False)[0].numpy(),
      atol=1e-4, rtol=1e-4)


def test_mixed_bfloat16():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    extractor = registry.build_feature_extractor('hourglass_10')
    images = tf.random.uniform([1, 16, 16, 3], maxval=255.)
    features = extractor(extractor.preprocess(images), training=True)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert features[0].dtype == tf.bfloat16
  assert np.isfinite(tf.cast(features[0], tf.float32).numpy()).all()
  assert all(v.dtype == tf.float32 for v in extractor.variables)


def test_hourglass_104_matches_reference_checkpoint(tmp_path):
  """Hourglass-104 (once, at 128x128, the smallest size its 5 levels allow)."""
  try:
    _check_hourglass_104(str(tmp_path / 'ckpt'))
  finally:  # The checkpoint is ~750 MB: do not leave it in pytest's tmp dirs.
    for path in tmp_path.iterdir():
      path.unlink()


def _check_hourglass_104(prefix):
  tf.random.set_seed(3)
  images = tf.random.normal([1, 128, 128, 3])
  ref = reference.hourglass_104()
  expected = ref(images, training=False)
  path = tf.train.Checkpoint(model=ref).write(prefix)
  ref_params = ref.count_params()
  del ref

  ours = registry.build_feature_extractor('hourglass_104')
  assert ours.num_feature_outputs == 2 and ours.out_stride == 4
  features = ours(images, training=False)  # Creates the variables.
  assert [f.shape for f in features] == [(1, 32, 32, 256)] * 2
  assert ours.count_params() == ref_params == 187_817_856
  network = ours._network  # pylint: disable=protected-access
  status = tf.train.Checkpoint(model=network).read(path)
  status.assert_existing_objects_matched()
  status.assert_consumed()
  for got, want in zip(ours(images, training=False), expected):
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
