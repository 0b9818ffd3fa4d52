"""``--eval_on_train_data``: evaluate checkpoints on the training input.

The OD API's ``model_main_tf2.py`` takes ``--eval_on_train_data`` and
``--sample_1_of_n_eval_on_train_examples`` (default 5). Here they evaluate
on ``train_input_reader`` read once, in order, one example in n, with the
evaluation settings of ``eval_config``; metrics go beside the eval ones, in
``model_dir/eval_on_train_data/eval``.
"""

import os

from deepmac_tf.errors import ConfigError

OUTPUT_NAME = 'eval_on_train_data'


def train_data_eval_configs(configs, sample_1_of_n):
  """``configs`` whose only eval input is the training input.

  Args:
    configs: pipeline config dict (not modified).
    sample_1_of_n: evaluate one of every n training examples (>= 1).

  Returns:
    A new dict: ``eval_input_configs`` = [a copy of ``train_input_config``
    with ``num_epochs: 1``, ``shuffle: false`` and
    ``sample_1_of_n_examples``].

  Raises:
    ConfigError: n < 1.
  """
  if sample_1_of_n < 1:
    raise ConfigError('--sample_1_of_n_eval_on_train_examples: must be >= 1, '
                      f'got {sample_1_of_n}.')
  reader = type(configs['train_input_config'])()
  reader.CopyFrom(configs['train_input_config'])
  reader.num_epochs = 1
  reader.shuffle = False
  reader.sample_1_of_n_examples = int(sample_1_of_n)
  return dict(configs, eval_input_configs=[reader])


def output_root(model_dir):
  """Folder that takes the place of model_dir for train-data metrics."""
  return os.path.join(model_dir, OUTPUT_NAME)
