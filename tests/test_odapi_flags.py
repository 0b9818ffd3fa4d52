"""OD API script flags that do not apply end with one ERROR line."""

import os
import subprocess
import sys
import types

import pytest

from deepmac_tf import odapi_flags
from deepmac_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flag_values(**set_values):
  values = {name: '' for name in odapi_flags.SIDE_INPUT_FLAGS}
  values['use_side_inputs'] = False
  values.update(set_values)
  return types.SimpleNamespace(**values)


def test_unset_side_input_flags_pass():
  odapi_flags.check_side_input_flags(_flag_values())


@pytest.mark.parametrize('name,value', [
    ('use_side_inputs', True), ('side_input_shapes', '1,2'),
    ('side_input_types', 'tf.float32'), ('side_input_names', 'context')])
def test_each_side_input_flag_is_named(name, value):
  with pytest.raises(ConfigError, match=f'^--{name}: Context R-CNN side '
                     'inputs are supported by the OD API, not by deepmac_tf'):
    odapi_flags.check_side_input_flags(_flag_values(**{name: value}))


def test_exporter_accepts_and_refuses_side_input_flags(tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, 'scripts', 'exporter_main_v2.py'),
       '--pipeline_config_path=x.config', f'--trained_checkpoint_dir={tmp_path}',
       f'--output_directory={tmp_path / "out"}',
       '--side_input_shapes=1/2', '--side_input_types=tf.float32',
       '--side_input_names=context'],
      capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
  assert result.returncode == 1
  assert ('ERROR: --side_input_shapes: Context R-CNN side inputs are '
          'supported by the OD API') in result.stderr
  assert 'Traceback' not in result.stderr
