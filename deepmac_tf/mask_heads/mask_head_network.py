"""MaskHeadNetwork: instance embedding + pixel crop -> per-pixel mask logits.

The OD API's `MaskHeadNetwork` (spec §3.1) with the same checkpoint children:
`_net` (the registry's core network) and `project_out` (Conv2D 1 filter,
1x1, with bias; an identity for parameter-free heads).

With ``num_outputs`` > 1 the head is class-specific (one output channel per
class: the teacher-student student on Deep-MAC); ``call(..., project=False)``
returns the features before ``project_out`` and ``class_projection()`` its
per-class weights, so callers compute only each instance's class channel
(``ops.class_channel``).
"""

import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf.layers import empty_batch
from deepmac_tf.mask_heads import parameter_free
from deepmac_tf.mask_heads import registry


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class MaskHeadNetwork(tf_keras.layers.Layer):
  """Class-agnostic mask head: [N, D] and [N, S, S, E] -> [N, S, S] logits.

  Input assembly: with use_instance_embedding the instance embedding is tiled
  over the crop and concatenated AFTER the pixel channels (y, x, pixel
  embedding, instance embedding). Then `_net` runs; a list output (hourglass)
  contributes its last element; if the result has more than one channel,
  `project_out` maps it to one. The last axis is squeezed.

  Parameter-free heads use the instance embedding differently:
  embedding_projection takes <instance embedding, pixel input(p)> per pixel,
  cond_inst<D> runs the per-instance conv stack the embedding encodes. Both
  require use_instance_embedding=False.

  Logits are returned in float32 whatever the dtype policy, so losses and
  sigmoids downstream run at full precision under mixed_bfloat16.
  """

  def __init__(self, network_type, num_init_channels=64,
               use_instance_embedding=True, mask_size=None,
               use_sync_batch_norm=False, num_outputs=1, **kwargs):
    """Builds the head.

    Args:
      network_type: a registry name (registry.mask_head_names()).
      num_init_channels: nc, the base width of the head.
      use_instance_embedding: concatenate the tiled instance embedding to the
        pixel input (must be False for parameter-free heads).
      mask_size: S; required by the fully connected heads.
      use_sync_batch_norm: synchronized batch norm across replicas.
      num_outputs: output channels: 1 (class-agnostic), the number of
        classes (class-specific; not for parameter-free heads) or 0 (no
        projection layer: the caller projects ``project=False`` features,
        e.g. with weights predicted by MaskX's weight transfer).
      **kwargs: base Layer arguments (name, dtype, ...).

    Raises:
      ArgumentError: unknown network_type, bad sizes, a parameter-free
        head with use_instance_embedding or num_outputs > 1.
    """
    super().__init__(**kwargs)
    if (use_instance_embedding and
        registry.is_parameter_free(network_type)):
      raise errors.ArgumentError(
          'must be false for the parameter-free network_type {!r} (the '
          'instance embedding is its weights, not an input).'.format(
              network_type), 'use_instance_embedding')
    if int(num_outputs) < 0 or (int(num_outputs) != 1 and
                                registry.is_parameter_free(network_type)):
      raise errors.ArgumentError(
          f'must be 1 for the parameter-free network_type {network_type!r} '
          f'and >= 0 otherwise, got {num_outputs}.', 'num_outputs')
    self._num_outputs = int(num_outputs)
    self._network_type = network_type
    self._num_init_channels = num_init_channels
    self._use_instance_embedding = bool(use_instance_embedding)
    self._mask_size = mask_size
    self._use_sync_batch_norm = bool(use_sync_batch_norm)
    self._cond_inst_depth = parameter_free.parse_cond_inst_depth(network_type)
    self._parameter_free = registry.is_parameter_free(network_type)

    self._net = registry.build_mask_head(
        network_type, num_init_channels, mask_size=mask_size,
        use_sync_batch_norm=use_sync_batch_norm)
    if self._parameter_free:
      self.project_out = tf_keras.layers.Identity(name='project_out')
    elif not self._num_outputs:
      # The caller projects ``project=False`` features (MaskX weight
      # transfer predicts each class's projection).
      self.project_out = None
    else:
      self.project_out = tf_keras.layers.Conv2D(
          self._num_outputs, 1, padding='same', name='project_out')

  @property
  def network_type(self):
    return self._network_type

  @property
  def num_outputs(self):
    return self._num_outputs

  def feature_channels(self, input_channels):
    """D: channels of the features ``call(..., project=False)`` returns
    for inputs of ``input_channels`` channels (builds ``_net``)."""
    size = self._mask_size or registry.required_mask_size_divisor(
        self._network_type)
    shape = self._net.compute_output_shape(
        tf.TensorShape([None, size, size, int(input_channels)]))
    if isinstance(shape, (list, tuple)) and not isinstance(
        shape, tf.TensorShape):
      shape = shape[-1]
    return int(tf.TensorShape(shape)[-1])

  def class_projection(self):
    """([C, D] weights, [C] biases) of the per-class 1x1 projection (built
    by the first call)."""
    kernel = self.project_out.kernel  # [1, 1, D, C]
    return (tf.transpose(tf.reshape(kernel, [kernel.shape[2], -1])),
            self.project_out.bias)

  def call(self, instance_embedding, pixel_input, training=None,
           project=True):
    """Predicts mask logits (or the features the projection takes).

    Args:
      instance_embedding: [N, D] float tensor.
      pixel_input: [N, S, S, E] float tensor (coordinates first, then the
        cropped pixel embedding). N may be 0.
      training: Keras training flag, forwarded to `_net` (batch norm).
      project: False returns the [N, S, S, F] features before
        `project_out` (class-specific heads; ``class_projection``).

    Returns:
      [N, S, S] float32 logits ([N, S, S, num_outputs] when num_outputs >
      1), or the features with ``project=False``.
    """
    instance_embedding = tf.cast(instance_embedding, self.compute_dtype)
    pixel_input = tf.cast(pixel_input, self.compute_dtype)
    # N == 0 is run as one zero instance, sliced off at the end; when N is
    # known to be 0 the stand-in runs in inference mode, so batch-norm
    # statistics stay put (as in empty_batch.EmptyBatchSafe).
    if pixel_input.shape[0] == 0:
      training = False
    instance_embedding, num_instances = empty_batch.pad_if_empty(
        instance_embedding)
    pixel_input, _ = empty_batch.pad_if_empty(pixel_input)

    if self._use_instance_embedding:
      # Broadcasting (not tf.tile) keeps the static shape.
      tiled = (tf.zeros_like(pixel_input[..., :1]) +
               instance_embedding[:, tf.newaxis, tf.newaxis, :])
      inputs = tf.concat([pixel_input, tiled], axis=-1)
    else:
      inputs = pixel_input

    if self._network_type == parameter_free.EMBEDDING_PROJECTION:
      pixels = self._net(inputs, training=training)
      if pixels.shape[-1] != instance_embedding.shape[-1]:
        raise errors.ArgumentError(
            'embedding_projection needs an instance embedding as wide as the '
            'pixel input ({} vs {} channels).'.format(
                instance_embedding.shape[-1], pixels.shape[-1]), 'dim')
      out = parameter_free.embedding_projection(
          instance_embedding[:, tf.newaxis, tf.newaxis, :], pixels)
    elif self._cond_inst_depth is not None:
      out = parameter_free.per_pixel_conditional_conv(
          self._net(inputs, training=training), instance_embedding,
          channels=self._num_init_channels, depth=self._cond_inst_depth)
    else:
      out = self._net(inputs, training=training)
      if isinstance(out, (list, tuple)):
        out = out[-1]

    if not project:
      if self.project_out is not None and not self.project_out.built:
        # The caller projects with class_projection(): create its
        # variables here, under this head's name scope.
        self.project_out.build(out.shape)
      return tf.cast(out[:num_instances], tf.float32)
    if self.project_out is None:
      raise ValueError('This head has no projection (num_outputs=0); call '
                       'it with project=False.')
    if (self._num_outputs > 1 or out.shape[-1] is None or
        out.shape[-1] > 1):
      out = self.project_out(out)
    if self._num_outputs > 1:
      return tf.cast(out[:num_instances], tf.float32)
    return tf.cast(out[:num_instances, ..., 0], tf.float32)

  def get_config(self):
    config = super().get_config()
    config.update({
        'network_type': self._network_type,
        'num_init_channels': self._num_init_channels,
        'use_instance_embedding': self._use_instance_embedding,
        'mask_size': self._mask_size,
        'use_sync_batch_norm': self._use_sync_batch_norm,
        'num_outputs': self._num_outputs,
    })
    return config


__all__ = ['MaskHeadNetwork']
