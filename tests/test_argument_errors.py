"""Heads and backbones raise argument errors; each builder names its own
config field (issue 9 item 3): the same bad head setting reads
``model.faster_rcnn.deepmarc_mask_head...`` in a Deep-MARC config and
``model.center_net.deepmac_mask_estimation...`` in a Deep-MAC one."""

import os
import pathlib

import pytest

from deepmac_tf import config
from deepmac_tf import errors
from deepmac_tf.builders import model_builder

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'
# The bottleneck head checks its width when it is built: 6 channels cannot
# scale its table widths (multiples of nc / 64).
BAD_HEAD = 'network_type: "resnet_bottleneck_quarter6" num_init_channels: 6'


def _model_config(name, override):
  return config.get_configs_from_pipeline_file(str(CONFIGS / name),
                                               override)['model']


def test_argument_error_names_its_argument():
  error = errors.ArgumentError('must be positive, got 0.', 'dim')
  assert str(error) == 'dim: must be positive, got 0.'
  assert isinstance(error, ValueError) and error.argument == 'dim'
  with pytest.raises(errors.ConfigError, match=r'^model\.x\.y_field: must'):
    with errors.config_field_errors('model.x', {'dim': 'y_field'}):
      raise error


@pytest.mark.parametrize('setting,message', [
    (BAD_HEAD, r'num_init_channels: 6 cannot scale'),  # at construction
    ('network_type: "resnet21"',
     r"network_type: unknown mask head 'resnet21'\. Did you mean "
     r"'resnet20'\?")])
@pytest.mark.parametrize('name,block', [
    ('deepmarc_synthetic_cpu.config', 'faster_rcnn { deepmarc_mask_head'),
    ('center_net_deepmac_synthetic_cpu.config',
     'center_net { deepmac_mask_estimation')])
def test_head_errors_name_each_builders_field(name, block, setting, message):
  model_config = _model_config(name, f'model {{ {block} {{ {setting} }} }} }}')
  field = block.replace(' { ', '.')
  with pytest.raises(errors.ConfigError, match=rf'^model\.{field}\.{message}'):
    model_builder.build(model_config, is_training=True)


def test_backbone_argument_error_names_the_feature_extractor_field():
  model_config = _model_config(
      'center_net_deepmac_synthetic_cpu.config',
      'model { center_net { feature_extractor { channel_means: [1, 2] } } }')
  with pytest.raises(errors.ConfigError,
                     match=r'^model\.center_net\.feature_extractor\.'
                     r'channel_means: expected 3 values'):
    model_builder.build(model_config, is_training=True)


def test_heads_and_backbones_name_no_config_field():
  offenders = []
  for part in ('mask_heads', 'backbones', 'layers', 'ops'):
    for path in sorted((REPO / 'deepmac_tf' / part).glob('*.py')):
      text = path.read_text()
      for field in ('model.center_net', 'model.faster_rcnn'):
        if field in text:
          offenders.append(f'{os.path.relpath(path, REPO)}: {field}')
  assert not offenders, offenders
