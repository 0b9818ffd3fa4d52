"""Tests of the hourglass building blocks and HourglassNetwork."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.layers import hourglass_blocks as hb
from deepmac_tf.layers import hourglass_network as hn


def _small_two_stack(**kwargs):
  """A cheap 2-stack, 2-level network with the full class structure."""
  args = dict(num_stages=2, input_channel_dims=4,
              channel_dims_per_stage=[8, 8, 12], blocks_per_stage=[1, 2, 2],
              num_hourglasses=2, initial_downsample=False)
  args.update(kwargs)
  return hn.HourglassNetwork(**args)


def _tiny_two_stack(**kwargs):
  """The smallest 2-stack network using every layer type (fast to compile)."""
  return hn.HourglassNetwork(
      num_stages=1, input_channel_dims=4, channel_dims_per_stage=[4, 6],
      blocks_per_stage=[1, 1], num_hourglasses=2, initial_downsample=False,
      **kwargs)


def _params(layer):
  return int(sum(np.prod(v.shape) for v in layer.weights))


def test_batch_norm_settings():
  norm = hb.make_batch_norm()
  assert norm.epsilon == pytest.approx(1e-5)
  assert norm.momentum == pytest.approx(0.1)
  assert not norm.synchronized
  assert hb.make_batch_norm(use_sync_batch_norm=True).synchronized
  net = _small_two_stack(use_sync_batch_norm=True)
  net(tf.zeros([1, 8, 8, 3]))
  norms = [l for l in net.submodules if isinstance(l, hb.HourglassBatchNorm)]
  assert norms and all(l.synchronized for l in norms)


@pytest.mark.parametrize('kernel,stride,in_size,out_size,pad_type', [
    (3, 1, 9, 9, tf_keras.layers.ZeroPadding2D),
    (3, 2, 8, 4, tf_keras.layers.ZeroPadding2D),
    (7, 2, 16, 8, tf_keras.layers.ZeroPadding2D),
    (1, 2, 8, 4, hb.IdentityLayer),
])
def test_convolutional_block(kernel, stride, in_size, out_size, pad_type):
  block = hb.ConvolutionalBlock(kernel, 5, stride=stride, relu=False)
  out = block(tf.random.normal([2, in_size, in_size, 3]))
  assert out.shape == (2, out_size, out_size, 5)
  assert isinstance(block.pad, pad_type)
  assert isinstance(block.relu, hb.IdentityLayer)
  assert block.conv.kernel.shape == (kernel, kernel, 3, 5)
  assert not block.conv.use_bias
  # Conv kernel + 4 batch-norm vectors.
  assert _params(block) == kernel * kernel * 3 * 5 + 4 * 5
  with_relu = hb.ConvolutionalBlock(kernel, 5, stride=stride)
  assert float(tf.reduce_min(with_relu(tf.random.normal([1, 8, 8, 3])))) >= 0


def test_residual_block_skip_and_params():
  block = hb.ResidualBlock(6, skip_conv=True, stride=2)
  out = block(tf.random.normal([2, 8, 8, 4]))
  assert out.shape == (2, 4, 4, 6)
  assert isinstance(block.skip, hb.SkipConvolution)
  assert _params(block) == (9 * 4 * 6 + 24) + (9 * 6 * 6 + 24) + (4 * 6 + 24)
  identity = hb.ResidualBlock(4)
  assert isinstance(identity.skip, hb.IdentityLayer)
  assert identity(tf.random.normal([1, 5, 5, 4])).shape == (1, 5, 5, 4)


def test_input_blocks():
  down = hb.InputDownsampleBlock(6, 8)
  assert down(tf.zeros([1, 32, 32, 3])).shape == (1, 8, 8, 8)
  assert down.conv_block.conv.kernel.shape == (7, 7, 3, 6)
  conv = hb.InputConvBlock(6, 8)
  assert conv(tf.zeros([1, 12, 12, 5])).shape == (1, 12, 12, 8)
  assert isinstance(conv.residual_block.skip, hb.SkipConvolution)


@pytest.mark.parametrize('num,stride,res_ch,init_skip,expect', [
    # (out channels, stride, has skip conv) per block.
    (1, 2, None, False, [(8, 2, True)]),
    (1, 1, None, False, [(8, 1, False)]),
    (1, 1, 6, False, [(8, 1, True)]),  # Channels change: skip conv.
    (1, 1, None, True, [(8, 1, True)]),
    (2, 2, 6, True, [(6, 2, True), (8, 1, True)]),
    (3, 1, None, True, [(8, 1, True), (8, 1, False), (8, 1, False)]),
])
def test_repeated_residual_blocks(num, stride, res_ch, init_skip, expect):
  blocks = hb.make_repeated_residual_blocks(
      8, num, initial_stride=stride, residual_channels=res_ch,
      initial_skip_conv=init_skip)
  got = [(b.conv.filters, b.conv_block.conv.strides[0],
          isinstance(b.skip, hb.SkipConvolution)) for b in blocks]
  assert got == expect


def test_encoder_decoder_variants():
  x = tf.random.normal([2, 8, 8, 6])
  full = hn.EncoderDecoderBlock(2, [6, 8, 10], [1, 2, 2])
  assert full(x).shape == (2, 8, 8, 6)
  assert isinstance(full.inner_block[0], hn.EncoderDecoderBlock)
  assert len(full.inner_block[0].inner_block) == 2  # innermost: residuals
  assert full.encoder_block2[0].conv_block.conv.strides == (2, 2)
  no_skip = hn.EncoderDecoderBlock(2, [6, 8, 10], [1, 2, 2],
                                   encoder_decoder_shortcut=False)
  assert no_skip(x).shape == (2, 8, 8, 6)
  assert not hasattr(no_skip, 'encoder_block1')
  assert not hasattr(no_skip, 'merge_features')
  uniform = hn.EncoderDecoderBlock(2, [6, 8, 10], [1, 2, 2],
                                   stagewise_downsample=False)
  assert uniform(tf.random.normal([1, 7, 7, 6])).shape == (1, 7, 7, 6)
  assert uniform.upsample.size == 1


@pytest.mark.parametrize('size', [1, 2, 3])
def test_nearest_upsampling_matches_keras(size):
  x = tf.random.normal([2, 3, 5, 4])
  expected = tf_keras.layers.UpSampling2D(size)(x)
  got = hb.NearestUpsampling2D(size)(x)
  np.testing.assert_array_equal(got.numpy(), expected.numpy())
  dynamic = tf.function(
      hb.NearestUpsampling2D(size).call,
      input_signature=[tf.TensorSpec([None, 3, None, 4])])
  assert dynamic.get_concrete_function().structured_outputs.shape.as_list() == [
      None, 3 * size, None, 4]


def test_network_outputs_and_attributes():
  net = _small_two_stack()
  outs = net(tf.random.normal([2, 8, 8, 3]))
  assert isinstance(outs, list) and len(outs) == 2
  assert all(o.shape == (2, 8, 8, 8) for o in outs)
  assert net.num_feature_outputs == 2
  for name in ('conv_input', 'hourglass_network', 'output_conv',
               'intermediate_conv1', 'intermediate_conv2', 'intermediate_relu',
               'intermediate_residual'):
    assert hasattr(net, name), name
  assert not hasattr(net, 'downsample_input')
  last = _small_two_stack(return_last_only=True)
  assert last(tf.zeros([1, 8, 8, 3])).shape == (1, 8, 8, 8)
  backbone = _small_two_stack(initial_downsample=True)
  assert [o.shape for o in backbone(tf.zeros([1, 16, 16, 3]))] == [
      (1, 4, 4, 8)] * 2
  assert backbone.out_stride == 4 and hasattr(backbone, 'downsample_input')


def test_network_rejects_indivisible_input():
  with pytest.raises(ValueError, match='multiple of 4'):
    _small_two_stack()(tf.zeros([1, 6, 6, 3]))


def test_gradients_reach_every_variable():
  net = _small_two_stack()
  x = tf.random.normal([2, 8, 8, 3])
  with tf.GradientTape() as tape:
    loss = sum(tf.reduce_sum(tf.square(o)) for o in net(x, training=True))
  grads = tape.gradient(loss, net.trainable_variables)
  assert len(net.trainable_variables) > 0
  for var, grad in zip(net.trainable_variables, grads):
    assert grad is not None, var.name
    assert float(tf.reduce_sum(tf.abs(grad))) > 0, var.name


@pytest.mark.parametrize('training', [True, False])
def test_empty_batch_keeps_moving_statistics(training):
  net = _small_two_stack()
  net(tf.random.normal([1, 8, 8, 3]), training=False)
  before = [v.numpy() for v in net.non_trainable_variables]
  outs = net(tf.zeros([0, 8, 8, 3]), training=training)
  assert [o.shape for o in outs] == [(0, 8, 8, 8)] * 2
  for old, var in zip(before, net.non_trainable_variables):
    np.testing.assert_array_equal(old, var.numpy(), err_msg=var.name)


def test_get_config_round_trip():
  layers = [
      hb.ConvolutionalBlock(3, 4, stride=2, relu=False),
      hb.SkipConvolution(4, 2, use_sync_batch_norm=True),
      hb.ResidualBlock(4, skip_conv=True, stride=2),
      hb.InputConvBlock(3, 4), hb.InputDownsampleBlock(3, 4),
      hn.EncoderDecoderBlock(2, [4, 4, 6], [1, 2, 2],
                             encoder_decoder_shortcut=False),
      _small_two_stack(return_last_only=True),
  ]
  for layer in layers:
    rebuilt = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    x = tf.zeros([1, 16, 16, 3])
    layer(x)
    rebuilt(x)
    assert _params(rebuilt) == _params(layer)


def test_jit_compile_matches_eager():
  net = _tiny_two_stack()
  x = tf.random.normal([2, 4, 4, 3])

  def loss_and_grads(images):
    with tf.GradientTape() as tape:
      loss = tf.add_n([tf.reduce_mean(tf.square(o))
                       for o in net(images, training=True)])
    return loss, tape.gradient(loss, net.trainable_variables)

  eager_loss, eager_grads = loss_and_grads(x)
  loss, grads = tf.function(loss_and_grads, jit_compile=True)(x)
  np.testing.assert_allclose(loss.numpy(), eager_loss.numpy(), rtol=1e-4)
  for grad, eager_grad in zip(grads, eager_grads):
    np.testing.assert_allclose(grad.numpy(), eager_grad.numpy(), rtol=1e-3,
                               atol=1e-4)
  assert all(np.isfinite(v.numpy()).all() for v in net.variables)


def test_mixed_bfloat16():
  # Eager here; tests/test_hourglass_heads.py compiles a bf16 head with XLA.
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    net = _tiny_two_stack()
    outs = net(tf.random.normal([2, 4, 4, 3]), training=True)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  for out in outs:
    assert out.dtype == tf.bfloat16
    assert np.isfinite(tf.cast(out, tf.float32).numpy()).all()
  assert all(v.dtype == tf.float32 for v in net.variables)
