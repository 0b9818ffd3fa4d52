"""Swaps the optimizer's exponential moving average into the model weights.

With ``train_config.optimizer.use_moving_average`` the tf_keras optimizer
keeps an average of every trainable variable (saved under ``optimizer`` in
the training checkpoint). Evaluation with ``eval_config.use_moving_averages``
runs inside ``averaged_weights``; the raw weights come back afterwards.
"""

import contextlib

import tensorflow as tf


def has_moving_average(optimizer):
  return bool(getattr(optimizer, 'use_ema', False))


@contextlib.contextmanager
def averaged_weights(optimizer, variables, enabled=True):
  """Within the block, ``variables`` hold their moving averages.

  Args:
    optimizer: a built tf_keras optimizer (``use_ema=True``); others and
      ``enabled=False`` make this a no-op.
    variables: the variables the optimizer trains.
    enabled: swap only when True.
  """
  if not enabled or not has_moving_average(optimizer):
    yield
    return
  raw_values = [tf.identity(v.read_value()) for v in variables]
  optimizer.finalize_variable_values(variables)
  try:
    yield
  finally:
    for variable, value in zip(variables, raw_values):
      variable.assign(value)
