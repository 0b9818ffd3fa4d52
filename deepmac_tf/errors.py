"""Exceptions raised for user mistakes: each carries one clear message that
names the file / field / record at fault and what was expected."""


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
