"""Every registered mask head: shapes, gradients, empty batch, config, dtypes."""

import importlib.util

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf import mask_heads

_SIZE = 32
_NC = 4
_EMBED_DIM = 6
_PIXEL_DIM = 6

_COND_INST_DEPTHS = (1, 2, 3)


def _concrete_names():
  names = []
  for name in mask_heads.mask_head_names():
    if name == mask_heads.COND_INST_PATTERN:
      names.extend('cond_inst{}'.format(d) for d in _COND_INST_DEPTHS)
    else:
      names.append(name)
  return names


_ALL_NAMES = _concrete_names()
_NUMERIC_ROUND_TRIP = ('resnet4', 'resnet20_dilated10', 'hourglass10',
                       'hourglass20_no_shortcut', 'resnet_bottleneck_quarter6',
                       'fully_connected4', 'cond_inst2', 'embedding_projection')


def _hourglass_available():
  return importlib.util.find_spec(
      'deepmac_tf.mask_heads.hourglass_heads') is not None


def _make_head(name, num_instances, seed=0):
  """(network, instance embedding, pixel input) that fit head `name`."""
  if name.startswith('hourglass') and not _hourglass_available():
    pytest.skip('deepmac_tf/mask_heads/hourglass_heads.py not there yet')
  rng = np.random.default_rng(seed)
  pixel_dim, embed_dim, use_embedding = _PIXEL_DIM, _EMBED_DIM, True
  if name == 'embedding_projection':
    embed_dim, use_embedding = pixel_dim, False
  depth = mask_heads.parse_cond_inst_depth(name)
  if depth is not None:
    use_embedding = False
    pixel_dim = _NC if depth == 1 else _PIXEL_DIM
    embed_dim = mask_heads.conditional_conv_num_params(pixel_dim, _NC, depth)
  net = mask_heads.MaskHeadNetwork(
      name, num_init_channels=_NC, use_instance_embedding=use_embedding,
      mask_size=_SIZE)
  embedding = tf.constant(rng.normal(size=(num_instances, embed_dim)),
                          tf.float32)
  pixels = tf.constant(
      rng.normal(size=(num_instances, _SIZE, _SIZE, pixel_dim)), tf.float32)
  return net, embedding, pixels


def test_registry_lists_every_family():
  names = mask_heads.mask_head_names()
  for expected in ('resnet4', 'resnet20_dilated10', 'resnet20_dilated20',
                   'hourglass100', 'hourglass20_uniform_size',
                   'hourglass20_no_shortcut', 'resnet_bottleneck21',
                   'resnet_bottleneck_quarter51', 'fully_connected',
                   'fully_connected2', 'fully_connected4',
                   'embedding_projection', 'cond_inst<D>'):
    assert expected in names
  assert len(set(names)) == len(names)
  assert mask_heads.is_parameter_free('cond_inst7')
  assert mask_heads.is_parameter_free('embedding_projection')
  assert not mask_heads.is_parameter_free('resnet4')
  assert not mask_heads.is_registered('cond_inst0')


def test_hourglass_names_and_divisors_match_hourglass_module():
  if not _hourglass_available():
    pytest.skip('deepmac_tf/mask_heads/hourglass_heads.py not there yet')
  from deepmac_tf.mask_heads import hourglass_heads  # pylint: disable=g-import-not-at-top
  assert set(hourglass_heads.HOURGLASS_HEAD_NAMES) == set(
      mask_heads.HOURGLASS_HEAD_NAMES)
  for name in hourglass_heads.HOURGLASS_HEAD_NAMES:
    assert (mask_heads.required_mask_size_divisor(name) ==
            hourglass_heads.required_mask_size_multiple(name))


def test_required_mask_size_divisor():
  assert mask_heads.required_mask_size_divisor('hourglass52') == 32
  assert mask_heads.required_mask_size_divisor('hourglass10') == 2
  assert mask_heads.required_mask_size_divisor('hourglass20_uniform_size') == 1
  assert mask_heads.required_mask_size_divisor('resnet20') == 1
  assert mask_heads.required_mask_size_divisor('cond_inst3') == 1
  with pytest.raises(errors.ArgumentError, match='mask_size'):
    mask_heads.build_mask_head('hourglass52', 8, mask_size=16)


@pytest.mark.parametrize('name', _ALL_NAMES)
def test_head_shapes_gradients_empty_batch_and_config(name):
  net, embedding, pixels = _make_head(name, num_instances=2)
  with tf.GradientTape() as tape:
    tape.watch([embedding, pixels])
    logits = net(embedding, pixels, training=True)
    loss = tf.reduce_sum(tf.square(logits))
  assert logits.shape == (2, _SIZE, _SIZE)
  assert logits.dtype == tf.float32
  assert np.all(np.isfinite(logits.numpy()))

  # Gradients reach every trainable variable (and the inputs).
  variables = net.trainable_variables
  grads = tape.gradient(loss, variables + [embedding, pixels])
  if mask_heads.is_parameter_free(name):
    assert not variables and not net.weights
  else:
    assert variables
  for var, grad in zip(variables + [embedding, pixels], grads):
    assert grad is not None, 'no gradient for {}'.format(var.name)
    assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy()))
  for var, grad in zip(variables, grads):
    assert np.any(tf.convert_to_tensor(grad).numpy() != 0), var.name

  # The core network maps [N, S, S, C] to [N, S, S, C_out]; N may be 0.
  core_channels = pixels.shape[-1] + (
      embedding.shape[-1] if net._use_instance_embedding else 0)
  core_out = net._net(tf.zeros([0, _SIZE, _SIZE, core_channels]))
  core_out = core_out[-1] if isinstance(core_out, (list, tuple)) else core_out
  assert core_out.shape[:3] == (0, _SIZE, _SIZE)

  # Zero instances.
  empty = net(embedding[:0], pixels[:0], training=False)
  assert empty.shape == (0, _SIZE, _SIZE)

  # get_config round trip: the same config, and for one head per family the
  # same outputs (training-mode batch norm uses batch statistics, so they
  # must equal `logits`). Deep heads only compare configs, to keep CI fast.
  config = net.get_config()
  clone = mask_heads.MaskHeadNetwork.from_config(config)
  assert clone.get_config() == config
  if name in _NUMERIC_ROUND_TRIP:
    clone(embedding[:0], pixels[:0])
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone(embedding, pixels, training=True),
                               logits, rtol=1e-5, atol=1e-5)


def test_resnet4_reference_parameter_count():
  """OD API check: whole MaskHeadNetwork (input_layer, blocks, project_out)."""
  net = mask_heads.MaskHeadNetwork('resnet4', num_init_channels=8,
                                   use_instance_embedding=True)
  out = net(tf.zeros([2, 16]), tf.zeros([2, 32, 32, 16]), training=True)
  assert out.shape == (2, 32, 32)
  count = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
  assert count == 8665
  # 264 (1x1 input_layer) + 8384 (two basic blocks) + 17 (project_out).
  assert net.project_out.count_params() == 17
  assert net._net.input_layer.count_params() == 32 * 8 + 8


@pytest.mark.parametrize('name,channels', [('resnet4', 16), ('resnet8', 16),
                                           ('resnet20', 24)])
def test_resnet_network_output_channels(name, channels):
  net = mask_heads.build_mask_head(name, 8)
  assert net(tf.zeros([3, 32, 32, 16])).shape == (3, 32, 32, channels)


def test_unknown_name_error_names_argument_and_suggests():
  with pytest.raises(errors.ArgumentError) as info:
    mask_heads.build_mask_head('resnet-20', 8)
  message = str(info.value)
  assert info.value.argument == 'network_type'
  assert message.startswith('network_type: unknown mask head')
  assert 'model.' not in message  # heads know no config fields
  assert "Did you mean 'resnet20'" in message
  assert 'hourglass100' in message and 'cond_inst<D>' in message
  with pytest.raises(errors.ArgumentError, match="'hourglass52'"):
    mask_heads.MaskHeadNetwork('hourglass_52', 8)
  with pytest.raises(ValueError, match='unknown mask head'):
    mask_heads.is_parameter_free('cond_inst0')


def test_argument_errors():
  with pytest.raises(errors.ArgumentError, match='use_instance_embedding'):
    mask_heads.MaskHeadNetwork('cond_inst2', 8, use_instance_embedding=True)
  with pytest.raises(errors.ArgumentError, match='use_instance_embedding'):
    mask_heads.MaskHeadNetwork('embedding_projection', 8)
  with pytest.raises(errors.ArgumentError, match='mask_size'):
    mask_heads.MaskHeadNetwork('fully_connected', 8)
  with pytest.raises(errors.ArgumentError, match='num_init_channels'):
    mask_heads.build_mask_head('resnet4', 0)
  with pytest.raises(errors.ArgumentError, match='num_init_channels'):
    mask_heads.build_mask_head('resnet_bottleneck_quarter6', 6)
  net = mask_heads.MaskHeadNetwork('embedding_projection', 8,
                                   use_instance_embedding=False)
  with pytest.raises(errors.ArgumentError,
                     match='embedding_projection needs an instance'):
    net(tf.zeros([2, 8]), tf.zeros([2, 32, 32, 10]))


def test_fully_connected_head_od_api_shapes():
  head = mask_heads.FullyConnectedMaskHead(16, 16)
  assert head(tf.zeros([5, 16, 16, 24])).shape == (5, 16, 16, 1)
  net = mask_heads.MaskHeadNetwork('fully_connected', 8, mask_size=32)
  assert net(tf.zeros([2, 8]), tf.zeros([2, 32, 32, 8])).shape == (2, 32, 32)
  with pytest.raises(errors.ArgumentError, match='mask_size'):
    head(tf.zeros([1, 32, 32, 24]))


def test_embedding_projection_large_instance_embedding_is_finite():
  net = mask_heads.MaskHeadNetwork('embedding_projection', 8,
                                   use_instance_embedding=False)
  out = net(tf.fill([2, 8], 1e6), tf.zeros([2, 32, 32, 8]))
  assert out.shape == (2, 32, 32)
  assert np.all(np.isfinite(out.numpy()))


def test_sync_batch_norm_option():
  net = mask_heads.build_mask_head('resnet4', 4, use_sync_batch_norm=True)
  norms = [l for l in net.model.layers
           if isinstance(l, tf_keras.layers.BatchNormalization)]
  assert norms and all(l.synchronized for l in norms)
  assert net(tf.zeros([1, 8, 8, 3]), training=True).shape == (1, 8, 8, 8)


def test_checkpoint_object_names_follow_od_api(tmp_path):
  resnet = mask_heads.MaskHeadNetwork('resnet4', 8)
  resnet(tf.zeros([1, 16]), tf.zeros([1, 32, 32, 16]))
  fc = mask_heads.MaskHeadNetwork('fully_connected', 4, mask_size=16)
  fc(tf.zeros([1, 4]), tf.zeros([1, 16, 16, 4]))
  path = tf.train.Checkpoint(resnet=resnet, fc=fc).write(
      str(tmp_path / 'ckpt'))
  keys = {name for name, _ in tf.train.list_variables(path)}
  suffix = '/.ATTRIBUTES/VARIABLE_VALUE'
  for key in ('resnet/_net/input_layer/kernel', 'resnet/_net/input_layer/bias',
              'resnet/_net/model/layer_with_weights-0/gamma',
              'resnet/_net/model/layer_with_weights-0/moving_mean',
              'resnet/project_out/kernel', 'resnet/project_out/bias',
              'fc/_net/input_layer/kernel', 'fc/_net/fc1/kernel',
              'fc/_net/fc2/bias'):
    assert key + suffix in keys, key


def test_jit_compiled_forward_matches_eager():
  for name in ('resnet4', 'resnet_bottleneck_quarter6', 'cond_inst2',
               'embedding_projection'):
    net, embedding, pixels = _make_head(name, num_instances=3, seed=1)
    eager = net(embedding, pixels, training=False)
    compiled = tf.function(
        lambda e, p, n=net: n(e, p, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(embedding, pixels), eager,
                               rtol=1e-4, atol=1e-4)


@pytest.fixture
def bfloat16_policy():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')


def test_mixed_bfloat16_forward(bfloat16_policy):  # pylint: disable=redefined-outer-name,unused-argument
  names = ['resnet4', 'resnet20_dilated10', 'resnet_bottleneck_quarter6',
           'fully_connected2', 'cond_inst3', 'embedding_projection']
  if _hourglass_available():
    names.append('hourglass10')
  for name in names:
    net, embedding, pixels = _make_head(name, num_instances=2, seed=2)
    logits = net(embedding, pixels, training=True)
    assert logits.dtype == tf.float32 and logits.shape == (2, _SIZE, _SIZE)
    assert np.all(np.isfinite(logits.numpy())), name
    assert net.compute_dtype == 'bfloat16'
    for var in net.trainable_variables:
      assert var.dtype == tf.float32
