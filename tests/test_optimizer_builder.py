"""Optimizer and learning-rate schedule builders (train_config.optimizer)."""

import math

from google.protobuf import text_format
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.builders import learning_schedules
from deepmac_tf.builders import optimizer_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import optimizer_pb2


def _optimizer(text):
  return text_format.Parse(text, optimizer_pb2.Optimizer())


def _rates(schedule, steps):
  return [float(schedule(tf.constant(s, tf.int64))) for s in steps]


def _build(text, **kwargs):
  return optimizer_builder.build(_optimizer(text), **kwargs)


ADAM_CONSTANT = """adam_optimizer { learning_rate { constant_learning_rate {
    learning_rate: 0.01 } } epsilon: 1e-7 } use_moving_average: false"""


def test_constant_schedule():
  _, schedule = _build(ADAM_CONSTANT)
  assert _rates(schedule, [0, 10, 10**6]) == pytest.approx([0.01] * 3)


def test_exponential_decay_with_burnin_matches_hand_values():
  _, schedule = _build("""momentum_optimizer { learning_rate {
      exponential_decay_learning_rate { initial_learning_rate: 0.1
        decay_steps: 10 decay_factor: 0.5 burnin_learning_rate: 0.01
        burnin_steps: 5 min_learning_rate: 0.02 } } }
      use_moving_average: false""")
  # step < 5: burn-in; then 0.1 * 0.5 ** floor((step - 5) / 10), >= 0.02.
  assert _rates(schedule, [0, 4, 5, 14, 15, 25, 45]) == pytest.approx(
      [0.02, 0.02, 0.1, 0.1, 0.05, 0.025, 0.02])
  smooth = learning_schedules.ExponentialDecayWithBurnin(
      0.1, 10, 0.5, staircase=False)
  assert _rates(smooth, [5]) == pytest.approx([0.1 * 0.5 ** 0.5])


def test_manual_step_with_and_without_warmup():
  text = """rms_prop_optimizer { learning_rate { manual_step_learning_rate {
      initial_learning_rate: 0.1
      schedule { step: 10 learning_rate: 0.01 }
      schedule { step: 20 learning_rate: 0.001 } %s } } }
      use_moving_average: false"""
  _, plain = _build(text % '')
  assert _rates(plain, [0, 9, 10, 19, 20, 100]) == pytest.approx(
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
  _, warm = _build(text % 'warmup: true')
  # OD API manual_stepping: linear from rates[0] at 0 to rates[1] at 10.
  assert _rates(warm, [0, 5, 9, 10, 20]) == pytest.approx(
      [0.1, 0.1 + 5 * (0.01 - 0.1) / 10, 0.1 + 9 * (0.01 - 0.1) / 10,
       0.01, 0.001])


def test_cosine_decay_with_warmup_and_hold():
  _, schedule = _build("""adam_optimizer { learning_rate {
      cosine_decay_learning_rate { learning_rate_base: 1.0 total_steps: 100
        warmup_learning_rate: 0.1 warmup_steps: 10
        hold_base_rate_steps: 10 } } } use_moving_average: false""")
  cosine = lambda s: 0.5 * (1 + math.cos(math.pi * (s - 20) / 80))
  assert _rates(schedule, [0, 5, 10, 15, 20, 60, 100, 101]) == pytest.approx(
      [0.1, 0.55, 1.0, 1.0, 1.0, cosine(60), 0.0, 0.0], abs=1e-6)


def test_sample_config_schedule():
  # The OD API Deep-MAC COCO setting: base 1e-3, warmup 2.5e-4 over 5000.
  schedule = learning_schedules.CosineDecayWithWarmup(1e-3, 50000, 2.5e-4,
                                                      5000)
  assert _rates(schedule, [0, 2500, 5000, 27500, 50000]) == pytest.approx(
      [2.5e-4, 6.25e-4, 1e-3, 5e-4, 0.0], abs=1e-9)


@pytest.mark.parametrize('schedule', [
    learning_schedules.ConstantLearningRate(0.5),
    learning_schedules.ExponentialDecayWithBurnin(0.1, 10, 0.5, True, 0.01, 5,
                                                  0.001),
    learning_schedules.ManualStepWithWarmup([10, 20], [0.1, 0.01, 0.001],
                                            True),
    learning_schedules.CosineDecayWithWarmup(1.0, 100, 0.1, 10, 5),
], ids=lambda s: type(s).__name__)
def test_schedules_serialize(schedule):
  assert isinstance(schedule,
                    tf_keras.optimizers.schedules.LearningRateSchedule)
  config = tf_keras.optimizers.schedules.serialize(schedule)
  clone = tf_keras.optimizers.schedules.deserialize(config)
  assert type(clone) is type(schedule)
  assert _rates(clone, [0, 7, 15, 50]) == pytest.approx(
      _rates(schedule, [0, 7, 15, 50]))


@pytest.mark.parametrize('kind, cls', [
    ('adam_optimizer', tf_keras.optimizers.Adam),
    ('momentum_optimizer', tf_keras.optimizers.SGD),
    ('rms_prop_optimizer', tf_keras.optimizers.RMSprop),
])
@pytest.mark.parametrize('rate', [
    'constant_learning_rate { learning_rate: 0.1 }',
    'exponential_decay_learning_rate { decay_steps: 10 }',
    'manual_step_learning_rate { schedule { step: 5 learning_rate: 0.1 } '
    'warmup: true }',
    'cosine_decay_learning_rate { total_steps: 100 warmup_steps: 10 }',
])
def test_every_optimizer_and_schedule_builds_and_steps(kind, cls, rate):
  optimizer, schedule = _build(f'{kind} {{ learning_rate {{ {rate} }} }} '
                               'use_moving_average: false')
  assert isinstance(optimizer, cls)
  assert optimizer.learning_rate is schedule or isinstance(
      schedule, tf_keras.optimizers.schedules.LearningRateSchedule)
  variable = tf.Variable([1.0, 2.0])
  optimizer.apply_gradients([(tf.constant([0.5, 0.5]), variable)])
  assert int(optimizer.iterations) == 1


def test_optimizer_hyperparameters():
  momentum, _ = _build("""momentum_optimizer { learning_rate {
      constant_learning_rate {} } momentum_optimizer_value: 0.8 }
      use_moving_average: false""")
  assert momentum.momentum == pytest.approx(0.8)
  rms, _ = _build("""rms_prop_optimizer { learning_rate {
      constant_learning_rate {} } decay: 0.95 epsilon: 0.5
      momentum_optimizer_value: 0.7 } use_moving_average: false""")
  assert (rms.rho, rms.epsilon, rms.momentum) == pytest.approx(
      (0.95, 0.5, 0.7))


def test_gradient_clipping_by_global_norm():
  optimizer, _ = _build("""momentum_optimizer { learning_rate {
      constant_learning_rate { learning_rate: 1.0 } }
      momentum_optimizer_value: 0.0 } use_moving_average: false""",
                        gradient_clipping_by_norm=1.0)
  assert optimizer.global_clipnorm == pytest.approx(1.0)
  variable = tf.Variable([0.0, 0.0])
  optimizer.apply_gradients([(tf.constant([30.0, 40.0]), variable)])
  # The gradient (norm 50) is scaled to norm 1: step = -[0.6, 0.8].
  assert variable.numpy() == pytest.approx([-0.6, -0.8], abs=1e-5)


def test_moving_average_is_kept_in_the_optimizer():
  optimizer, _ = _build("""momentum_optimizer { learning_rate {
      constant_learning_rate { learning_rate: 1.0 } }
      momentum_optimizer_value: 0.0 }
      use_moving_average: true moving_average_decay: 0.5""")
  assert optimizer.use_ema
  assert optimizer.ema_momentum == pytest.approx(0.5)
  from deepmac_tf.training import moving_average  # pylint: disable=g-import-not-at-top
  variable = tf.Variable([0.0])
  optimizer.build([variable])
  optimizer.apply_gradients([(tf.constant([-2.0]), variable)])
  assert variable.numpy() == pytest.approx([2.0])  # raw weights train
  with moving_average.averaged_weights(optimizer, [variable]):
    assert variable.numpy() == pytest.approx([1.0])  # 0.5 * 0 + 0.5 * 2
  assert variable.numpy() == pytest.approx([2.0])


@pytest.mark.parametrize('text, field', [
    ('use_moving_average: false', 'train_config.optimizer:'),
    ('adam_optimizer { } use_moving_average: false',
     'adam_optimizer.learning_rate'),
    ('adam_optimizer { learning_rate { } } use_moving_average: false',
     'adam_optimizer.learning_rate:'),
    ('adam_optimizer { learning_rate { constant_learning_rate { '
     'learning_rate: 0 } } } use_moving_average: false',
     'constant_learning_rate.learning_rate'),
    ('adam_optimizer { epsilon: 0 learning_rate { constant_learning_rate {} '
     '} } use_moving_average: false', 'adam_optimizer.epsilon'),
    ('momentum_optimizer { momentum_optimizer_value: 1.5 learning_rate { '
     'constant_learning_rate {} } } use_moving_average: false',
     'momentum_optimizer.momentum_optimizer_value'),
    ('rms_prop_optimizer { decay: 1.0 learning_rate { '
     'constant_learning_rate {} } } use_moving_average: false',
     'rms_prop_optimizer.decay'),
    ('adam_optimizer { learning_rate { exponential_decay_learning_rate { '
     'decay_steps: 0 } } } use_moving_average: false',
     'exponential_decay_learning_rate.decay_steps'),
    ('adam_optimizer { learning_rate { manual_step_learning_rate { '
     'schedule { step: 20 } schedule { step: 10 } } } } '
     'use_moving_average: false', 'manual_step_learning_rate.schedule.step'),
    ('adam_optimizer { learning_rate { manual_step_learning_rate { '
     'warmup: true } } } use_moving_average: false',
     'manual_step_learning_rate.warmup'),
    ('adam_optimizer { learning_rate { cosine_decay_learning_rate { '
     'total_steps: 10 warmup_steps: 20 } } } use_moving_average: false',
     'cosine_decay_learning_rate.warmup_steps'),
    ('adam_optimizer { learning_rate { cosine_decay_learning_rate { '
     'learning_rate_base: 0.1 warmup_learning_rate: 0.5 total_steps: 100 '
     'warmup_steps: 10 } } } use_moving_average: false',
     'cosine_decay_learning_rate.warmup_learning_rate'),
    ('adam_optimizer { learning_rate { constant_learning_rate {} } } '
     'use_moving_average: true moving_average_decay: 1.5',
     'train_config.optimizer.moving_average_decay'),
])
def test_bad_configs_name_the_field(text, field):
  with pytest.raises(ConfigError, match=field.replace('.', r'\.')):
    _build(text)


def test_negative_clipping_names_the_field():
  with pytest.raises(ConfigError, match='gradient_clipping_by_norm'):
    _build(ADAM_CONSTANT, gradient_clipping_by_norm=-1.0)
