"""Exceptions raised for user mistakes: each carries one clear message that
names the file / field / record at fault and what was expected."""

import contextlib
import re


class DeepMacError(Exception):
  """Base class of every error deepmac_tf raises for bad user input."""

  # AutoGraph re-raises an exception from inside a tf.function with its own
  # type only when the class uses Exception.__init__; ValueError's would turn
  # a ConfigError into a StagingError.
  __init__ = Exception.__init__


class ConfigError(DeepMacError, ValueError):
  """A pipeline config (or override) is malformed or semantically invalid."""


class LabelMapError(DeepMacError, ValueError):
  """A label map file is malformed or has invalid ids."""


class DataError(DeepMacError, ValueError):
  """Input data (TFRecords, COCO json, images) is missing or inconsistent."""


class ArgumentError(DeepMacError, ValueError):
  """A layer, head or backbone got an argument it cannot take.

  Raised as ``ArgumentError(message, argument)`` by code that knows no
  config: ``str(error)`` is ``'<argument>: <message>'``. The builder that
  passed the argument turns it into a ``ConfigError`` naming its own config
  field (``config_field_errors``), so a Deep-MARC user reads
  ``model.faster_rcnn.deepmarc_mask_head.network_type`` and a Deep-MAC user
  ``model.center_net.deepmac_mask_estimation.network_type`` for the same
  head error. Safe to raise while tracing a ``tf.function`` (AutoGraph
  re-raises it with its type; the argument then travels in the message).
  """

  @property
  def message(self):
    return str(self.args[0]) if self.args else ''

  @property
  def argument(self):
    return self.args[1] if len(self.args) > 1 else None

  def __str__(self):
    if self.argument:
      return f'{self.argument}: {self.message}'
    return self.message


@contextlib.contextmanager
def config_field_errors(prefix, fields=None):
  """Turns an ``ArgumentError`` raised inside into a ``ConfigError``.

  Args:
    prefix: dotted path of the config message whose values were passed,
      e.g. ``model.faster_rcnn.deepmarc_mask_head``.
    fields: optional ``{argument name: field path under prefix}`` where
      they differ (e.g. ``{'mask_size': 'crop_size'}``); other arguments are
      named as the field of the same name.

  Raises:
    ConfigError: ``'<prefix>.<field>: <message>'``.
  """
  try:
    yield
  except ArgumentError as error:
    field = (fields or {}).get(error.argument, error.argument)
    name = f'{prefix}.{field}' if field else prefix
    raise ConfigError(f'{name}: {error.message}') from error


# TF wraps an op's error as '{{function_node __wrapped__SaveV2_...}} <what
# happened> [Op:SaveV2]'; the user needs only the middle.
_TF_MESSAGE_NOISE = re.compile(r'\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]')


def tf_message_line(error):
  """The first line of a TensorFlow error's message, without TF's op
  wrapper (``{{function_node ...}}``, ``[Op:...]``): what a one-line error
  quotes. Works on any exception (no TensorFlow import)."""
  message = getattr(error, 'message', '') or str(error)
  return _TF_MESSAGE_NOISE.sub('', message).strip().split('\n')[0]
