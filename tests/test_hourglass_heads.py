"""Tests of the hourglass mask heads (OD API network_type names).

The reference is tf-models-official's copy of the OD API hourglass network,
which uses the same object names: parameter counts and checkpoints must match.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf.mask_heads import hourglass_heads
from official.projects.deepmac_maskrcnn.modeling.heads import (
    hourglass_network as reference)

MASK_SIZE = 32


def _reference_head(name, nc):
  if name == 'hourglass20_uniform_size':
    return reference.hourglass_20_uniform_size(nc)
  if name == 'hourglass20_no_shortcut':
    return reference.hourglass_20_no_shortcut(nc)
  depth = name[len('hourglass'):]
  return getattr(reference, f'hourglass_{depth}')(nc, initial_downsample=False)


def _count(model, input_channels):
  model(tf.zeros([1, MASK_SIZE, MASK_SIZE, input_channels]), training=False)
  trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
  return model.count_params(), trainable


def test_head_names():
  assert hourglass_heads.HOURGLASS_HEAD_NAMES == (
      'hourglass10', 'hourglass20', 'hourglass32', 'hourglass52',
      'hourglass100', 'hourglass20_uniform_size', 'hourglass20_no_shortcut')


@pytest.mark.parametrize('name', hourglass_heads.HOURGLASS_HEAD_NAMES)
def test_params_shapes_gradients_and_empty_batch(name):
  nc, input_channels = 16, 18
  head = hourglass_heads.build_hourglass_head(name, nc)
  # Parameter counts equal the reference network of the same name.
  assert _count(head, input_channels) == _count(
      _reference_head(name, nc), input_channels)

  x = tf.random.normal([2, MASK_SIZE, MASK_SIZE, input_channels])
  with tf.GradientTape() as tape:
    out = head(x, training=True)
    loss = tf.reduce_sum(tf.square(out))
  assert out.shape == (2, MASK_SIZE, MASK_SIZE, 2 * nc)
  grads = tape.gradient(loss, head.trainable_variables)
  for var, grad in zip(head.trainable_variables, grads):
    assert grad is not None, var.name
    assert float(tf.reduce_sum(tf.abs(grad))) > 0, var.name
  empty = head(tf.zeros([0, MASK_SIZE, MASK_SIZE, input_channels]),
               training=True)
  assert empty.shape == (0, MASK_SIZE, MASK_SIZE, 2 * nc)
  assert all(np.isfinite(v.numpy()).all() for v in head.variables)


def test_parameter_count_paper_width_equals_reference():
  # The paper's setting: nc=64 on 18 pixel + 32 instance-embedding channels.
  ours = hourglass_heads.build_hourglass_head('hourglass52', 64)
  assert _count(ours, 50) == _count(_reference_head('hourglass52', 64), 50)


def test_structure_of_variants():
  uniform = hourglass_heads.build_hourglass_head('hourglass20_uniform_size', 4)
  no_shortcut = hourglass_heads.build_hourglass_head(
      'hourglass20_no_shortcut', 4)
  assert uniform.hourglass_network[0].upsample.size == 1
  assert hasattr(no_shortcut.hourglass_network[0], 'encoder_block2')
  assert not hasattr(no_shortcut.hourglass_network[0], 'encoder_block1')
  assert hasattr(uniform, 'conv_input') and not hasattr(
      uniform, 'downsample_input')
  assert [hourglass_heads.required_mask_size_multiple(n)
          for n in hourglass_heads.HOURGLASS_HEAD_NAMES] == [
              2, 4, 8, 32, 32, 1, 4]
  # Uniform size works at any mask size.
  assert uniform(tf.zeros([1, 7, 7, 3])).shape == (1, 7, 7, 8)


@pytest.mark.parametrize('name', ['hourglass20', 'hourglass20_no_shortcut'])
def test_checkpoint_from_reference(name, tmp_path):
  tf.random.set_seed(1)
  nc, input_channels = 8, 18
  x = tf.random.normal([2, MASK_SIZE, MASK_SIZE, input_channels])
  ref = _reference_head(name, nc)
  ref(x, training=True)  # Updates the moving statistics away from 0 / 1.
  for var in ref.trainable_variables:  # Non-default gammas / betas too.
    if 'gamma' in var.name or 'beta' in var.name:
      var.assign(var + tf.random.normal(var.shape, stddev=0.1))
  expected = ref(x, training=False)[-1]
  path = tf.train.Checkpoint(model=ref).write(str(tmp_path / 'ckpt'))

  ours = hourglass_heads.build_hourglass_head(name, nc)
  ours(x[:1], training=False)
  status = tf.train.Checkpoint(model=ours).read(path)
  status.assert_existing_objects_matched()
  status.assert_consumed()
  np.testing.assert_allclose(
      ours(x, training=False).numpy(), expected.numpy(), atol=1e-5)
  # Training mode: batch statistics come from different kernels (fused here,
  # the reference's sync-BN moments there), hence float32 round-off only.
  np.testing.assert_allclose(
      ours(x, training=True).numpy(), ref(x, training=True)[-1].numpy(),
      atol=1e-4)


def test_checkpoint_keys_follow_odapi_names(tmp_path):
  head = hourglass_heads.build_hourglass_head('hourglass10', 2)
  head(tf.zeros([1, 8, 8, 3]))
  path = tf.train.Checkpoint(model=head).write(str(tmp_path / 'ckpt'))
  keys = {k for k, _ in tf.train.list_variables(path)}
  for key in (
      'model/conv_input/conv_block/conv/kernel',
      'model/conv_input/residual_block/skip/norm/moving_mean',
      'model/hourglass_network/0/encoder_block1/0/conv/kernel',
      'model/hourglass_network/0/encoder_block2/0/skip/conv/kernel',
      'model/hourglass_network/0/inner_block/0/norm/gamma',
      'model/hourglass_network/0/decoder_block/0/conv_block/norm/beta',
      'model/output_conv/0/conv/kernel'):
    assert key + '/.ATTRIBUTES/VARIABLE_VALUE' in keys, key


def test_jit_compile_and_mixed_bfloat16():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    head = hourglass_heads.build_hourglass_head('hourglass10', 4)
    out = tf.function(lambda t: head(t, training=True), jit_compile=True)(
        tf.random.normal([2, 8, 8, 6]))
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert out.shape == (2, 8, 8, 8) and out.dtype == tf.bfloat16
  assert np.isfinite(tf.cast(out, tf.float32).numpy()).all()
  assert all(v.dtype == tf.float32 for v in head.variables)


def test_unknown_name_raises_argument_error():
  with pytest.raises(errors.ArgumentError) as info:
    hourglass_heads.build_hourglass_head('hourglass21', 8)
  message = str(info.value)
  assert 'network_type' in message and 'hourglass21' in message
  for name in hourglass_heads.HOURGLASS_HEAD_NAMES:
    assert name in message
  with pytest.raises(errors.ArgumentError, match='num_init_channels'):
    hourglass_heads.build_hourglass_head('hourglass10', 0)
  with pytest.raises(errors.ArgumentError):
    hourglass_heads.required_mask_size_multiple('resnet4')


def test_serialization_round_trip():
  head = hourglass_heads.build_hourglass_head('hourglass20_no_shortcut', 4)
  rebuilt = tf_keras.layers.deserialize(tf_keras.layers.serialize(head))
  x = tf.zeros([1, 8, 8, 3])
  assert rebuilt(x).shape == head(x).shape == (1, 8, 8, 8)
  assert rebuilt.count_params() == head.count_params()
