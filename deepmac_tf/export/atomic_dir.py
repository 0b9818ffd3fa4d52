"""Atomic directory writes: build everything in a staging folder next to the
target, then move it into place with renames (same filesystem).

* The target does not exist yet: the staging folder is renamed to it.
* The target exists (a previous export, maybe other files): each entry of
  the staging folder replaces the same-named entry of the target; old
  entries are first moved aside and put back if a move fails, then deleted.

A failure while building (an exception inside ``staged_directory``) removes
the staging folder and leaves the target exactly as it was. Local paths only
(renames are not atomic on object stores such as gs://).
"""

import contextlib
import os
import shutil
import tempfile

from deepmac_tf.errors import ConfigError


def _check_local(path, flag):
  if '://' in str(path):
    raise ConfigError(f'{flag}: {path} is not a local path; export to a local '
                      'folder and copy it (atomic renames need a local '
                      'filesystem).')


def commit(staging, target):
  """Moves the entries of ``staging`` into ``target`` (see module doc)."""
  if not os.path.exists(target):
    os.rename(staging, target)
    return
  if not os.path.isdir(target):
    raise ConfigError(f'--output_directory: {target} exists and is not a '
                      'folder.')
  parent = os.path.dirname(os.path.abspath(target))
  trash = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.old-',
                           dir=parent)
  moved_aside, moved_in = [], []
  try:
    for name in sorted(os.listdir(staging)):
      destination = os.path.join(target, name)
      if os.path.lexists(destination):
        os.rename(destination, os.path.join(trash, name))
        moved_aside.append(name)
      os.rename(os.path.join(staging, name), destination)
      moved_in.append(name)
  except BaseException:
    for name in moved_in:  # Roll back: new entries out, old ones back.
      _remove(os.path.join(target, name))
    for name in moved_aside:
      os.rename(os.path.join(trash, name), os.path.join(target, name))
    raise
  finally:
    shutil.rmtree(trash, ignore_errors=True)
  shutil.rmtree(staging, ignore_errors=True)


def _remove(path):
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)


@contextlib.contextmanager
def staged_directory(target, flag='--output_directory'):
  """Yields a fresh staging folder; on success its content lands in target.

  Args:
    target: the final folder.
    flag: name used in error messages.

  Yields:
    Path of the staging folder (next to ``target``).
  """
  _check_local(target, flag)
  target = os.path.abspath(os.fspath(target))
  parent = os.path.dirname(target)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.staging-',
                             dir=parent)
  try:
    yield staging
    commit(staging, target)
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging, ignore_errors=True)
