"""ResNet-v1 FPN feature extractors for CenterNet (tf-models-official ResNet)."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.backbones import registry
from deepmac_tf.backbones import resnet_fpn


@pytest.fixture(scope='module')
def resnet50_fpn():
  return registry.build_feature_extractor(
      'resnet_v1_50_fpn', channel_means=(10.0, 20.0, 30.0),
      channel_stds=(2.0, 2.0, 2.0), bgr_ordering=True)


def test_registered_names():
  names = registry.feature_extractor_names()
  assert 'resnet_v1_50_fpn' in names and 'resnet_v1_101_fpn' in names


def test_stride_4_single_output(resnet50_fpn):
  images = tf.random.uniform([2, 64, 96, 3], 0, 255)
  outputs = resnet50_fpn(resnet50_fpn.preprocess(images), training=False)
  assert len(outputs) == resnet50_fpn.num_feature_outputs == 1
  assert resnet50_fpn.out_stride == 4
  assert outputs[0].shape == (2, 16, 24, 64)
  assert np.isfinite(outputs[0].numpy()).all()


def test_parameter_count_is_resnet_plus_top_down(resnet50_fpn):
  base = resnet50_fpn._base_model.count_params()
  assert base == 23561152  # ResNet-50 v1 without the classifier.
  top_down = (2048 * 256 + 256 +                      # top 1x1
              1024 * 256 + 256 + 256 * 9 * 128 + 4 * 128 +  # level c4
              512 * 128 + 128 + 128 * 9 * 64 + 4 * 64 +     # level c3
              256 * 64 + 64 + 64 * 9 * 64 + 4 * 64)          # level c2
  assert resnet50_fpn.count_params() == base + top_down


def test_gradients_reach_every_trainable_variable(resnet50_fpn):
  images = tf.random.uniform([1, 64, 64, 3], 0, 255)
  with tf.GradientTape() as tape:
    out = resnet50_fpn(resnet50_fpn.preprocess(images), training=True)[0]
    loss = tf.reduce_mean(out ** 2)
  grads = tape.gradient(loss, resnet50_fpn.trainable_variables)
  missing = [v.name for v, g in zip(resnet50_fpn.trainable_variables, grads)
             if g is None]
  assert not missing


def test_preprocess_uses_bgr_means_and_stds(resnet50_fpn):
  image = tf.constant([[[[1.0, 2.0, 3.0]]]])
  np.testing.assert_allclose(resnet50_fpn.preprocess(image).numpy().ravel(),
                             [(3 - 10) / 2, (2 - 20) / 2, (1 - 30) / 2])


def test_resnet101_depth():
  extractor = resnet_fpn.ResNetV1FpnFeatureExtractor(101)
  extractor(tf.zeros([1, 32, 32, 3]))
  assert extractor._base_model.count_params() > 42_000_000
