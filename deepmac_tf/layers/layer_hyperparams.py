"""Layer settings of one part of a model (the OD API's ``Hyperparams``), as
plain data, and the one place that puts them into Keras layers.

``builders/hyperparams_builder.py`` fills ``LayerHyperparams`` from a
``Hyperparams`` message; backbones and heads take it as an argument (they
never read protos). Two ways in:

- layers we write ask it for their pieces: ``activation_fn()``,
  ``batch_norm_layer(name)``, ``conv_kwargs()`` (kernel initializer);
- layers we take from Model Garden get ``activation`` / ``norm_momentum`` /
  ``norm_epsilon`` through their constructors
  (``model_garden_kwargs()``), and ``apply_to_layer`` sets what those
  constructors do not take: kernel initializers (assigned to kernels that
  exist, set on layers not built yet) and batch-norm center / scale on
  layers not built yet.

Regularizer weights are not here: they are L2 weight decay per part of the
model (``mask_rcnn_params.l2_weight_decay``), added by the model's
``regularization_losses``.
"""

import dataclasses

import tensorflow as tf
import tf_keras

ACTIVATIONS = ('relu', 'relu6', 'swish', 'linear')


@dataclasses.dataclass(frozen=True)
class LayerHyperparams:
  """Activation, normalization and kernel initializer of a part.

  Attributes:
    activation: one of ACTIVATIONS.
    batch_norm: whether convolutions are followed by batch norm.
    batch_norm_momentum / batch_norm_epsilon / batch_norm_center /
      batch_norm_scale: the batch-norm settings (the OD API's decay,
      epsilon, center, scale).
    batch_norm_trainable: False = batch norm keeps its statistics and
      gamma / beta fixed in training.
    sync_batch_norm: synchronized across replicas.
    kernel_initializer: a Keras initializer config dict ({'class_name':
      ..., 'config': ...}) or None (the layer's own default).
    force_use_bias: convolutions followed by batch norm keep a bias.
  """
  activation: str = 'relu'
  batch_norm: bool = True
  batch_norm_momentum: float = 0.99
  batch_norm_epsilon: float = 1.001e-5
  batch_norm_center: bool = True
  batch_norm_scale: bool = True
  batch_norm_trainable: bool = True
  sync_batch_norm: bool = False
  kernel_initializer: dict | None = None
  force_use_bias: bool = False

  def __post_init__(self):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f'activation must be one of {ACTIVATIONS}, got '
                       f'{self.activation!r}.')

  def activation_fn(self):
    """The activation as a function of a tensor."""
    return {'relu': tf.nn.relu, 'relu6': tf.nn.relu6, 'swish': tf.nn.swish,
            'linear': tf.identity}[self.activation]

  def activation_layer(self, name=None):
    return tf_keras.layers.Activation(self.activation_fn(), name=name)

  def initializer(self):
    """A fresh Keras initializer, or None for the layer's default."""
    if self.kernel_initializer is None:
      return None
    return tf_keras.initializers.deserialize(dict(self.kernel_initializer))

  def conv_kwargs(self, default_initializer='glorot_uniform'):
    """The kernel_initializer argument of Conv2D / Dense. (Regularizers are
    not layer arguments: the model's ``regularization_losses`` adds the L2
    weight decay of each part, ``mask_rcnn_losses.l2_weight_decay_losses``.)"""
    return {'kernel_initializer': self.initializer() or default_initializer}

  def use_bias(self):
    """Convolutions followed by batch norm need no bias (its beta is one)."""
    return self.force_use_bias or not (self.batch_norm and
                                       self.batch_norm_center)

  def batch_norm_layer(self, name):
    """A batch-norm layer with these settings (frozen when not trainable:
    ``FrozenBatchNorm`` runs in inference mode whatever ``training``)."""
    kwargs = dict(momentum=self.batch_norm_momentum,
                  epsilon=self.batch_norm_epsilon,
                  center=self.batch_norm_center,
                  scale=self.batch_norm_scale,
                  synchronized=self.sync_batch_norm, name=name)
    if self.batch_norm_trainable:
      return tf_keras.layers.BatchNormalization(**kwargs)
    return FrozenBatchNorm(**kwargs)

  def model_garden_kwargs(self):
    """Constructor arguments of Model Garden backbones / decoders / heads."""
    return {'activation': self.activation,
            'use_sync_bn': self.sync_batch_norm,
            'norm_momentum': self.batch_norm_momentum,
            'norm_epsilon': self.batch_norm_epsilon}


@tf_keras.saving.register_keras_serializable(package='deepmac_tf')
class FrozenBatchNorm(tf_keras.layers.BatchNormalization):
  """Batch norm that always normalizes with its moving statistics and never
  trains gamma / beta (the OD API's ``batch_norm_trainable: false``)."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.trainable = False

  def call(self, inputs, training=None):
    return super().call(inputs, training=False)


def model_garden_kwargs(hyperparams, use_sync_batch_norm, norm_momentum,
                        norm_epsilon):
  """Constructor arguments of a Model Garden part: those of
  ``hyperparams``, or (None) the model's batch-norm settings."""
  if hyperparams is not None:
    return hyperparams.model_garden_kwargs()
  return {'use_sync_bn': use_sync_batch_norm, 'norm_momentum': norm_momentum,
          'norm_epsilon': norm_epsilon}


def configured(layer, hyperparams):
  """``layer`` with ``apply_to_layer(layer, hyperparams)`` done (nothing
  for None). Layers that make their sub-layers in ``build`` (Model Garden
  heads) are built first with ``build(None)``, which creates no variable."""
  if hyperparams is None:
    return layer
  if not layer.built:
    layer.build(None)
  apply_to_layer(layer, hyperparams)
  return layer


def _sublayers(layer):
  return [l for l in layer._flatten_layers(include_self=True)]  # pylint: disable=protected-access


def apply_to_layer(layer, hyperparams):
  """Sets what Model Garden constructors do not take on ``layer`` and every
  layer inside it: kernel initializers (re-drawn for kernels that exist,
  set for layers not built yet) and batch-norm center / scale (layers not
  built yet only).

  Call eagerly, right after construction.

  Raises:
    ValueError: center / scale differ from an already built batch norm.
  """
  for sub in _sublayers(layer):
    if isinstance(sub, tf_keras.layers.BatchNormalization):
      if sub.built and (sub.center, sub.scale) != (
          hyperparams.batch_norm_center, hyperparams.batch_norm_scale):
        raise ValueError(
            f'batch norm {sub.name} is built with center={sub.center}, '
            f'scale={sub.scale}; these layers cannot take center='
            f'{hyperparams.batch_norm_center}, scale='
            f'{hyperparams.batch_norm_scale}.')
      sub.center = hyperparams.batch_norm_center
      sub.scale = hyperparams.batch_norm_scale
      continue
    if hyperparams.kernel_initializer is None or not hasattr(
        sub, 'kernel_initializer'):
      continue
    sub.kernel_initializer = hyperparams.initializer()
    kernel = getattr(sub, 'kernel', None)
    if sub.built and kernel is not None:
      kernel.assign(sub.kernel_initializer(kernel.shape, kernel.dtype))
