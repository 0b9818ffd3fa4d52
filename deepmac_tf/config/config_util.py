"""Pipeline configs: load, override, convert and save, as the OD API's
``config_util`` does.

A pipeline config is a text-format ``TrainEvalPipelineConfig`` with the blocks
``model``, ``train_config``, ``train_input_reader``, ``eval_config`` and
``eval_input_reader``. Loading reads only the config file itself: paths inside
it (label maps, TFRecords, checkpoints) are checked when the input pipeline or
model is built, so sample configs with ``PATH_TO_BE_CONFIGURED`` load.
"""

import os

from deepmac_tf.config.text_parsing import parse_text_proto
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import pipeline_pb2

PIPELINE_CONFIG_NAME = 'pipeline.config'

# Keys of the dict form of a pipeline config, as in the OD API.
MODEL = 'model'
TRAIN_CONFIG = 'train_config'
TRAIN_INPUT_CONFIG = 'train_input_config'
EVAL_CONFIG = 'eval_config'
EVAL_INPUT_CONFIGS = 'eval_input_configs'


def _read_text(path):
  """Reads a local file, or a remote one (gs://...) through tf.io.gfile."""
  if '://' in str(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.exists(path):
      raise ConfigError(f'Pipeline config not found: {path}')
    with tf.io.gfile.GFile(path, 'r') as f:
      return f.read()
  try:
    with open(path, encoding='utf-8') as f:
      return f.read()
  except FileNotFoundError:
    raise ConfigError(f'Pipeline config not found: {path}') from None
  except IsADirectoryError:
    raise ConfigError(
        f'Pipeline config path is a directory, not a file: {path}') from None
  except OSError as e:
    raise ConfigError(f'Cannot read pipeline config {path}: {e.strerror}'
                     ) from None


def get_pipeline_config_from_text(text, source='<pipeline config>',
                                  config_override=None):
  """Parses a pipeline config text (plus an optional override).

  Args:
    text: text-format ``TrainEvalPipelineConfig``.
    source: name used in error messages.
    config_override: optional text-format fragment merged over the config
      (scalar fields replace, repeated fields append, as ``text_format.Merge``).

  Returns:
    A ``TrainEvalPipelineConfig``.

  Raises:
    ConfigError: ``<source>:<line>:<column>: <problem>`` on a syntax error or
      unknown field.
  """
  pipeline_config = pipeline_pb2.TrainEvalPipelineConfig()
  parse_text_proto(text, pipeline_config, source)
  if config_override:
    parse_text_proto(config_override, pipeline_config, 'config_override',
                     merge=True)
  return pipeline_config


def get_pipeline_config_from_file(pipeline_config_path, config_override=None):
  """Reads a pipeline config file into a ``TrainEvalPipelineConfig``."""
  text = _read_text(pipeline_config_path)
  return get_pipeline_config_from_text(
      text, source=os.fspath(pipeline_config_path),
      config_override=config_override)


def create_configs_from_pipeline_proto(pipeline_config):
  """Splits a ``TrainEvalPipelineConfig`` into the OD API's config dict.

  Returns:
    ``{'model', 'train_config', 'train_input_config', 'eval_config',
    'eval_input_configs'}``; ``eval_input_configs`` is a list (a pipeline may
    evaluate on several datasets).
  """
  return {
      MODEL: pipeline_config.model,
      TRAIN_CONFIG: pipeline_config.train_config,
      TRAIN_INPUT_CONFIG: pipeline_config.train_input_reader,
      EVAL_CONFIG: pipeline_config.eval_config,
      EVAL_INPUT_CONFIGS: list(pipeline_config.eval_input_reader),
  }


def get_configs_from_pipeline_file(pipeline_config_path, config_override=None):
  """Reads a pipeline config file into the OD API's config dict.

  Args:
    pipeline_config_path: path of a text-format ``TrainEvalPipelineConfig``.
    config_override: optional text-format fragment merged over the file, e.g.
      ``'train_config { batch_size: 4 }'``.

  Returns:
    Dict with keys ``model``, ``train_config``, ``train_input_config``,
    ``eval_config`` and ``eval_input_configs`` (a list).

  Raises:
    ConfigError: the file is missing, or one line naming the file, line,
      column and field of a syntax error or unknown field.
  """
  pipeline_config = get_pipeline_config_from_file(pipeline_config_path,
                                                  config_override)
  return create_configs_from_pipeline_proto(pipeline_config)


def create_pipeline_proto_from_configs(configs):
  """Joins a config dict back into a ``TrainEvalPipelineConfig``."""
  missing = [key for key in (MODEL, TRAIN_CONFIG, TRAIN_INPUT_CONFIG,
                             EVAL_CONFIG, EVAL_INPUT_CONFIGS)
             if key not in configs]
  if missing:
    raise ConfigError('Config dict is missing keys: ' + ', '.join(missing))
  pipeline_config = pipeline_pb2.TrainEvalPipelineConfig()
  pipeline_config.model.CopyFrom(configs[MODEL])
  pipeline_config.train_config.CopyFrom(configs[TRAIN_CONFIG])
  pipeline_config.train_input_reader.CopyFrom(configs[TRAIN_INPUT_CONFIG])
  pipeline_config.eval_config.CopyFrom(configs[EVAL_CONFIG])
  eval_inputs = configs[EVAL_INPUT_CONFIGS]
  if not isinstance(eval_inputs, (list, tuple)):
    eval_inputs = [eval_inputs]
  pipeline_config.eval_input_reader.extend(eval_inputs)
  return pipeline_config


def pipeline_config_to_text(pipeline_config):
  """Formats a ``TrainEvalPipelineConfig`` as text (newest field names)."""
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  return text_format.MessageToString(pipeline_config)


def save_pipeline_config(pipeline_config, directory):
  """Writes ``<directory>/pipeline.config`` (creating the directory).

  Returns:
    The path written.
  """
  text = pipeline_config_to_text(pipeline_config)
  if '://' in str(directory):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.io.gfile.makedirs(directory)
    path = directory.rstrip('/') + '/' + PIPELINE_CONFIG_NAME
    with tf.io.gfile.GFile(path, 'w') as f:
      f.write(text)
    return path
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, PIPELINE_CONFIG_NAME)
  tmp_path = path + '.tmp'
  with open(tmp_path, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(tmp_path, path)  # Atomic: never a half-written config.
  return path


def get_model_message(model_config):
  """Returns ``(name, message)`` of the architecture set in a DetectionModel.

  Raises:
    ConfigError: no architecture block (``center_net`` / ``faster_rcnn``).
  """
  name = model_config.WhichOneof('model')
  if name is None:
    raise ConfigError('model: no architecture set; expected a center_net { } '
                      'or faster_rcnn { } block.')
  return name, getattr(model_config, name)


def get_image_resizer_config(model_config):
  """Returns the ``ImageResizer`` of the model's architecture block."""
  _, message = get_model_message(model_config)
  return message.image_resizer


def get_number_of_classes(model_config):
  """Returns ``num_classes`` of the model's architecture block."""
  name, message = get_model_message(model_config)
  if not message.HasField('num_classes') or message.num_classes <= 0:
    raise ConfigError(f'model.{name}.num_classes must be set to a positive '
                      'number.')
  return message.num_classes
