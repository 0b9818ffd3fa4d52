"""export/atomic_dir.py: a re-export killed (SIGKILL) at any moment leaves
the old export or the new one whole, and the next write recovers and cleans
up; unwritable targets fail up front with one line."""

import os
import signal
import subprocess
import sys

import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.export import atomic_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Writes a 'new' export over the target; SIGKILLs itself at os.rename call
# number KILL_AT_RENAME (1-based), or inside rmtree of the old folder.
_WRITER = '''
import os, shutil, signal, sys
sys.path.insert(0, {repo!r})
from deepmac_tf.export import atomic_dir
kill_at, target = {kill_at!r}, {target!r}
calls = []
real_rename, real_rmtree = os.rename, shutil.rmtree
def rename(a, b):
  calls.append(a)
  if len(calls) == kill_at:
    os.kill(os.getpid(), signal.SIGKILL)
  return real_rename(a, b)
def rmtree(path, *args, **kwargs):
  if kill_at == 'rmtree' and '.old-' in path:
    os.remove(os.path.join(path, 'saved_model', 'model.pb'))
    os.kill(os.getpid(), signal.SIGKILL)
  return real_rmtree(path, *args, **kwargs)
os.rename, shutil.rmtree = rename, rmtree
with atomic_dir.staged_directory(target) as staging:
  os.makedirs(os.path.join(staging, 'saved_model'))
  for name in ('saved_model/model.pb', 'pipeline.config'):
    with open(os.path.join(staging, name), 'w') as f:
      f.write('new')
'''


def _write_old(target):
  os.makedirs(os.path.join(target, 'saved_model'))
  for name in ('saved_model/model.pb', 'pipeline.config', 'notes.txt'):
    with open(os.path.join(target, name), 'w') as f:
      f.write('old' if name != 'notes.txt' else 'mine')


def _content(target):
  return {name: open(os.path.join(target, name)).read()
          for name in ('saved_model/model.pb', 'pipeline.config')}


def _hidden(parent):
  return sorted(n for n in os.listdir(parent) if n.startswith('.'))


@pytest.mark.parametrize('kill_at,expected', [
    (1, 'old'),         # killed before moving the old export aside
    (2, 'old'),         # old export moved aside, new not yet swapped in
    ('rmtree', 'new'),  # swapped; killed while deleting the old export
    (None, 'new'),      # not killed
])
def test_reexport_survives_sigkill(tmp_path, kill_at, expected):
  target = str(tmp_path / 'exported')
  _write_old(target)
  result = subprocess.run(
      [sys.executable, '-c', _WRITER.format(repo=REPO, kill_at=kill_at,
                                            target=target)],
      capture_output=True, text=True, timeout=60)
  if kill_at is None:
    assert result.returncode == 0, result.stderr
  else:
    assert result.returncode == -signal.SIGKILL, result.stderr
  atomic_dir.recover(target)  # What the next export does first.
  assert _content(target) == {'saved_model/model.pb': expected,
                              'pipeline.config': expected}
  assert open(os.path.join(target, 'notes.txt')).read() == 'mine'
  assert _hidden(str(tmp_path)) == []


def test_killed_first_export_leaves_nothing(tmp_path):
  target = str(tmp_path / 'exported')
  result = subprocess.run(
      [sys.executable, '-c', _WRITER.format(repo=REPO, kill_at=1,
                                            target=target)],
      capture_output=True, text=True, timeout=60)
  assert result.returncode == -signal.SIGKILL
  assert _hidden(str(tmp_path))  # the staging folder is left ...
  atomic_dir.recover(target)
  assert not os.path.exists(target)
  assert _hidden(str(tmp_path)) == []  # ... and cleaned up next time.


def test_failure_while_building_keeps_the_old_export(tmp_path):
  target = str(tmp_path / 'exported')
  _write_old(target)
  with pytest.raises(RuntimeError, match='boom'):
    with atomic_dir.staged_directory(target) as staging:
      open(os.path.join(staging, 'pipeline.config'), 'w').close()
      raise RuntimeError('boom')
  assert _content(target)['pipeline.config'] == 'old'
  assert _hidden(str(tmp_path)) == []


def test_unwritable_or_odd_targets_fail_up_front(tmp_path):
  with pytest.raises(ConfigError, match='--output_directory: cannot write '
                     'to /proc'):
    atomic_dir.prepare('/proc/deepmac_export/out')
  a_file = tmp_path / 'a_file'
  a_file.write_text('x')
  with pytest.raises(ConfigError, match=f'--output_directory: {a_file} '
                     'exists and is not a folder'):
    atomic_dir.prepare(str(a_file))
  with pytest.raises(ConfigError, match='not a local path'):
    atomic_dir.prepare('gs://bucket/export')


def test_exporter_checks_the_output_folder_before_anything_else(tmp_path):
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match='--output_directory: cannot write '
                     'to /proc'):
    # No checkpoint and no model are needed to say so.
    exporter.export_inference_graph('image_tensor', None,
                                    str(tmp_path / 'nope'),
                                    '/proc/deepmac_export/out')
