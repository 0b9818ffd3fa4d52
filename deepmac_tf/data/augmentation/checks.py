"""Field checks shared by the step argument readers: each raises one
``ConfigError`` naming the field (``<config path>.<step>.<field>``)."""

import numpy as np

from deepmac_tf.errors import ConfigError


def _shown(value):
  """Floats as their shortest float32 decimal (0.2, not 0.2000000029...)."""
  return str(np.float32(value)) if isinstance(value, float) else value


def require(condition, path, message):
  if not condition:
    raise ConfigError(f'{path}: {message}')


def probability(value, path):
  require(0.0 <= value <= 1.0, path, f'must be in [0, 1], got {value}.')
  return value


def value_range(low, high, path, low_name, high_name, minimum=0.0,
                strict_minimum=False):
  below = low <= minimum if strict_minimum else low < minimum
  bound = '>' if strict_minimum else '>='
  require(not below, f'{path}.{low_name}', f'must be {bound} {minimum}, got '
          f'{_shown(low)}.')
  require(low <= high, f'{path}', f'{low_name} ({_shown(low)}) must not '
          f'exceed {high_name} ({_shown(high)}).')


def pad_color(values, path):
  require(len(values) in (0, 3), f'{path}.pad_color',
          f'needs 3 values (R, G, B) or none, got {len(values)}.')
  return list(values) or None
