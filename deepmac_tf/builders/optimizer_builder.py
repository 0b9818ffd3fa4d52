"""Builds a tf_keras optimizer and its learning-rate schedule from
``train_config.optimizer`` (the OD API's ``optimizer_builder.build``).

* ``momentum_optimizer`` -> ``tf_keras.optimizers.SGD(momentum=...)``;
  ``adam_optimizer`` -> ``Adam(epsilon=...)``; ``rms_prop_optimizer`` ->
  ``RMSprop(rho=decay, momentum=..., epsilon=...)``.
* Learning rates: ``learning_schedules`` (constant, exponential decay with
  burn-in, manual steps with warmup, cosine decay with warmup and hold). The
  optimizer calls the schedule with its own ``iterations`` counter, which the
  training checkpoint saves, so a resumed run continues the schedule.
* ``train_config.gradient_clipping_by_norm`` > 0 clips the (replica-summed)
  gradients to that global norm (``global_clipnorm``).
* ``use_moving_average`` keeps an exponential moving average of the trainable
  weights in the optimizer (``use_ema``, momentum ``moving_average_decay``),
  saved in the training checkpoint under ``optimizer``; the model's own
  weights stay the raw ones (``training.moving_average`` swaps them in).

Every invalid value raises one ``ConfigError`` naming the field.
"""

import tf_keras

from deepmac_tf.builders import learning_schedules
from deepmac_tf.errors import ConfigError

OPTIMIZER_FIELD = 'train_config.optimizer'
CLIPPING_FIELD = 'train_config.gradient_clipping_by_norm'
_OPTIMIZER_NAMES = ('adam_optimizer', 'momentum_optimizer',
                    'rms_prop_optimizer')


def _require(condition, field, message):
  if not condition:
    raise ConfigError(f'{field}: {message}')


def build_learning_rate(learning_rate_config, field):
  """``LearningRate`` proto -> a ``LearningRateSchedule``.

  Args:
    learning_rate_config: ``optimizer_pb2.LearningRate``.
    field: its dotted path, for error messages.

  Raises:
    ConfigError: nothing set, or an invalid value (naming the field).
  """
  kind = learning_rate_config.WhichOneof('learning_rate')
  if kind is None:
    raise ConfigError(
        f'{field}: no schedule set; expected one of constant_learning_rate, '
        'exponential_decay_learning_rate, manual_step_learning_rate, '
        'cosine_decay_learning_rate.')
  config = getattr(learning_rate_config, kind)
  prefix = f'{field}.{kind}'
  if kind == 'constant_learning_rate':
    _require(config.learning_rate > 0, f'{prefix}.learning_rate',
             f'must be > 0, got {config.learning_rate}.')
    return learning_schedules.ConstantLearningRate(config.learning_rate)
  if kind == 'exponential_decay_learning_rate':
    _require(config.initial_learning_rate > 0,
             f'{prefix}.initial_learning_rate',
             f'must be > 0, got {config.initial_learning_rate}.')
    _require(config.decay_steps > 0, f'{prefix}.decay_steps',
             f'must be > 0, got {config.decay_steps}.')
    _require(config.decay_factor > 0, f'{prefix}.decay_factor',
             f'must be > 0, got {config.decay_factor}.')
    _require(config.burnin_learning_rate >= 0,
             f'{prefix}.burnin_learning_rate',
             f'must be >= 0, got {config.burnin_learning_rate}.')
    _require(config.min_learning_rate >= 0, f'{prefix}.min_learning_rate',
             f'must be >= 0, got {config.min_learning_rate}.')
    return learning_schedules.ExponentialDecayWithBurnin(
        config.initial_learning_rate, config.decay_steps,
        config.decay_factor, staircase=config.staircase,
        burnin_learning_rate=config.burnin_learning_rate,
        burnin_steps=config.burnin_steps,
        min_learning_rate=config.min_learning_rate)
  if kind == 'manual_step_learning_rate':
    _require(config.initial_learning_rate >= 0,
             f'{prefix}.initial_learning_rate',
             f'must be >= 0, got {config.initial_learning_rate}.')
    boundaries = [entry.step for entry in config.schedule]
    rates = ([config.initial_learning_rate] +
             [entry.learning_rate for entry in config.schedule])
    _require(all(b > 0 for b in boundaries), f'{prefix}.schedule.step',
             f'steps must be > 0, got {boundaries}.')
    _require(all(a < b for a, b in zip(boundaries, boundaries[1:])),
             f'{prefix}.schedule.step',
             f'steps must be strictly increasing, got {boundaries}.')
    _require(all(r >= 0 for r in rates), f'{prefix}.schedule.learning_rate',
             f'rates must be >= 0, got {rates[1:]}.')
    _require(not config.warmup or boundaries, f'{prefix}.warmup',
             'needs at least one schedule entry (warmup ramps to its rate).')
    return learning_schedules.ManualStepWithWarmup(boundaries, rates,
                                                   warmup=config.warmup)
  # cosine_decay_learning_rate
  _require(config.learning_rate_base > 0, f'{prefix}.learning_rate_base',
           f'must be > 0, got {config.learning_rate_base}.')
  _require(config.total_steps > 0, f'{prefix}.total_steps',
           f'must be > 0, got {config.total_steps}.')
  _require(config.warmup_steps + config.hold_base_rate_steps
           <= config.total_steps, f'{prefix}.warmup_steps',
           f'warmup_steps ({config.warmup_steps}) + hold_base_rate_steps '
           f'({config.hold_base_rate_steps}) must not exceed total_steps '
           f'({config.total_steps}).')
  if config.warmup_steps > 0:
    _require(0 <= config.warmup_learning_rate <= config.learning_rate_base,
             f'{prefix}.warmup_learning_rate',
             f'must be in [0, learning_rate_base={config.learning_rate_base}]'
             f', got {config.warmup_learning_rate}.')
  return learning_schedules.CosineDecayWithWarmup(
      config.learning_rate_base, config.total_steps,
      warmup_learning_rate=config.warmup_learning_rate,
      warmup_steps=config.warmup_steps,
      hold_base_rate_steps=config.hold_base_rate_steps)


def build(optimizer_config, gradient_clipping_by_norm=0.0, jit_compile=False):
  """Builds ``(optimizer, learning_rate_schedule)``.

  Args:
    optimizer_config: ``optimizer_pb2.Optimizer`` (``train_config.optimizer``).
    gradient_clipping_by_norm: ``train_config.gradient_clipping_by_norm``;
      > 0 clips gradients to this global norm, 0 disables clipping.
    jit_compile: XLA-compile the optimizer update (off by default: CPUs gain
      nothing and some hosts lack XLA kernels).

  Returns:
    (a ``tf_keras.optimizers.Optimizer``, its ``LearningRateSchedule``).

  Raises:
    ConfigError: naming the field of any invalid or missing setting.
  """
  kind = optimizer_config.WhichOneof('optimizer')
  if kind is None:
    raise ConfigError(f'{OPTIMIZER_FIELD}: no optimizer set; expected one of '
                      f'{", ".join(_OPTIMIZER_NAMES)}.')
  config = getattr(optimizer_config, kind)
  prefix = f'{OPTIMIZER_FIELD}.{kind}'
  if not config.HasField('learning_rate'):
    raise ConfigError(f'{prefix}.learning_rate: not set.')
  schedule = build_learning_rate(config.learning_rate,
                                 f'{prefix}.learning_rate')
  _require(gradient_clipping_by_norm >= 0, CLIPPING_FIELD,
           f'must be >= 0 (0 disables clipping), got '
           f'{gradient_clipping_by_norm}.')
  common = {
      'global_clipnorm': (float(gradient_clipping_by_norm)
                          if gradient_clipping_by_norm > 0 else None),
      'jit_compile': jit_compile,
  }
  if optimizer_config.use_moving_average:
    decay = optimizer_config.moving_average_decay
    _require(0.0 < decay < 1.0, f'{OPTIMIZER_FIELD}.moving_average_decay',
             f'must be in (0, 1), got {decay}.')
    # ema_overwrite_frequency=None: the model keeps its raw weights; the
    # average is swapped in only for evaluation (RMSprop's default of 100
    # would silently overwrite the training weights every 100 steps).
    common.update(use_ema=True, ema_momentum=float(decay),
                  ema_overwrite_frequency=None)
  if kind == 'momentum_optimizer':
    momentum = config.momentum_optimizer_value
    _require(0.0 <= momentum < 1.0, f'{prefix}.momentum_optimizer_value',
             f'must be in [0, 1), got {momentum}.')
    optimizer = tf_keras.optimizers.SGD(learning_rate=schedule,
                                        momentum=momentum, **common)
  elif kind == 'adam_optimizer':
    _require(config.epsilon > 0, f'{prefix}.epsilon',
             f'must be > 0, got {config.epsilon}.')
    optimizer = tf_keras.optimizers.Adam(learning_rate=schedule,
                                         epsilon=config.epsilon, **common)
  else:  # rms_prop_optimizer
    momentum = config.momentum_optimizer_value
    _require(0.0 <= momentum < 1.0, f'{prefix}.momentum_optimizer_value',
             f'must be in [0, 1), got {momentum}.')
    _require(0.0 <= config.decay < 1.0, f'{prefix}.decay',
             f'must be in [0, 1), got {config.decay}.')
    _require(config.epsilon > 0, f'{prefix}.epsilon',
             f'must be > 0, got {config.epsilon}.')
    optimizer = tf_keras.optimizers.RMSprop(
        learning_rate=schedule, rho=config.decay, momentum=momentum,
        epsilon=config.epsilon, **common)
  return optimizer, schedule
