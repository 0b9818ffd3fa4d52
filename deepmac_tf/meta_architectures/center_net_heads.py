"""Dense per-stage prediction heads of CenterNet (and Deep-MAC's embeddings).

A head is a tf_keras ``Sequential`` of [Conv2D(f, k, 'same'), ReLU] per
(f, k) pair (``SeparableConv2D`` with ``use_depthwise``, the OD API's
``model.center_net.use_depthwise``), then a 1x1 Conv2D to the output
channels. With the defaults
(num_filters=[256], kernel_sizes=[3]) the checkpoint holds
``layer_with_weights-0`` (the 3x3 conv), ``layer-1`` (ReLU) and
``layer_with_weights-1`` (the 1x1 output conv), as in the OD API.
"""

from collections.abc import Sequence

import tf_keras

from deepmac_tf.meta_architectures import center_net_params


def make_prediction_net(num_out_channels: int,
                        kernel_sizes: Sequence[int] = (
                            center_net_params.DEFAULT_HEAD_KERNEL_SIZES),
                        num_filters: Sequence[int] = (
                            center_net_params.DEFAULT_HEAD_NUM_FILTERS),
                        bias_fill: float | None = None,
                        name: str | None = None,
                        use_depthwise: bool = False) -> tf_keras.Sequential:
  """Builds one head: hidden convs with ReLU, then a 1x1 output conv.

  Maps [batch, h, w, c] features to [batch, h, w, num_out_channels]. Layers
  are created under the current global dtype policy (so under
  ``mixed_bfloat16`` the head computes in bfloat16; callers cast the output).

  Args:
    num_out_channels: channels of the output.
    kernel_sizes: kernel size of each hidden conv: an int k (k x k) or a
      (height, width) pair (e.g. (1, 3), the OD API's unit-height conv).
    num_filters: filters of each hidden conv (same length as kernel_sizes).
    bias_fill: constant initial bias of the output conv (e.g. -2.19 for a
      heatmap whose prior is 0.1); None = zeros.
    name: optional Keras name of the Sequential.
    use_depthwise: hidden convs are depthwise-separable (the output conv
      stays a 1x1 Conv2D).

  Returns:
    A ``tf_keras.Sequential`` (weights are created on the first call).

  Raises:
    ValueError: kernel_sizes and num_filters differ in length.
  """
  kernel_sizes = tuple(kernel_sizes)
  num_filters = tuple(num_filters)
  if len(kernel_sizes) != len(num_filters):
    raise ValueError('make_prediction_net: num_filters and kernel_sizes must '
                     f'have the same length, got {list(num_filters)} and '
                     f'{list(kernel_sizes)}.')
  layers = []
  conv = (tf_keras.layers.SeparableConv2D if use_depthwise
          else tf_keras.layers.Conv2D)
  for filters, kernel_size in zip(num_filters, kernel_sizes):
    layers.append(conv(filters, kernel_size, padding='same'))
    layers.append(tf_keras.layers.ReLU())
  bias_initializer = 'zeros'
  if bias_fill is not None:
    bias_initializer = tf_keras.initializers.Constant(bias_fill)
  layers.append(tf_keras.layers.Conv2D(num_out_channels, 1,
                                       bias_initializer=bias_initializer))
  return tf_keras.Sequential(layers, name=name)


def make_prediction_net_list(num_stages: int, num_out_channels: int,
                             kernel_sizes: Sequence[int] = (
                                 center_net_params.DEFAULT_HEAD_KERNEL_SIZES),
                             num_filters: Sequence[int] = (
                                 center_net_params.DEFAULT_HEAD_NUM_FILTERS),
                             bias_fill: float | None = None,
                             use_depthwise: bool = False):
  """One independent head per backbone stage (weights are not shared).

  Args:
    num_stages: number of backbone outputs.
    num_out_channels, kernel_sizes, num_filters, bias_fill, use_depthwise:
      as in ``make_prediction_net``.

  Returns:
    list of ``num_stages`` ``tf_keras.Sequential`` heads.
  """
  return [make_prediction_net(num_out_channels, kernel_sizes, num_filters,
                              bias_fill, use_depthwise=use_depthwise)
          for _ in range(num_stages)]
