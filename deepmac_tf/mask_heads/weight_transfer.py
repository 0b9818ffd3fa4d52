"""MaskX R-CNN's weight transfer function T ("Learning to Segment Every
Thing", Hu et al.): class embeddings -> the class's mask projection.

    w_seg(c) = T(w_det(c))

w_det(c) [D_in] is class c's detection weights (box-head classifier column,
box-regression columns, or both; a fixed random vector as the control) and
w_seg(c) the weights [D] and bias [1] of the class's output channel of the
mask head's final 1x1 projection over D features. T is a small MLP:

    num_layers = 1: Dense(D + 1)                            (affine)
    num_layers = L: (Dense(hidden_dim) -> act) x (L - 1) -> Dense(D + 1)

with act = LeakyReLU (slope 0.1, the paper's default) or ReLU. Parameters:
sum over layers of (fan_in + 1) * fan_out, e.g. cls+box on a 1024-d box
head, 2 layers, hidden 1024, D = 256:
(5120 + 1) * 1024 + (1024 + 1) * 257 = 5,507,329.

T is applied to the embeddings of each instance's class only (gathered per
instance by the caller), so a model with thousands of classes never
predicts weights for classes it does not see in the batch.
"""

import tensorflow as tf
import tf_keras

from deepmac_tf import errors

LEAKY_RELU = 'leaky_relu'
RELU = 'relu'
ACTIVATIONS = (LEAKY_RELU, RELU)
LEAKY_RELU_SLOPE = 0.1
MAX_LAYERS = 3


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class WeightTransferFunction(tf_keras.layers.Layer):
  """T: [N, D_in] class embeddings -> ([N, D] weights, [N] biases)."""

  def __init__(self, num_features, num_layers=2, hidden_dim=1024,
               activation=LEAKY_RELU, **kwargs):
    """Builds T's dense layers.

    Args:
      num_features: D, the width of the features the predicted 1x1
        projection maps to one logit.
      num_layers: 1 (affine), 2 or 3.
      hidden_dim: width of the hidden layers.
      activation: LEAKY_RELU or RELU (hidden layers only).
      **kwargs: base Layer arguments.

    Raises:
      ArgumentError: bad ``num_layers``, ``hidden_dim`` or ``activation``
        (the builder names its config field).
      ValueError: ``num_features`` < 1.
    """
    super().__init__(**kwargs)
    if not 1 <= int(num_layers) <= MAX_LAYERS:
      raise errors.ArgumentError(
          f'must be 1 (affine) .. {MAX_LAYERS}, got {num_layers}.',
          'num_layers')
    if int(hidden_dim) < 1:
      raise errors.ArgumentError(f'must be >= 1, got {hidden_dim}.',
                                 'hidden_dim')
    if activation not in ACTIVATIONS:
      raise errors.ArgumentError(
          f'must be one of {ACTIVATIONS}, got {activation!r}.', 'activation')
    if int(num_features) < 1:
      raise ValueError(f'num_features must be >= 1, got {num_features}.')
    self._num_features = int(num_features)
    self._num_layers = int(num_layers)
    self._hidden_dim = int(hidden_dim)
    self._activation = activation
    self.hidden = [
        tf_keras.layers.Dense(self._hidden_dim, name=f'hidden_{i}')
        for i in range(self._num_layers - 1)]
    self.predict_weights = tf_keras.layers.Dense(
        self._num_features + 1, name='predict_weights')

  def _act(self, x):
    if self._activation == LEAKY_RELU:
      return tf.nn.leaky_relu(x, alpha=LEAKY_RELU_SLOPE)
    return tf.nn.relu(x)

  def call(self, embeddings):
    """Predicts per-class projections.

    Args:
      embeddings: [N, D_in] class embeddings (one row per instance or class).

    Returns:
      ([N, D] float32 weights, [N] float32 biases).
    """
    x = tf.cast(embeddings, self.compute_dtype)
    for layer in self.hidden:
      x = self._act(layer(x))
    out = tf.cast(self.predict_weights(x), tf.float32)
    return out[:, :self._num_features], out[:, self._num_features]

  def get_config(self):
    config = super().get_config()
    config.update({'num_features': self._num_features,
                   'num_layers': self._num_layers,
                   'hidden_dim': self._hidden_dim,
                   'activation': self._activation})
    return config


def transfer_parameter_count(input_dim, num_features, num_layers,
                             hidden_dim):
  """T's parameter count from its dimensions (docs, tests, benchmarks)."""
  dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [num_features + 1]
  return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(dims, dims[1:]))
