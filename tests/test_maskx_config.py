"""MaskX R-CNN config surface: the issue's field names load, defaults, and
every inconsistent combination is one ConfigError naming the field."""

import os

import pytest
from google.protobuf import text_format

from deepmac_tf import config as config_lib
from deepmac_tf.builders import mask_rcnn_builder
from deepmac_tf.builders import model_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BASE = ('model { faster_rcnn { num_classes: 10 number_of_stages: 3 '
         'feature_extractor { type: "resnet10_fpn" fpn { min_level: 2 '
         'max_level: 6 } } } }')
# The block of the issue, verbatim names.
_MASKX = '''
deepmarc_mask_head {
  network_type: "mask_rcnn_fcn"
  class_agnostic: false
  box_source: PROPOSALS
  allowed_masked_classes_ids: [1, 2, 3]
  weight_transfer {
    input: CLS_AND_BOX
    num_layers: 2
    activation: LEAKY_RELU
    hidden_dim: 512
    stop_gradient: true
  }
  mlp_mask_branch {
    num_fc_layers: 2
    fc_dim: 1024
  }
  training_mode: END_TO_END
}
'''


def _pipeline(override=_MASKX):
  pipeline = config_lib.get_pipeline_config_from_text(_BASE)
  text_format.Merge(override, pipeline.model.faster_rcnn)
  return pipeline


def test_issue_block_loads_into_params():
  params = mask_rcnn_builder.params_from_proto(_pipeline().model.faster_rcnn)
  m = params.mask_head
  assert not m.class_agnostic and m.box_source == params_lib.PROPOSALS
  assert m.weight_transfer == params_lib.WeightTransferParams(
      input=params_lib.TRANSFER_CLS_AND_BOX, num_layers=2,
      activation='leaky_relu', hidden_dim=512, stop_gradient=True)
  assert m.mlp_mask_branch == params_lib.MlpMaskBranchParams(2, 1024)
  assert m.training_mode == params_lib.END_TO_END


def test_defaults():
  params = mask_rcnn_builder.params_from_proto(_pipeline(
      'deepmarc_mask_head { class_agnostic: false weight_transfer { } '
      'mlp_mask_branch { } }').model.faster_rcnn)
  m = params.mask_head
  assert m.weight_transfer == params_lib.WeightTransferParams()
  assert (m.weight_transfer.input, m.weight_transfer.num_layers,
          m.weight_transfer.hidden_dim, m.weight_transfer.stop_gradient) == (
              'cls+box', 2, 1024, True)
  assert m.mlp_mask_branch == params_lib.MlpMaskBranchParams(2, 1024)
  plain = mask_rcnn_builder.params_from_proto(
      _pipeline('deepmarc_mask_head { }').model.faster_rcnn).mask_head
  assert plain.weight_transfer is None and plain.mlp_mask_branch is None


@pytest.mark.parametrize('override,message', [
    ('deepmarc_mask_head { weight_transfer { } }',
     r'deepmarc_mask_head\.weight_transfer: .*class_agnostic: false'),
    ('deepmarc_mask_head { class_agnostic: false network_type: '
     '"fully_connected2" crop_size: 14 mask_size: 28 weight_transfer { } }',
     r'deepmarc_mask_head\.weight_transfer: network_type "fully_connected2" '
     r'.*not a per-class 1x1'),
    ('deepmarc_mask_head { class_agnostic: false weight_transfer { '
     'num_layers: 4 } }', r'weight_transfer\.num_layers: 4'),
    ('deepmarc_mask_head { class_agnostic: false weight_transfer { '
     'num_layers: 0 } }', r'weight_transfer\.num_layers: 0'),
    ('deepmarc_mask_head { class_agnostic: false weight_transfer { '
     'hidden_dim: 0 } }', r'weight_transfer\.hidden_dim'),
    ('deepmarc_mask_head { mlp_mask_branch { fc_dim: 0 } }',
     r'mlp_mask_branch\.fc_dim'),
    ('deepmarc_mask_head { mlp_mask_branch { num_fc_layers: -1 } }',
     r'mlp_mask_branch\.num_fc_layers'),
])
def test_inconsistent_settings_name_the_field(override, message):
  with pytest.raises(ConfigError, match=message):
    mask_rcnn_builder.params_from_proto(_pipeline(override).model.faster_rcnn)


def test_stage_wise_needs_a_detector_checkpoint():
  pipeline = _pipeline(_MASKX + 'deepmarc_mask_head { training_mode: '
                       'STAGE_WISE }')
  params = mask_rcnn_builder.params_from_proto(pipeline.model.faster_rcnn)
  assert params.mask_head.stage_wise
  with pytest.raises(ConfigError,
                     match=r'train_config\.fine_tune_checkpoint: must be set '
                     r'.*STAGE_WISE'):
    model_builder.check_train_config(pipeline.model, pipeline.train_config)
  pipeline.train_config.fine_tune_checkpoint = '/somewhere/ckpt-1'
  pipeline.train_config.fine_tune_checkpoint_type = 'classification'
  with pytest.raises(ConfigError,
                     match=r'fine_tune_checkpoint_type: .*"detection"'):
    model_builder.check_train_config(pipeline.model, pipeline.train_config)
  pipeline.train_config.fine_tune_checkpoint_type = 'detection'
  model_builder.check_train_config(pipeline.model, pipeline.train_config)
  # END_TO_END needs nothing.
  model_builder.check_train_config(_pipeline().model, _pipeline().train_config)


def test_stage_wise_without_checkpoint_fails_before_training(tmp_path):
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  configs = config_lib.get_configs_from_pipeline_file(
      os.path.join(REPO, 'configs', 'maskx_synthetic_cpu.config'),
      'model { faster_rcnn { deepmarc_mask_head { training_mode: STAGE_WISE '
      '} } }')
  with pytest.raises(ConfigError, match='fine_tune_checkpoint'):
    train_loop.build_training_state(configs, None)
