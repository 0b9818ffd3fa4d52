"""The Mask R-CNN FCN head in the catalogue and the upsampling mask head."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import mask_heads
from deepmac_tf.mask_heads import upsampling_mask_head


def test_mask_rcnn_fcn_is_in_the_catalogue():
  assert 'mask_rcnn_fcn' in mask_heads.mask_head_names()
  net = mask_heads.build_mask_head('mask_rcnn_fcn', 8)
  out = net(tf.zeros([3, 14, 14, 5]))
  assert out.shape == (3, 14, 14, 8)
  # 4 x (3x3 conv with bias + BN with 4 vectors of nc).
  assert net.count_params() == (9 * 5 * 8 + 8) + 3 * (9 * 8 * 8 + 8) + 4 * 32


def test_mask_rcnn_fcn_round_trips_its_config():
  net = mask_heads.build_mask_head('mask_rcnn_fcn', 4, use_sync_batch_norm=True)
  clone = type(net).from_config(net.get_config())
  assert clone(tf.zeros([1, 8, 8, 2])).shape == (1, 8, 8, 4)


@pytest.mark.parametrize('name,crop,outputs', [
    ('mask_rcnn_fcn', 14, 1), ('resnet4', 14, 3), ('hourglass20', 16, 1),
    ('hourglass52', 32, 1)])
def test_upsampling_head_shapes_and_gradients(name, crop, outputs):
  head = upsampling_mask_head.UpsamplingMaskHead(
      name, num_init_channels=4, crop_size=crop, upsample_factor=2,
      num_outputs=outputs)
  crops = tf.random.normal([2, crop, crop, 6])
  with tf.GradientTape() as tape:
    logits = head(crops, training=True)
    loss = tf.reduce_mean(logits)
  assert logits.shape == (2, 2 * crop, 2 * crop, outputs)
  assert logits.dtype == tf.float32
  grads = tape.gradient(loss, head.trainable_variables)
  assert all(g is not None for g in grads)


def test_upsampling_head_rejects_parameter_free_heads_and_bad_crops():
  with pytest.raises(ValueError, match='parameter-free'):
    upsampling_mask_head.UpsamplingMaskHead('embedding_projection')
  with pytest.raises(Exception, match='mask_size'):
    upsampling_mask_head.UpsamplingMaskHead('hourglass52', crop_size=14)


def test_upsampling_head_config_round_trip():
  head = upsampling_mask_head.UpsamplingMaskHead('resnet4', 4, 8, 2, 1)
  config = head.get_config()
  clone = tf_keras.layers.deserialize(
      tf_keras.layers.serialize(head), custom_objects=None)
  assert clone.get_config()['network_type'] == config['network_type']
  x = tf.random.normal([1, 8, 8, 3])
  assert clone(x).shape == head(x).shape
  np.testing.assert_equal(clone.mask_size, 16)
