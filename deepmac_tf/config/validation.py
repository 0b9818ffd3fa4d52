"""Semantic checks of pipeline configs, run when a model or input pipeline is
built (never at load time, so sample configs with placeholders load).

Each check raises one ``ConfigError`` naming the config field, e.g.
``train_input_reader.load_instance_masks: must be true to train a mask
head``. Model blocks are checked by their builders
(``builders/deepmac_builder.py``, ``builders/mask_rcnn_builder.py``).
"""

from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import input_reader_pb2

PLACEHOLDER = 'PATH_TO_BE_CONFIGURED'


def check_no_placeholder(value, field):
  """Raises if a path still holds the sample configs' placeholder."""
  if PLACEHOLDER in value:
    raise ConfigError(f'{field}: "{value}" still contains the placeholder '
                      f'{PLACEHOLDER}; set it to a real path.')


def validate_input_reader(input_reader, field, require_masks=False):
  """Checks an ``InputReader`` before its files are opened.

  Args:
    input_reader: ``InputReader`` proto.
    field: its name in the pipeline config, e.g. ``train_input_reader``.
    require_masks: the model trains a mask head, so masks must be loaded.

  Raises:
    ConfigError: naming the field at fault.
  """
  if input_reader.WhichOneof('input_reader') == 'external_input_reader':
    raise ConfigError(f'{field}.external_input_reader: supported by the OD '
                      'API (through reader extensions it does not publish), '
                      'not by deepmac_tf; use tf_record_input_reader { '
                      'input_path: "..." }.')
  if input_reader.WhichOneof('input_reader') != 'tf_record_input_reader':
    raise ConfigError(f'{field}: no tf_record_input_reader {{ input_path: '
                      '"..." }} block.')
  paths = input_reader.tf_record_input_reader.input_path
  if not paths:
    raise ConfigError(f'{field}.tf_record_input_reader.input_path: empty; '
                      'give at least one file or glob pattern.')
  for path in paths:
    check_no_placeholder(path, f'{field}.tf_record_input_reader.input_path')
  if input_reader.label_map_path:
    check_no_placeholder(input_reader.label_map_path,
                         f'{field}.label_map_path')
  if require_masks and not input_reader.load_instance_masks:
    raise ConfigError(f'{field}.load_instance_masks: must be true to train a '
                      'mask head (the records\' image/object/mask are '
                      'otherwise ignored).')
