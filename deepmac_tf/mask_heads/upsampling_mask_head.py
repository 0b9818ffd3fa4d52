"""A catalogue head followed by learned upsampling: the mask branch of
crop-then-segment models whose mask is larger than the crop (Deep-MARC).

    crop [N, S, S, C] -> _net (registry head, width nc) -> upsample
    (Conv2DTranspose nc, kernel = stride = f) -> BN -> ReLU -> project_out
    (Conv2D 1x1, num_outputs) -> [N, f S, f S, num_outputs] float32 logits

num_outputs is 1 for class-agnostic masks, the number of classes for
class-specific ones, 0 for heads whose projection is given by the caller
(MaskX R-CNN predicts it per class: ``call(..., project=False)`` returns the
[N, f S, f S, nc] features and ``ops.class_channel`` projects them).
This is the layout of Mask R-CNN's mask head (and of
Model Garden's deepmac_maskrcnn ``DeepMaskHead``), so with the same head and
width the variable count is the same. The head never knows which
meta-architecture feeds it.
"""

import tensorflow as tf
import tf_keras

from deepmac_tf import errors
from deepmac_tf.layers import empty_batch
from deepmac_tf.mask_heads import registry


def _he_fan_out():
  return tf_keras.initializers.VarianceScaling(
      scale=2.0, mode='fan_out', distribution='untruncated_normal')


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class UpsamplingMaskHead(empty_batch.EmptyBatchSafe, tf_keras.layers.Layer):
  """[N, S, S, C] crops -> [N, f S, f S, num_outputs] mask logits."""

  def __init__(self, network_type, num_init_channels=256, crop_size=14,
               upsample_factor=2, num_outputs=1, use_sync_batch_norm=False,
               **kwargs):
    """Builds the head.

    Args:
      network_type: a registry name with variables (not parameter-free).
      num_init_channels: nc: the head's width and the upsampling width.
      crop_size: S, checked against the head's required divisor.
      upsample_factor: f >= 1, mask size / crop size.
      num_outputs: 1 (class-agnostic), the number of classes, or 0 (no
        projection layer: the caller projects ``project=False`` features).
      use_sync_batch_norm: synchronized batch norm across replicas.
      **kwargs: base Layer arguments (name, dtype, ...).

    Raises:
      ArgumentError: naming the argument (the builder names its config
        field): unknown or parameter-free ``network_type``, a
        ``crop_size`` the head cannot take (raised as ``mask_size``, the
        registry's name for it), ``upsample_factor`` < 1, ``num_outputs``
        < 0.
    """
    super().__init__(**kwargs)
    if registry.is_parameter_free(network_type):
      raise errors.ArgumentError(
          f'{network_type!r} is parameter-free: it needs an instance '
          'embedding and cannot be an upsampling head.', 'network_type')
    if int(upsample_factor) < 1:
      raise errors.ArgumentError(
          f'must be >= 1, got {upsample_factor}.', 'upsample_factor')
    if int(num_outputs) < 0:
      raise errors.ArgumentError(f'must be >= 0, got {num_outputs}.',
                                 'num_outputs')
    self._network_type = network_type
    self._num_init_channels = int(num_init_channels)
    self._crop_size = int(crop_size)
    self._upsample_factor = int(upsample_factor)
    self._num_outputs = int(num_outputs)
    self._use_sync_batch_norm = bool(use_sync_batch_norm)
    self._net = registry.build_mask_head(
        network_type, self._num_init_channels, mask_size=self._crop_size,
        use_sync_batch_norm=self._use_sync_batch_norm)
    self.upsample = tf_keras.layers.Conv2DTranspose(
        self._num_init_channels, self._upsample_factor,
        strides=self._upsample_factor, padding='valid',
        kernel_initializer=_he_fan_out(), name='upsample')
    self.upsample_norm = tf_keras.layers.BatchNormalization(
        synchronized=self._use_sync_batch_norm, name='upsample_norm')
    self.project_out = None
    if self._num_outputs:
      self.project_out = tf_keras.layers.Conv2D(
          self._num_outputs, 1, kernel_initializer=_he_fan_out(),
          name='project_out')

  @property
  def mask_size(self):
    return self._crop_size * self._upsample_factor

  @property
  def upsample_factor(self):
    return self._upsample_factor

  @property
  def num_outputs(self):
    return self._num_outputs

  @property
  def num_features(self):
    """D of the features the last 1x1 projection maps to logits."""
    return self._num_init_channels

  def class_projection(self):
    """([C, D] weights, [C] biases) of the per-class 1x1 projection."""
    kernel = self.project_out.kernel  # [1, 1, D, C]
    return (tf.transpose(tf.reshape(kernel, [self._num_init_channels, -1])),
            self.project_out.bias)

  def call(self, crops, training=None, project=True):
    """Predicts mask logits (or the features the projection takes).

    Args:
      crops: [N, S, S, C] crop features (N may be 0).
      training: Keras training flag (batch norm).
      project: False returns the features before the 1x1 projection (the
        caller picks per-instance channels, ``ops.class_channel``).

    Returns:
      [N, f S, f S, num_outputs] float32 logits, or [N, f S, f S, nc]
      features with ``project=False``.
    """
    x = self._net(tf.cast(crops, self.compute_dtype), training=training)
    if isinstance(x, (list, tuple)):
      x = x[-1]
    x = tf.nn.relu(self.upsample_norm(self.upsample(x), training=training))
    if not project:
      if self.project_out is not None and not self.project_out.built:
        # The caller projects with class_projection(): create its variables
        # here, under this head's name scope.
        self.project_out.build(x.shape)
      return x
    if self.project_out is None:
      raise ValueError('This head has no projection (num_outputs=0); call '
                       'it with project=False.')
    return tf.cast(self.project_out(x), tf.float32)

  def get_config(self):
    config = super().get_config()
    config.update({
        'network_type': self._network_type,
        'num_init_channels': self._num_init_channels,
        'crop_size': self._crop_size,
        'upsample_factor': self._upsample_factor,
        'num_outputs': self._num_outputs,
        'use_sync_batch_norm': self._use_sync_batch_norm,
    })
    return config
