"""Checks on output locations, made before any slow work (no TensorFlow),
and what a failed write says."""

import contextlib
import errno
import os
import sys
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


_ENVIRONMENT_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                       errno.EDQUOT)


def environment_errno(error):
  """The errno of a permission / disk-full failure (OS or TF), else None."""
  if isinstance(error, OSError):
    return error.errno if error.errno in _ENVIRONMENT_ERRNOS else None
  tf = sys.modules.get('tensorflow')
  if tf is None or not isinstance(error, tf.errors.OpError):
    return None
  if isinstance(error, tf.errors.PermissionDeniedError):
    return errno.EACCES
  if 'No space left on device' in (error.message or ''):
    return errno.ENOSPC
  return None


@contextlib.contextmanager
def writing_to(path):
  """Names ``path`` in a permission / disk-full failure raised inside.

  For writes that go through files the user never named (a hidden staging
  folder, TF's ``*_temp`` shards): the failure is re-raised as
  ``OSError(errno, strerror, path)``, which the command-line scripts print as
  one line. Other errors pass unchanged.
  """
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    code = environment_errno(e)
    if code is None:
      raise
    raise OSError(code, os.strerror(code), os.fspath(path)) from e
