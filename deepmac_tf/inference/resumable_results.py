"""Partial results of a long image-by-image job, kept on disk so that an
interrupted run continues where it stopped (``scripts/pseudo_label.py``).

Layout, beside the final output ``OUT``::

  OUT.partial/settings.json        what the results depend on
  OUT.partial/chunk-000000.json    results of a group of finished images
  OUT.partial/chunk-000001.json    ...

Each chunk is written atomically (temporary file + rename) every
``save_every_n`` images (and when the job stops, even on Ctrl-C), so a
crash loses at most the images since the last chunk and never leaves a
half-written file behind. Appending chunks instead of rewriting one file
keeps every save as cheap as the work it records, even on COCO-sized sets.

A restart with other settings (another input, model, classes or rule) is
refused rather than mixing results: the message names the folder to delete.
"""

import glob
import hashlib
import json
import os
import shutil

from deepmac_tf.errors import DataError

SETTINGS_FILE = 'settings.json'
_CHUNK_PATTERN = 'chunk-*.json'


def write_json_atomically(path, content):
  """Writes ``content`` as json to ``path`` via a temporary file and a
  rename: readers see the old file or the new one, never half of one."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(content, f)
  os.replace(tmp, path)


def file_sha256(path):
  """Hex sha256 of a file's bytes (to tell whether an input changed)."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


class ResumableResults:
  """Results per finished item, saved in chunks (see the module doc).

  Usage::

    results = ResumableResults(output_path, settings)
    done = results.load()            # {item key: record} of earlier runs
    for item in items:
      if key(item) in done: continue
      results.add(key(item), record)  # saved every save_every_n items
    results.flush()
    ... write the final output ...
    results.remove()
  """

  def __init__(self, output_path, settings, save_every_n=100):
    """Args:
      output_path: the job's final output file; the folder is beside it.
      settings: json-serializable dict the results depend on.
      save_every_n: items per chunk.
    """
    self.directory = os.path.abspath(os.fspath(output_path)) + '.partial'
    self.settings = json.loads(json.dumps(settings))
    self.save_every_n = max(int(save_every_n), 1)
    self._pending = []
    self._next_chunk = 0

  def load(self):
    """Checks the folder's settings and returns the saved records.

    Returns:
      ``{key: record}`` of the items finished by earlier runs (empty for a
      fresh start, which creates the folder).

    Raises:
      DataError: the folder holds results made with other settings, or an
        unreadable chunk.
    """
    settings_path = os.path.join(self.directory, SETTINGS_FILE)
    if not os.path.exists(settings_path):
      os.makedirs(self.directory, exist_ok=True)
      for stale in glob.glob(os.path.join(self.directory, _CHUNK_PATTERN)):
        os.remove(stale)
      write_json_atomically(settings_path, self.settings)
      return {}
    try:
      with open(settings_path, encoding='utf-8') as f:
        saved = json.load(f)
    except (OSError, ValueError) as e:
      raise DataError(f'{settings_path}: unreadable partial results ({e}); '
                      f'delete {self.directory} to start over.') from None
    changed = sorted(k for k in set(saved) | set(self.settings)
                     if saved.get(k) != self.settings.get(k))
    if changed:
      raise DataError(
          f'{self.directory} holds partial results of a run with other '
          f'settings ({", ".join(changed)} differ: was '
          f'{ {k: saved.get(k) for k in changed} }); delete that folder to '
          'start over, or rerun with the same settings to continue.')
    done = {}
    chunks = sorted(glob.glob(os.path.join(self.directory, _CHUNK_PATTERN)))
    for path in chunks:
      try:
        with open(path, encoding='utf-8') as f:
          for key, record in json.load(f):
            done[_hashable(key)] = record
      except (OSError, ValueError, TypeError) as e:
        raise DataError(f'{path}: unreadable partial results ({e}); delete '
                        f'{self.directory} to start over.') from None
    self._next_chunk = len(chunks)
    return done

  def add(self, key, record):
    """Records one finished item; saves a chunk every ``save_every_n``."""
    self._pending.append([key, record])
    if len(self._pending) >= self.save_every_n:
      self.flush()

  def flush(self):
    """Saves the pending records as one chunk (atomically)."""
    if not self._pending:
      return
    path = os.path.join(self.directory,
                        f'chunk-{self._next_chunk:06d}.json')
    write_json_atomically(path, self._pending)
    self._next_chunk += 1
    self._pending = []

  def remove(self):
    """Deletes the folder (after the final output is written)."""
    shutil.rmtree(self.directory, ignore_errors=True)


def _hashable(key):
  return tuple(key) if isinstance(key, list) else key
