"""Heads and backbones raise argument errors; each builder names its own
config field (issue 9 item 3): the same bad head setting reads
``model.faster_rcnn.deepmarc_mask_head...`` in a Deep-MARC config and
``model.center_net.deepmac_mask_estimation...`` in a Deep-MAC one."""

import os
import pathlib

import pytest

from deepmac_tf import config
from deepmac_tf import errors
from deepmac_tf.builders import center_net_builder
from deepmac_tf.builders import deepmac_builder
from deepmac_tf.builders import mask_rcnn_builder
from deepmac_tf.builders import model_builder
from deepmac_tf.mask_heads import mlp_mask_branch
from deepmac_tf.mask_heads import upsampling_mask_head
from deepmac_tf.mask_heads import weight_transfer
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.protos import model_pb2

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


def _resolve(dotted):
  """The field a dotted ``model.…`` path names (KeyError if none)."""
  descriptor = model_pb2.DetectionModel.DESCRIPTOR
  parts = dotted.split('.')
  assert parts[0] == 'model'
  field = None
  for name in parts[1:]:
    field = descriptor.fields_by_name[name]
    descriptor = field.message_type
  return field


_UPSAMPLING = upsampling_mask_head.UpsamplingMaskHead
_TRANSFER = weight_transfer.WeightTransferFunction
_MLP = mlp_mask_branch.MlpMaskBranch
# (layer construction with one bad argument, the argument it names).
_MASK_RCNN_LAYERS = [
    (lambda: _UPSAMPLING('embedding_projection'), 'network_type'),
    (lambda: _UPSAMPLING('resnet4', crop_size=14, upsample_factor=0),
     'upsample_factor'),
    (lambda: _UPSAMPLING('resnet4', num_outputs=-1), 'num_outputs'),
    (lambda: _UPSAMPLING('hourglass52', crop_size=14), 'mask_size'),
    (lambda: _TRANSFER(4, num_layers=5), 'num_layers'),
    (lambda: _TRANSFER(4, hidden_dim=0), 'hidden_dim'),
    (lambda: _TRANSFER(4, activation='tanh'), 'activation'),
    (lambda: _MLP(4, num_fc_layers=-1), 'num_fc_layers'),
    (lambda: _MLP(4, fc_dim=0), 'fc_dim'),
]


@pytest.mark.parametrize('build, argument', _MASK_RCNN_LAYERS)
def test_mask_rcnn_builder_names_a_real_field_for_each_layer_argument(
    build, argument):
  """The Deep-MARC / MaskX mask-branch layers raise argument errors; the
  Mask R-CNN builder's table turns each into a field of its config."""
  with pytest.raises(errors.ArgumentError) as raw:
    build()
  assert raw.value.argument == argument
  with pytest.raises(errors.ConfigError) as named:
    with errors.config_field_errors(mask_rcnn_builder._F,  # pylint: disable=protected-access
                                    mask_rcnn_builder._MODEL_FIELDS):  # pylint: disable=protected-access
      build()
  path = str(named.value).split(':')[0]
  assert path.startswith('model.faster_rcnn.')
  assert _resolve(path) is not None
  if argument != 'num_outputs':  # the number of classes
    assert path.startswith('model.faster_rcnn.deepmarc_mask_head.')


@pytest.mark.parametrize('build, argument', _MASK_RCNN_LAYERS[4:7])
def test_deepmac_builder_names_its_weight_transfer_fields(build, argument):
  with pytest.raises(errors.ConfigError) as named:
    with errors.config_field_errors(deepmac_builder.FIELD,
                                    deepmac_builder.HEAD_FIELDS):
      build()
  path = str(named.value).split(':')[0]
  assert path == (f'model.center_net.deepmac_mask_estimation.'
                  f'weight_transfer.{argument}')
  assert _resolve(path) is not None


@pytest.mark.parametrize('name, block', [
    ('deepmarc_synthetic_cpu.config', 'faster_rcnn { deepmarc_mask_head'),
    ('center_net_deepmac_maskx_synthetic_cpu.config',
     'center_net { deepmac_mask_estimation')])
def test_weight_transfer_setting_names_each_builders_field(name, block):
  setting = 'class_agnostic: false ' if 'faster' in block else ''
  model_config = _model_config(
      name, f'model {{ {block} {{ {setting}weight_transfer {{ num_layers: 5 '
      '} } } }')
  field = block.replace(' { ', '.')
  with pytest.raises(errors.ConfigError,
                     match=rf'^model\.{field}\.weight_transfer\.num_layers:'):
    model_builder.build(model_config, is_training=True)


def test_center_net_params_are_checked_by_the_builder():
  """The CenterNet dataclasses are plain data; the builder names fields."""
  bad = center_net_params.ObjectCenterParams(max_box_predictions=0)
  with pytest.raises(errors.ConfigError,
                     match=r'^model\.center_net\.object_center_params\.'
                     r'max_box_predictions:'):
    center_net_builder.validate_object_center_params(bad)
  bad = center_net_params.ObjectDetectionParams(scale_head_num_filters=(8, 8))
  with pytest.raises(errors.ConfigError,
                     match=r'^model\.center_net\.object_detection_task\.'
                     r'scale_head_params:'):
    center_net_builder.validate_object_detection_params(bad)
