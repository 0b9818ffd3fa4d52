"""Mask heads against the paper's tables, closed-form parameter counts, and the
OD API's reference values for the parameter-free heads."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf import mask_heads

# The paper's Tables 14 (ResNet bottleneck) and 15 (quarter width), verbatim.
_PAPER_TABLES = {
    'resnet_bottleneck6': (64, '2x(128,512,128)'),
    'resnet_bottleneck9': (64, '3x(128,512,128)'),
    'resnet_bottleneck12': (64, '4x(128,512,128)'),
    'resnet_bottleneck15': (64, '5x(128,512,128)'),
    'resnet_bottleneck21': (64, '6x(128,512,128) + 1x(192,384,192)'),
    'resnet_bottleneck_quarter6': (16, '2x(32,128,32)'),
    'resnet_bottleneck_quarter12': (16, '4x(32,128,32)'),
    'resnet_bottleneck_quarter21': (16, '6x(32,128,32) + 1x(48,192,48)'),
    'resnet_bottleneck_quarter30': (16, '5x(32,128,32) + 5x(48,192,48)'),
    'resnet_bottleneck_quarter51': (
        16, '6x(32,128,32) + 8x(48,192,48) + 3x(64,256,64)'),
}

_C_IN = 50


def _parse_table(text):
  """'2x(1,2,3) + 1x(4,5,6)' -> [((1, 2, 3), 2), ((4, 5, 6), 1)]."""
  stacks = []
  for term in text.split('+'):
    count, widths = re.fullmatch(r'\s*(\d+)x\(([\d,]+)\)\s*', term).groups()
    stacks.append((tuple(int(w) for w in widths.split(',')), int(count)))
  return stacks


def _bottleneck_block_params(w_in, a, b, c, conv_shortcut):
  """Pre-act BN, [1x1 shortcut], 1x1 a + BN, 3x3 b + BN, 1x1 c with bias."""
  shortcut = (w_in * c + c) if conv_shortcut else 0
  return (2 * w_in + shortcut + w_in * a + 2 * a + 9 * a * b + 2 * b +
          b * c + c)


def _bottleneck_net_params(c_in, first, stacks):
  total = c_in * first + first  # input_layer.
  width = first
  for (a, b, c), blocks in stacks:
    for j in range(blocks):
      total += _bottleneck_block_params(width, a, b, c, j == 0)
      width = c
  return total + 2 * width  # post_bn.


def _basic_block_params(w_in, f, conv_shortcut):
  """Pre-act BN, [1x1 shortcut], two (3x3 conv, BN)."""
  shortcut = (w_in * f + f) if conv_shortcut else 0
  return 2 * w_in + shortcut + 9 * w_in * f + 2 * f + 9 * f * f + 2 * f


def _conv_widths_by_block(model):
  """{(stack, block): [(filters, kernel), ...]} of the 1_/2_/3_ convs."""
  blocks = {}
  for layer in model.layers:
    match = re.fullmatch(r'bottleneck_block_(\d+)_block(\d+)_([123])_conv',
                         layer.name)
    if match:
      key = (int(match.group(1)), int(match.group(2)))
      blocks.setdefault(key, []).append(
          (int(match.group(3)), layer.filters, layer.kernel_size[0]))
  return {key: [(f, k) for _, f, k in sorted(convs)]
          for key, convs in sorted(blocks.items())}


def _trainable_count(layer):
  return sum(int(np.prod(v.shape)) for v in layer.trainable_variables)


@pytest.mark.parametrize('name', sorted(_PAPER_TABLES))
def test_bottleneck_heads_follow_paper_tables(name):
  first, text = _PAPER_TABLES[name]
  stacks = _parse_table(text)
  net = mask_heads.build_mask_head(name, 64)
  net(tf.zeros([0, 32, 32, _C_IN]))  # Builds input_layer.

  # Depth in the name = 3 convs per block.
  assert int(re.search(r'(\d+)$', name).group(1)) == 3 * sum(
      n for _, n in stacks)
  assert net.input_layer.filters == first
  convs = _conv_widths_by_block(net.model)
  expected = {}
  for i, (widths, count) in enumerate(stacks):
    for j in range(1, count + 1):
      expected[(i, j)] = list(zip(widths, (1, 3, 1)))
  assert convs == expected
  assert net.output_channels == stacks[-1][0][2]
  assert _trainable_count(net) == _bottleneck_net_params(_C_IN, first, stacks)


@pytest.mark.parametrize('name', ['resnet_bottleneck21',
                                  'resnet_bottleneck_quarter51'])
def test_bottleneck_widths_scale_with_num_init_channels(name):
  first, text = _PAPER_TABLES[name]
  quarter = [(tuple(w // 4 for w in widths), n)
             for widths, n in _parse_table(text)]
  net = mask_heads.build_mask_head(name, 16)
  net(tf.zeros([0, 32, 32, 18]))
  assert net.input_layer.filters == first // 4
  assert [s for s in net.stacks] == quarter
  assert _trainable_count(net) == _bottleneck_net_params(18, first // 4,
                                                         quarter)


def _resnet_net_params(c_in, nc, stacks):
  """input_layer + basic-block stacks of (channel multiple of nc, blocks)."""
  total, width = c_in * nc + nc, nc
  for multiple, blocks in stacks:
    for j in range(blocks):
      total += _basic_block_params(width, multiple * nc, j == 0)
      width = multiple * nc
  return total


@pytest.mark.parametrize('name,stacks', [
    ('resnet4', [(2, 2)]), ('resnet8', [(2, 4)]), ('resnet12', [(2, 6)]),
    ('resnet16', [(2, 8)]), ('resnet20', [(2, 8), (3, 2)])])
def test_resnet_heads_closed_form_parameter_counts(name, stacks):
  nc, c_in = 8, 32
  net = mask_heads.build_mask_head(name, nc)
  net(tf.zeros([0, 32, 32, c_in]))
  total = _resnet_net_params(c_in, nc, stacks)
  assert _trainable_count(net) == total
  if name == 'resnet4':
    # + project_out (16 + 1): the OD API's figure for the whole head.
    assert total + 17 == 8665


@pytest.mark.parametrize('name,num_dilated', [
    ('resnet20', 0), ('resnet20_dilated10', 10), ('resnet20_dilated20', 20)])
def test_dilated_resnet20_dilates_the_deepest_convs(name, num_dilated):
  net = mask_heads.build_mask_head(name, 8)
  convs = [l for l in net.model.layers
           if isinstance(l, tf_keras.layers.Conv2D) and l.kernel_size == (3, 3)]
  assert len(convs) == 20
  rates = [l.dilation_rate[0] for l in convs]
  assert rates == [1] * (20 - num_dilated) + [2] * num_dilated
  # Dilated convs pad by their rate: same resolution, same parameters.
  assert net(tf.zeros([0, 32, 32, 5])).shape == (0, 32, 32, 24)
  assert _trainable_count(net) == _resnet_net_params(5, 8, [(2, 8), (3, 2)])


def test_paper_resnet_widths_at_nc_64():
  net = mask_heads.build_mask_head('resnet4', 64)
  convs = [l.filters for l in net.model.layers
           if isinstance(l, tf_keras.layers.Conv2D)]
  assert set(convs) == {128}  # Table: ResNet-4 = 2x(128).


@pytest.mark.parametrize('name,hidden,initializer', [
    ('fully_connected', [1024], tf_keras.initializers.GlorotUniform),
    ('fully_connected2', [1024], tf_keras.initializers.GlorotNormal),
    ('fully_connected4', [1024, 1024, 1024],
     tf_keras.initializers.GlorotNormal)])
def test_fully_connected_heads(name, hidden, initializer):
  nc, size, c_in = 4, 16, 10
  net = mask_heads.build_mask_head(name, nc, mask_size=size)
  assert net(tf.zeros([0, size, size, c_in])).shape == (0, size, size, 1)
  units = [size * size * nc] + hidden + [size * size]
  assert [l.units for l in net.dense_layers] == units[1:]
  assert all(isinstance(l.kernel_initializer, initializer)
             for l in net.dense_layers)
  expected = c_in * nc + nc + sum(
      units[i] * units[i + 1] + units[i + 1] for i in range(len(units) - 1))
  assert _trainable_count(net) == expected


# ---------------------------------------------------- parameter-free heads --


@pytest.mark.parametrize('c_in,channels,depth,count', [
    (7, 9, 2, 82), (10, 8, 3, 169), (8, 8, 3, 153), (8, 8, 1, 9),
    (8, 8, 2, 81), (8, 16, 3, 433), (8, 32, 3, 1377), (8, 64, 3, 4801)])
def test_conditional_conv_num_params(c_in, channels, depth, count):
  assert mask_heads.conditional_conv_num_params(c_in, channels,
                                                depth) == count


@pytest.mark.parametrize('c_in,num_params,channels,depth', [
    (7, 8, 7, 1), (7, 82, 9, 2), (10, 169, 8, 3), (8, 433, 16, 3),
    (8, 1377, 32, 3), (8, 4801, 64, 3)])
def test_conditional_conv_shapes(c_in, num_params, channels, depth):
  out = mask_heads.per_pixel_conditional_conv(
      tf.zeros([10, 32, 32, c_in]), tf.zeros([10, num_params]), channels,
      depth)
  assert out.shape == (10, 32, 32, 1)


@pytest.mark.parametrize('pixels,params,channels,depth,expected', [
    ([1., 2., 3.], [1., 10., 100., 1000.], 3, 1, 1321.),
    ([2.], [-2., 3., 100., 5.], 1, 2, 5.),
    ([1., 2.], [1., 0., 0., 1., 1., -3., 5., 100., -9.], 2, 2, 1.)])
def test_conditional_conv_values(pixels, params, channels, depth, expected):
  out = mask_heads.per_pixel_conditional_conv(
      tf.constant(pixels)[tf.newaxis, tf.newaxis, tf.newaxis, :],
      tf.constant([params]), channels, depth)
  assert out.numpy().item() == expected


def test_per_pixel_single_conv_shape():
  out = mask_heads.per_pixel_single_conv(
      tf.zeros([5, 32, 32, 7]), tf.zeros([5, 7 * 8 + 8]), 8)
  assert out.shape == (5, 32, 32, 8)


def test_conditional_conv_count_mismatch_raises():
  inputs, params = tf.zeros([2, 8, 8, 8]), tf.zeros([2, 100])
  with pytest.raises(ValueError, match='153'):
    mask_heads.per_pixel_conditional_conv(inputs, params, 8, 3)
  with pytest.raises(ValueError, match='dim: cond_inst3 on'):
    tf.function(mask_heads.per_pixel_conditional_conv)(inputs, params, 8, 3)
  with pytest.raises(errors.ArgumentError, match='153'):
    tf.function(lambda x, p: mask_heads.per_pixel_conditional_conv(
        x, p, 8, 3))(inputs, params)
  with pytest.raises(ValueError, match='num_init_channels'):
    mask_heads.per_pixel_conditional_conv(tf.zeros([2, 8, 8, 7]),
                                          tf.zeros([2, 9]), 8, 1)
  net = mask_heads.MaskHeadNetwork('cond_inst3', 8,
                                   use_instance_embedding=False)
  with pytest.raises(errors.ArgumentError, match='153'):
    net(tf.zeros([2, 100]), tf.zeros([2, 32, 32, 8]))


def test_embedding_projection_matches_dot_product_exactly():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 1, 1, 8)).astype(np.float32) * 3
  y = rng.normal(size=(4, 32, 32, 8)).astype(np.float32) * 1e3
  out = mask_heads.embedding_projection(tf.constant(x), tf.constant(y))
  assert out.shape == (4, 32, 32, 1)
  np.testing.assert_array_equal(
      out, tf.reduce_sum(tf.constant(x) * tf.constant(y), -1, keepdims=True))
  x_var = tf.Variable(x)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(mask_heads.embedding_projection(x_var, y))
  np.testing.assert_allclose(
      tape.gradient(loss, x_var),
      np.sum(y.astype(np.float64), axis=(1, 2), keepdims=True), rtol=1e-4,
      atol=0.1)  # 1024-term float32 sums of values ~1e3.


@pytest.mark.parametrize('value', [1e-20, 1e20])
def test_embedding_projection_stays_finite(value):
  out = mask_heads.embedding_projection(tf.zeros([4, 32, 32, 8]),
                                        tf.zeros([4, 32, 32, 8]) + value)
  assert out.shape == (4, 32, 32, 1)
  assert np.all(np.isfinite(out.numpy()))
  both = mask_heads.embedding_projection(tf.fill([1, 1, 1, 8], value),
                                         tf.fill([1, 1, 1, 8], -value))
  assert np.all(np.isfinite(both.numpy()))
  # -8e40 saturates at -max float32; -8e-40 is subnormal (0 on CPUs that
  # flush denormals).
  assert both.numpy().item() <= 0
  if value > 1:
    assert both.numpy().item() == -np.finfo(np.float32).max
