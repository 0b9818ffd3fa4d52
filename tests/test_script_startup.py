"""Every script answers ``--help`` without importing TensorFlow (the import
alone takes seconds; the OD API's exporter took 27 s to print its help), and
scripts are quiet by default (``cli`` sets ``TF_CPP_MIN_LOG_LEVEL`` before
TensorFlow loads)."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(REPO, 'scripts', '*.py')))

_PROBE = '''
import contextlib, io, runpy, sys
sys.path.insert(0, {repo!r})
sys.argv = [{script!r}, '--help']
with contextlib.redirect_stdout(io.StringIO()):
  try:
    runpy.run_path({script!r}, run_name='__main__')
  except SystemExit as e:
    code = e.code
print('tensorflow' in sys.modules, code)
'''


@pytest.mark.parametrize('script', SCRIPTS, ids=os.path.basename)
def test_help_does_not_import_tensorflow(script):
  result = subprocess.run(
      [sys.executable, '-c', _PROBE.format(repo=REPO, script=script)],
      capture_output=True, text=True, timeout=120, cwd=REPO)
  assert result.stdout.split() == ['False', '0'], result.stderr[-2000:]


def test_scripts_quiet_tensorflow_before_importing_it():
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  probe = ('import os, sys; sys.argv = ["x"]; from deepmac_tf import cli; '
           'print(os.environ["TF_CPP_MIN_LOG_LEVEL"], '
           '"tensorflow" in sys.modules)')
  quiet = subprocess.run([sys.executable, '-c', probe], capture_output=True,
                         text=True, timeout=60, cwd=REPO, env=env)
  assert quiet.stdout.split()[1] == 'False'
  assert quiet.stdout.split()[0] in ('2', '3')
  verbose = subprocess.run(
      [sys.executable, '-c', probe.replace('["x"]', '["x", "--verbose"]')],
      capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
  assert 'KeyError' in verbose.stderr  # left unset: TF logs everything
