"""Parameter-free mask heads: `embedding_projection`, `cond_inst<D>` (spec 3.4).

Neither head owns variables: the instance embedding itself is the per-instance
"weight". Their `_net` is the identity (IdentityMaskNet) and MaskHeadNetwork
applies the functions below to (instance embedding, pixel input).

* embedding_projection: logit(p) = <instance embedding, pixel input(p)>.
* cond_inst<D> (CondInst-style dynamic convolution): the instance embedding is
  the flat parameter vector of a D-layer per-pixel MLP (1x1 conv stack) over
  the pixel input; hidden layers have c = num_init_channels units and ReLU,
  the last layer one linear unit. Layers are read in order, each as in*out
  weights (row-major [in, out]) followed by out biases.
"""

import re

import numpy as np
import tensorflow as tf
import tf_keras

from deepmac_tf import errors

EMBEDDING_PROJECTION = 'embedding_projection'
COND_INST_PREFIX = 'cond_inst'
COND_INST_PATTERN = COND_INST_PREFIX + '<D>'
_COND_INST_RE = re.compile(r'^cond_inst([1-9][0-9]*)$')



def parse_cond_inst_depth(network_type):
  """Returns D for 'cond_inst<D>' (D >= 1), else None."""
  match = _COND_INST_RE.match(str(network_type))
  return int(match.group(1)) if match else None


def is_parameter_free_name(network_type):
  return (network_type == EMBEDDING_PROJECTION or
          parse_cond_inst_depth(network_type) is not None)


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class IdentityMaskNet(tf_keras.layers.Layer):
  """The `_net` of parameter-free heads: [N, S, S, C] -> the same tensor."""

  def call(self, inputs, training=None):
    return tf.identity(inputs)


def _power_of_two_floor(magnitude):
  """Largest power of two <= magnitude (> 0), exact; 1 where magnitude is 0.

  Args:
    magnitude: non-negative float32 or float64 tensor.

  Returns:
    A tensor of the same shape and dtype holding powers of two.
  """
  if magnitude.dtype == tf.float64:
    int_dtype, exponent_mask = tf.int64, 0x7FF0000000000000
  else:
    int_dtype, exponent_mask = tf.int32, 0x7F800000
  bits = tf.bitwise.bitwise_and(tf.bitcast(magnitude, int_dtype),
                                tf.constant(exponent_mask, int_dtype))
  scale = tf.bitcast(bits, magnitude.dtype)
  # Zero and subnormal magnitudes have a zero exponent field: scale by 1.
  return tf.where(scale > 0, scale, tf.ones_like(scale))


def embedding_projection(instance_embedding, pixel_embedding):
  """Per-pixel dot product of an instance embedding with pixel embeddings.

  Equals reduce_sum(instance_embedding * pixel_embedding, -1) wherever that is
  representable, bit for bit (both factors are rescaled by exact powers of
  two before the product); where the true value exceeds the float range the
  result saturates at +-max float instead of becoming inf or NaN. 16-bit
  inputs are computed in float32.

  Args:
    instance_embedding: [N, H, W, D] or [N, 1, 1, D] float tensor.
    pixel_embedding: [N, H, W, D] float tensor.

  Returns:
    [N, H, W, 1] float tensor (float32 for 16-bit inputs, else input dtype).
  """
  dtype = instance_embedding.dtype
  if dtype in (tf.float16, tf.bfloat16):
    dtype = tf.float32
  x = tf.cast(instance_embedding, dtype)
  y = tf.cast(pixel_embedding, dtype)
  x_scale = tf.stop_gradient(
      _power_of_two_floor(tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)))
  y_scale = tf.stop_gradient(
      _power_of_two_floor(tf.reduce_max(tf.abs(y), axis=-1, keepdims=True)))
  normalized = tf.reduce_sum((x / x_scale) * (y / y_scale), axis=-1,
                             keepdims=True)
  # Each factor is finite; a product that overflows saturates to +-inf
  # (never 0 * inf) and is clipped to the largest finite value.
  dot = (normalized * x_scale) * y_scale
  max_value = float(np.finfo(dtype.as_numpy_dtype).max)
  return tf.clip_by_value(dot, -max_value, max_value)


def conditional_conv_num_params(input_channels, channels, depth):
  """Length of the cond_inst<depth> parameter vector (spec §3.4).

  C_in*c*[D>1] + c^2*max(D-2, 0) + c weights plus c*(D-1) + 1 biases.

  Args:
    input_channels: C_in, channels of the pixel input.
    channels: c = num_init_channels, units of the hidden layers.
    depth: D >= 1 layers.

  Returns:
    The number of values the instance embedding must have (an int).
  """
  weights = (input_channels * channels * int(depth > 1) +
             channels * channels * max(depth - 2, 0) + channels)
  biases = channels * (depth - 1) + 1
  return weights + biases


def per_pixel_single_conv(inputs, params, channels):
  """One per-instance 1x1 conv: inputs @ W_n + b_n for every instance n.

  Args:
    inputs: [N, H, W, C_in] float tensor.
    params: [N, C_in * channels + channels] float tensor: row-major [C_in,
      channels] weights, then channels biases.
    channels: output channels.

  Returns:
    [N, H, W, channels] float tensor.

  Raises:
    ArgumentError: (a ValueError, also out of a tf.function) if params
      has the wrong static length.
  """
  input_channels = inputs.shape[-1]
  expected = input_channels * channels + channels
  if params.shape[-1] is not None and params.shape[-1] != expected:
    raise errors.ArgumentError(
        'a per-pixel conv from {} to {} channels needs {} parameters per '
        'instance, got {}.'.format(input_channels, channels, expected,
                                   params.shape[-1]), 'dim')
  weights = tf.reshape(params[:, :input_channels * channels],
                       [-1, input_channels, channels])
  biases = params[:, input_channels * channels:expected]
  return (tf.einsum('nhwi,nio->nhwo', inputs, weights) +
          biases[:, tf.newaxis, tf.newaxis, :])


def per_pixel_conditional_conv(inputs, instance_embedding, channels, depth):
  """CondInst dynamic mask head: a D-layer per-instance 1x1 conv stack.

  Args:
    inputs: [N, H, W, C_in] float tensor (the pixel input; C_in static).
    instance_embedding: [N, P] float tensor of per-instance parameters, P =
      conditional_conv_num_params(C_in, channels, depth).
    channels: c = num_init_channels, hidden units.
    depth: D >= 1 layers; for D = 1, C_in must equal c.

  Returns:
    [N, H, W, 1] logits.

  Raises:
    ArgumentError: (a ValueError, also out of a tf.function) if P or C_in
      do not fit; a dynamic P is checked at run time instead.
  """
  input_channels = inputs.shape[-1]
  if input_channels is None:
    raise errors.ArgumentError('cond_inst{} needs a static number of input '
                               'channels.'.format(depth), 'network_type')
  if depth < 1:
    raise errors.ArgumentError('cond_inst depth must be >= 1, got {}.'.format(
        depth), 'network_type')
  if depth == 1 and input_channels != channels:
    raise errors.ArgumentError(
        'cond_inst1 maps the pixel input straight to one logit, so its {} '
        'input channels must equal num_init_channels ({}).'.format(
            input_channels, channels), 'num_init_channels')
  expected = conditional_conv_num_params(input_channels, channels, depth)
  actual = instance_embedding.shape[-1]
  message = ('cond_inst{} on {} input channels with num_init_channels {} '
             'needs an instance embedding of exactly {} values, got '
             '{}.'.format(depth, input_channels, channels, expected, actual))
  if actual is not None and actual != expected:
    raise errors.ArgumentError(message, 'dim')
  if actual is None:
    tf.debugging.assert_equal(tf.shape(instance_embedding)[-1], expected,
                              message=message)

  x = inputs
  offset = 0
  for layer in range(depth):
    in_channels = input_channels if layer == 0 else channels
    out_channels = 1 if layer == depth - 1 else channels
    size = in_channels * out_channels + out_channels
    x = per_pixel_single_conv(
        x, instance_embedding[:, offset:offset + size], out_channels)
    offset += size
    if layer < depth - 1:
      x = tf.nn.relu(x)
  return x


__all__ = ['COND_INST_PATTERN', 'COND_INST_PREFIX', 'EMBEDDING_PROJECTION',
           'IdentityMaskNet',
           'conditional_conv_num_params',
           'embedding_projection', 'is_parameter_free_name',
           'parse_cond_inst_depth', 'per_pixel_conditional_conv',
           'per_pixel_single_conv']
