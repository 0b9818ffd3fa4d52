"""Checks on output locations, made before any slow work (no TensorFlow)."""

import os
import tempfile

from deepmac_tf.errors import ConfigError


def check_writable_dir(path, flag, create=True):
  """Proves a file can be written in folder ``path``.

  Args:
    path: the folder (created with its parents when ``create``; otherwise
      its nearest existing ancestor is tested).
    flag: the setting it came from, named in the error (``--model_dir``).
    create: create the folder.

  Raises:
    ConfigError: ``<flag>: cannot write to <path> (<OS reason>).``, or a
      file stands where a folder is needed.
  """
  if '://' in str(path):
    return  # Object stores: nothing cheap to check.
  path = os.path.abspath(os.fspath(path))
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ConfigError(f'{flag}: {existing} is a file, not a folder.')
  probe_dir = path if create else existing
  try:
    if create:
      os.makedirs(path, exist_ok=True)
    # Created and deleted at once: proof that the folder takes a file.
    tempfile.NamedTemporaryFile(dir=probe_dir, prefix='.write_test-').close()
  except OSError as e:
    raise ConfigError(f'{flag}: cannot write to {path} '
                      f'({e.strerror or e}).') from None
