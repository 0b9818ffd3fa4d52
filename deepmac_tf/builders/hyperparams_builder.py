"""``Hyperparams`` messages -> ``LayerHyperparams`` (the one home of that
mapping), and the one log line for fields accepted without effect.

Mapping (the OD API's meaning of each field):
- ``op``: CONV or FC; must name the kind of layer the field configures.
- ``activation``: NONE / RELU / RELU_6 / SWISH -> linear / relu / relu6 /
  swish.
- ``batch_norm`` / ``sync_batch_norm``: ``decay`` -> momentum, ``epsilon``,
  ``center``, ``scale``, ``train`` (False: statistics and gamma / beta
  frozen); absent: no batch norm (where the layers allow it).
  ``group_norm``: a ConfigError.
- ``initializer``: truncated_normal (mean, stddev), random_normal (mean,
  stddev), variance_scaling (factor, uniform, mode), keras_initializer_by_name
  (a tf_keras initializer name) -> the Keras initializer of every kernel of
  the part.
- ``regularizer``: L2 weight decay of the part
  (``mask_rcnn_builder.l2_weight_decay``; the OD API's Keras convention,
  weight * sum(kernel^2) / 2). L1: a ConfigError.
- ``regularize_depthwise``: no depthwise convolutions here: accepted, no
  effect (logged by ``faster_rcnn_options.check_fields``, which the callers
  run first). ``force_use_bias``: honoured by the layers we write.
"""

from absl import logging
import tf_keras

from deepmac_tf.errors import ConfigError
from deepmac_tf.layers.layer_hyperparams import LayerHyperparams
from deepmac_tf.protos import hyperparams_pb2

_H = hyperparams_pb2.Hyperparams
_ACTIVATIONS = {_H.NONE: 'linear', _H.RELU: 'relu', _H.RELU_6: 'relu6',
                _H.SWISH: 'swish'}
_MODES = {hyperparams_pb2.VarianceScalingInitializer.FAN_IN: 'fan_in',
          hyperparams_pb2.VarianceScalingInitializer.FAN_OUT: 'fan_out',
          hyperparams_pb2.VarianceScalingInitializer.FAN_AVG: 'fan_avg'}


def log_no_effect(field, reason):
  """The one log line for a config field that is accepted and changes
  nothing here (a TPU implementation detail, or already how we work)."""
  logging.info('%s: accepted, no effect here because %s', field, reason)


def initializer_config(initializer, field):
  """``Initializer`` message -> Keras initializer config dict (or None)."""
  kind = initializer.WhichOneof('initializer_oneof')
  if kind is None:
    return None
  if kind == 'truncated_normal_initializer':
    i = initializer.truncated_normal_initializer
    return {'class_name': 'TruncatedNormal',
            'config': {'mean': i.mean, 'stddev': i.stddev}}
  if kind == 'keras_initializer_by_name':
    name = initializer.keras_initializer_by_name
    try:
      instance = tf_keras.initializers.get(name)
    except ValueError:
      raise ConfigError(f'{field}.keras_initializer_by_name: {name!r} is not '
                        'a tf_keras initializer name.') from None
    return {'class_name': type(instance).__name__,
            'config': instance.get_config()}
  if kind == 'random_normal_initializer':
    i = initializer.random_normal_initializer
    return {'class_name': 'RandomNormal',
            'config': {'mean': i.mean, 'stddev': i.stddev}}
  i = initializer.variance_scaling_initializer
  if i.factor <= 0:
    raise ConfigError(f'{field}.variance_scaling_initializer.factor: must be '
                      f'positive, got {i.factor}.')
  return {'class_name': 'VarianceScaling',
          'config': {'scale': i.factor, 'mode': _MODES[i.mode],
                     'distribution': ('uniform' if i.uniform
                                      else 'truncated_normal')}}


def from_proto(hyperparams, field, op=_H.CONV, batch_norm_trainable=True,
               use_sync_batch_norm=False):
  """``Hyperparams`` -> ``LayerHyperparams``.

  Args:
    hyperparams: the message.
    field: its config path, for errors and logs.
    op: the layer kind it must configure (``Hyperparams.CONV`` / ``FC``).
    batch_norm_trainable: the feature extractor's ``batch_norm_trainable``
      (ANDed with ``batch_norm.train``).
    use_sync_batch_norm: the training driver's multi-replica setting.

  Raises:
    ConfigError: naming the field (group_norm, an explicitly set wrong op,
      bad values).
  """
  # An unset op is the proto default (CONV); the OD API's Keras builders
  # ignore it, so only an explicitly contradictory op is an error.
  if hyperparams.HasField('op') and hyperparams.op != op:
    raise ConfigError(f'{field}.op: {_H.Op.Name(hyperparams.op)} here '
                      f'configures {_H.Op.Name(op)} layers; set op: '
                      f'{_H.Op.Name(op)}.')
  normalizer = hyperparams.WhichOneof('normalizer_oneof')
  if normalizer == 'group_norm':
    raise ConfigError(f'{field}.group_norm: supported by the OD API, not by '
                      'deepmac_tf (use batch_norm or sync_batch_norm).')
  kwargs = dict(
      activation=_ACTIVATIONS[hyperparams.activation],
      kernel_initializer=initializer_config(hyperparams.initializer,
                                            f'{field}.initializer'),
      force_use_bias=hyperparams.force_use_bias,
      batch_norm=normalizer is not None,
      sync_batch_norm=use_sync_batch_norm or normalizer == 'sync_batch_norm')
  if normalizer is not None:
    norm = getattr(hyperparams, normalizer)
    if not 0.0 <= norm.decay < 1.0 or norm.epsilon <= 0:
      raise ConfigError(f'{field}.{normalizer}: decay must be in [0, 1) and '
                        f'epsilon positive, got {norm.decay} / '
                        f'{norm.epsilon}.')
    kwargs.update(batch_norm_momentum=norm.decay,
                  batch_norm_epsilon=norm.epsilon,
                  batch_norm_center=norm.center, batch_norm_scale=norm.scale,
                  batch_norm_trainable=norm.train and batch_norm_trainable)
  else:
    kwargs.update(batch_norm_trainable=batch_norm_trainable)
  return LayerHyperparams(**kwargs)
