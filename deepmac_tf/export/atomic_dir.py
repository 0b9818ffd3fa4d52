"""Atomic folder writes that survive SIGKILL: build everything in a staging
folder next to the target, then swap it in with renames (same filesystem).

Layout next to ``<parent>/<name>`` (the target):

* ``.<name>.staging-<id>``: the new content being written;
* ``.<name>.old-<id>``: the previous target, moved aside during the swap.

``commit`` (target exists): entries of the old target that the new content
does not replace (the user's own files) are hard-linked (or copied) into
the staging folder; then ``rename(target, old)``, ``rename(staging,
target)`` -- the commit point -- and the old folder is deleted. A process
killed at any moment leaves either the old target or the new one whole,
plus hidden leftovers that ``recover`` (run by every later write to the same
target) resolves: no target but an ``.old-`` folder -> the old one is put
back (the swap did not happen); other leftovers are deleted.

A failure while building (an exception inside ``staged_directory``) removes
the staging folder and leaves the target as it was. One writer per target
at a time. Local paths only (renames are not atomic on object stores).
"""

import contextlib
import glob
import os
import shutil
import tempfile

from absl import logging

from deepmac_tf import file_checks
from deepmac_tf.errors import ConfigError

_STAGING = 'staging'
_OLD = 'old'


def _leftovers(target, kind):
  parent, name = os.path.split(target)
  return glob.glob(os.path.join(parent, f'.{glob.escape(name)}.{kind}-*'))


def _remove(path):
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)


def recover(target):
  """Resolves what an interrupted write to ``target`` left behind.

  Returns:
    True when an old target was put back (the interrupted write had moved
    it aside and not yet swapped the new one in).
  """
  target = os.path.abspath(os.fspath(target))
  olds = sorted(_leftovers(target, _OLD), key=os.path.getmtime)
  restored = False
  if olds and not os.path.lexists(target):
    os.rename(olds.pop(), target)
    restored = True
    logging.warning('Put back %s: an earlier write to it was interrupted '
                    'before its new content was swapped in.', target)
  for path in olds + _leftovers(target, _STAGING):
    _remove(path)
  return restored


def prepare(target, flag='--output_directory'):
  """Checks up front that ``target`` can be written, and recovers it.

  Call before slow work (building a model), so that an unwritable folder is
  one error naming ``flag`` and the folder, in seconds.

  Raises:
    ConfigError: a remote path, a file where the folder should be, or a
      parent folder that cannot be written.
  """
  if '://' in str(target):
    raise ConfigError(f'{flag}: {target} is not a local path; export to a '
                      'local folder and copy it (atomic renames need a '
                      'local filesystem).')
  target = os.path.abspath(os.fspath(target))
  if os.path.exists(target) and not os.path.isdir(target):
    raise ConfigError(f'{flag}: {target} exists and is not a folder.')
  file_checks.check_writable_dir(os.path.dirname(target), flag)
  recover(target)
  return target


def _carry_over(old, staging):
  """Hard-links (or copies) entries of ``old`` that ``staging`` lacks."""
  for name in os.listdir(old):
    source, destination = os.path.join(old, name), os.path.join(staging, name)
    if os.path.lexists(destination):
      continue
    if os.path.isdir(source) and not os.path.islink(source):
      shutil.copytree(source, destination, symlinks=True,
                      copy_function=_link_or_copy)
    else:
      _link_or_copy(source, destination)


def _link_or_copy(source, destination):
  if os.path.islink(source):
    os.symlink(os.readlink(source), destination)
    return
  try:
    os.link(source, destination)
  except OSError:
    shutil.copy2(source, destination)


def commit(staging, target):
  """Swaps ``staging`` in as ``target`` (see the module doc)."""
  if not os.path.lexists(target):
    os.rename(staging, target)
    return
  if not os.path.isdir(target):
    raise ConfigError(f'--output_directory: {target} exists and is not a '
                      'folder.')
  _carry_over(target, staging)
  old = staging.replace(f'.{_STAGING}-', f'.{_OLD}-')
  os.rename(target, old)
  os.rename(staging, target)  # The commit point.
  shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(target, flag='--output_directory'):
  """Yields a fresh staging folder; on success its content becomes target.

  Args:
    target: the final folder.
    flag: name used in error messages.

  Yields:
    Path of the staging folder (next to ``target``).
  """
  target = prepare(target, flag)
  parent, name = os.path.split(target)
  staging = tempfile.mkdtemp(prefix=f'.{name}.{_STAGING}-', dir=parent)
  try:
    yield staging
    commit(staging, target)
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging, ignore_errors=True)
