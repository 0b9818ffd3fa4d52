"""Learning-rate schedules of the OD API's ``optimizer.proto``.

Each schedule is a serializable ``tf_keras.optimizers.schedules.
LearningRateSchedule``: ``schedule(step)`` maps a scalar step (any integer or
float dtype) to a float32 scalar learning rate, so it can be handed to a
tf_keras optimizer (which calls it with ``optimizer.iterations``) and saved
with ``get_config`` / ``from_config``.

Semantics follow the OD API's ``utils/learning_schedules.py``:

* ``ExponentialDecayWithBurnin``: ``burnin_learning_rate`` (default: the
  initial rate) for ``step < burnin_steps``, then
  ``initial * decay_factor ** ((step - burnin_steps) / decay_steps)``
  (floored exponent when ``staircase``), never below ``min_learning_rate``.
* ``ManualStepWithWarmup``: piecewise constant, ``rates[i]`` from
  ``boundaries[i - 1]`` on (``rates[0]`` before the first boundary). With
  ``warmup`` the rate ramps linearly from ``rates[0]`` at step 0 to
  ``rates[1]`` at ``boundaries[0]`` (the OD API's ``manual_stepping``).
* ``CosineDecayWithWarmup``: linear warmup from ``warmup_learning_rate`` to
  ``learning_rate_base`` over ``warmup_steps``, hold the base rate for
  ``hold_base_rate_steps``, cosine decay to 0 at ``total_steps``, 0 after.
"""

import math

import tensorflow as tf
import tf_keras

_SERIALIZABLE_PACKAGE = 'deepmac_tf'


@tf_keras.utils.register_keras_serializable(package=_SERIALIZABLE_PACKAGE)
class ConstantLearningRate(
    tf_keras.optimizers.schedules.LearningRateSchedule):
  """The same rate at every step."""

  def __init__(self, learning_rate):
    self.learning_rate = float(learning_rate)

  def __call__(self, step):
    del step
    return tf.constant(self.learning_rate, tf.float32)

  def get_config(self):
    return {'learning_rate': self.learning_rate}


@tf_keras.utils.register_keras_serializable(package=_SERIALIZABLE_PACKAGE)
class ExponentialDecayWithBurnin(
    tf_keras.optimizers.schedules.LearningRateSchedule):
  """Exponential decay after a constant burn-in phase (see module doc)."""

  def __init__(self, initial_learning_rate, decay_steps, decay_factor,
               staircase=True, burnin_learning_rate=0.0, burnin_steps=0,
               min_learning_rate=0.0):
    self.initial_learning_rate = float(initial_learning_rate)
    self.decay_steps = int(decay_steps)
    self.decay_factor = float(decay_factor)
    self.staircase = bool(staircase)
    self.burnin_learning_rate = float(burnin_learning_rate)
    self.burnin_steps = int(burnin_steps)
    self.min_learning_rate = float(min_learning_rate)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    burnin_rate = self.burnin_learning_rate or self.initial_learning_rate
    exponent = (step - self.burnin_steps) / float(self.decay_steps)
    if self.staircase:
      exponent = tf.floor(exponent)
    decayed = self.initial_learning_rate * tf.pow(self.decay_factor,
                                                  exponent)
    rate = tf.where(step < self.burnin_steps, burnin_rate, decayed)
    return tf.maximum(tf.cast(rate, tf.float32), self.min_learning_rate)

  def get_config(self):
    return {
        'initial_learning_rate': self.initial_learning_rate,
        'decay_steps': self.decay_steps,
        'decay_factor': self.decay_factor,
        'staircase': self.staircase,
        'burnin_learning_rate': self.burnin_learning_rate,
        'burnin_steps': self.burnin_steps,
        'min_learning_rate': self.min_learning_rate,
    }


@tf_keras.utils.register_keras_serializable(package=_SERIALIZABLE_PACKAGE)
class ManualStepWithWarmup(
    tf_keras.optimizers.schedules.LearningRateSchedule):
  """Piecewise-constant rates with an optional linear warmup.

  ``rates`` has one more entry than ``boundaries`` (strictly increasing,
  positive steps): ``rates[0]`` applies before ``boundaries[0]``.
  """

  def __init__(self, boundaries, rates, warmup=False):
    self.boundaries = [int(b) for b in boundaries]
    self.rates = [float(r) for r in rates]
    self.warmup = bool(warmup)
    if len(self.rates) != len(self.boundaries) + 1:
      raise ValueError('rates must have exactly one more entry than '
                       f'boundaries, got {len(self.rates)} rates and '
                       f'{len(self.boundaries)} boundaries.')

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    if not self.boundaries:
      return tf.constant(self.rates[0], tf.float32)
    boundaries = tf.constant(self.boundaries, tf.float32)
    rates = tf.constant(self.rates, tf.float32)
    # Number of boundaries already reached = index of the current rate.
    index = tf.reduce_sum(tf.cast(step >= boundaries, tf.int32))
    rate = tf.gather(rates, index)
    if self.warmup:
      first = float(self.boundaries[0])
      slope = (self.rates[1] - self.rates[0]) / first
      ramp = self.rates[0] + slope * step
      rate = tf.where(step < first, ramp, rate)
    return tf.cast(rate, tf.float32)

  def get_config(self):
    return {'boundaries': list(self.boundaries), 'rates': list(self.rates),
            'warmup': self.warmup}


@tf_keras.utils.register_keras_serializable(package=_SERIALIZABLE_PACKAGE)
class CosineDecayWithWarmup(
    tf_keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup, optional hold, cosine decay to 0 (see module doc)."""

  def __init__(self, learning_rate_base, total_steps, warmup_learning_rate=0.0,
               warmup_steps=0, hold_base_rate_steps=0):
    self.learning_rate_base = float(learning_rate_base)
    self.total_steps = int(total_steps)
    self.warmup_learning_rate = float(warmup_learning_rate)
    self.warmup_steps = int(warmup_steps)
    self.hold_base_rate_steps = int(hold_base_rate_steps)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    base = self.learning_rate_base
    decay_start = float(self.warmup_steps + self.hold_base_rate_steps)
    decay_length = max(float(self.total_steps) - decay_start, 1.0)
    progress = (step - decay_start) / decay_length
    rate = 0.5 * base * (1.0 + tf.cos(math.pi * progress))
    if self.hold_base_rate_steps > 0:
      rate = tf.where(step > decay_start, rate, base)
    if self.warmup_steps > 0:
      slope = (base - self.warmup_learning_rate) / float(self.warmup_steps)
      ramp = self.warmup_learning_rate + slope * step
      rate = tf.where(step < float(self.warmup_steps), ramp, rate)
    rate = tf.where(step > float(self.total_steps), 0.0, rate)
    return tf.cast(rate, tf.float32)

  def get_config(self):
    return {
        'learning_rate_base': self.learning_rate_base,
        'total_steps': self.total_steps,
        'warmup_learning_rate': self.warmup_learning_rate,
        'warmup_steps': self.warmup_steps,
        'hold_base_rate_steps': self.hold_base_rate_steps,
    }
