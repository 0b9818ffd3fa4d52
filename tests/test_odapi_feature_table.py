"""README's "OD API feature -> here" stays true (issue 13, part 7): its step
lists match preprocessor.proto and the augmentation catalogue, its flag rows
match the scripts, and the proto facts it states hold."""

import json
import os
import re

from deepmac_tf.data.augmentation import builder
from deepmac_tf.data.augmentation import catalogue
from deepmac_tf.protos import anchor_generator_pb2
from deepmac_tf.protos import center_net_pb2
from deepmac_tf.protos import image_resizer_pb2
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import optimizer_pb2
from deepmac_tf.protos import preprocessor_pb2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The OD API's own flags (model_main_tf2.py and exporter_main_v2.py, 2.8).
ODAPI_MODEL_MAIN_FLAGS = {
    'pipeline_config_path', 'num_train_steps', 'eval_on_train_data',
    'sample_1_of_n_eval_examples', 'sample_1_of_n_eval_on_train_examples',
    'model_dir', 'checkpoint_dir', 'eval_timeout', 'use_tpu', 'tpu_name',
    'num_workers', 'checkpoint_every_n', 'record_summaries'}
ODAPI_EXPORTER_FLAGS = {
    'input_type', 'pipeline_config_path', 'trained_checkpoint_dir',
    'output_directory', 'config_override', 'use_side_inputs',
    'side_input_shapes', 'side_input_types', 'side_input_names'}


def _section():
  with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
    text = f.read()
  start = text.index('## OD API feature -> here')
  end = text.index('\n## ', start + 3)
  return text[start:end]


def _paragraph(section, starts_with):
  """The bullet that starts with ``starts_with`` (to the next bullet)."""
  start = section.index(starts_with)
  end = section.find('\n- ', start + 1)
  end = section.find('\n\n', start) if end < 0 else min(
      end, section.find('\n\n', start))
  return section[start:end]


def _names(text):
  return set(re.findall(r'`([a-z0-9_]+)`', text))


def test_step_lists_match_the_proto_and_the_catalogue():
  section = _section()
  works = _names(_paragraph(section, '- Work'))
  refused = _names(_paragraph(section, '- Refused'))
  steps = {f.name for f in preprocessor_pb2.PreprocessingStep.DESCRIPTOR.fields}
  assert works == set(builder.STEPS)
  assert refused == set(catalogue.UNSUPPORTED_STEPS)
  assert works | refused == steps and not works & refused
  with open(os.path.join(REPO, 'tests', 'fixtures',
                         'odapi_2_8_proto_fields.json'), encoding='utf-8') as f:
    odapi = json.load(f)['preprocessor.proto']['PreprocessingStep']
  assert steps == set(odapi)


def _defined_flags(script):
  path = os.path.join(REPO, 'scripts', script)
  with open(path, encoding='utf-8') as f:
    source = f.read()
  flags = set(re.findall(r"DEFINE_[a-z]+\(\s*'([a-z0-9_]+)'", source))
  if 'define_side_input_flags' in source:
    from deepmac_tf import odapi_flags  # pylint: disable=g-import-not-at-top
    flags |= set(odapi_flags.SIDE_INPUT_FLAGS)
  return flags


def test_every_odapi_flag_is_defined_and_listed():
  section = _section()
  listed = set(re.findall(r'`--([a-z0-9_]+)`', section))
  assert ODAPI_MODEL_MAIN_FLAGS <= _defined_flags('model_main_tf2.py')
  assert ODAPI_EXPORTER_FLAGS <= _defined_flags('exporter_main_v2.py')
  assert ODAPI_MODEL_MAIN_FLAGS | ODAPI_EXPORTER_FLAGS <= listed


def test_stated_proto_facts_hold():
  section = _section()
  field = center_net_pb2.CenterNet.DeepMACMaskEstimation.DESCRIPTOR.fields_by_name[
      'embedding_head_kernel']
  assert field.number == 1001 and 'field 1001' in section
  assert {'AUTO', 'KERNEL_3X3', 'KERNEL_1X3'} == set(
      field.enum_type.values_by_name)
  anchors = anchor_generator_pb2.AnchorGenerator.DESCRIPTOR.fields_by_name
  assert {'grid_anchor_generator', 'multiscale_anchor_generator'} <= set(
      anchors)
  assert '`grid_anchor_generator`' in section


def test_odapi_center_net_and_preprocessor_fields_all_parse():
  """Every field of the OD API 2.8 CenterNet, PreprocessingStep,
  ImageResizer, InputReader and Optimizer schemas
  exists here with its number (the old color_consistency_* spellings are
  rewritten to feature_consistency_* by the loader)."""
  with open(os.path.join(REPO, 'tests', 'fixtures',
                         'odapi_2_8_proto_fields.json'), encoding='utf-8') as f:
    odapi = json.load(f)
  modules = {'center_net.proto': center_net_pb2,
             'preprocessor.proto': preprocessor_pb2,
             'image_resizer.proto': image_resizer_pb2,
             'input_reader.proto': input_reader_pb2,
             'optimizer.proto': optimizer_pb2}
  for proto_file, module in modules.items():
    for message, fields in odapi[proto_file].items():
      ours = module
      for part in message.split('.'):
        ours = getattr(ours, part)
      by_name = ours.DESCRIPTOR.fields_by_name
      for name, (number, *_) in fields.items():
        name = name.replace('color_consistency', 'feature_consistency')
        assert name in by_name, f'{message}.{name}'
        assert by_name[name].number == number, f'{message}.{name}'


def test_faster_rcnn_row_lists_backbones_and_no_effect_fields():
  """The Faster R-CNN row names every OD API Keras backbone type we build
  and every field accepted without effect (faster_rcnn_options.NO_EFFECT)."""
  from deepmac_tf.backbones import deepmarc_backbones  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
  section = _section()
  row = section[section.index('| `model { faster_rcnn {'):]
  row = row[:row.index('\n')]
  names = _names(row)
  odapi_types = {n for n in deepmarc_backbones.backbone_names()
                 if deepmarc_backbones.is_single_level(n)}
  assert len(odapi_types) == 4
  odapi_types |= {f'faster_rcnn_resnet{d}_fpn_keras' for d in (50, 101, 152)}
  assert odapi_types and odapi_types <= names
  assert _handled(faster_rcnn_options, (
      'FasterRcnn', 'FasterRcnnFeatureExtractor', 'MaskRCNNBoxPredictor'),
                  ('no effect',)) <= names


def _handled(options, messages, kinds):
  """Fields of ``messages`` whose FIELD_HANDLING is one of ``kinds``."""
  return {name for message in messages
          for name, kind in options.FIELD_HANDLING[message].items()
          if kind in kinds}


def _row(section, starts_with):
  row = section[section.index(starts_with):]
  return row[:row.index('\n')]


def test_center_net_train_and_eval_rows_name_their_fields():
  """The CenterNet row names every registered feature extractor and its
  no-effect fields; the train / eval row names every no-effect and
  only-default field of TrainConfig and EvalConfig."""
  from deepmac_tf.backbones import registry  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
  section = _section()
  center_net = _names(_row(section, '| `model { center_net {'))
  # The OD API's type names (our small hourglass / conv test networks
  # aside).
  odapi_types = {n for n in registry.feature_extractor_names()
                 if not n.startswith(('hourglass_', 'small_conv'))}
  odapi_types.add('hourglass_104')
  assert 'mobilenet_v2_fpn_sep_conv' in odapi_types
  assert odapi_types <= center_net
  assert _handled(faster_rcnn_options, ('CenterNet',), ('no effect',)) <= (
      center_net)
  train_eval = _names(_row(section, '| `train_config { ... }`'))
  assert _handled(faster_rcnn_options, ('TrainConfig', 'EvalConfig'),
                  ('no effect', 'only default')) <= train_eval


def test_resizer_optimizer_reader_and_deepmac_row_names_its_fields():
  """The row names the refused resizers and every no-effect, only-default
  and refused field of InputReader and DeepMACMaskEstimation."""
  from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import image_resizer  # pylint: disable=g-import-not-at-top
  row = _names(_row(_section(), '| `image_resizer`, `optimizer`'))
  assert set(image_resizer.REFUSED_RESIZERS) <= row
  assert _handled(faster_rcnn_options,
                  ('InputReader', 'DeepMACMaskEstimation'),
                  ('no effect', 'only default', 'refused')) - {
                      'external_input_reader'} <= row


def test_losses_post_processing_hyperparams_row_names_its_fields():
  """The row names every no-effect, only-default and refused field of the
  loss, post-processing, hyperparams and anchor messages, and the OD API
  2.8 fields of those messages parse here with their numbers."""
  from deepmac_tf.builders import faster_rcnn_options  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import calibration_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import eval_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import faster_rcnn_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import hyperparams_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import losses_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import post_processing_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import train_pb2  # pylint: disable=g-import-not-at-top
  row = _names(_row(_section(), '| Losses, post-processing'))
  assert _handled(faster_rcnn_options, (
      'Hyperparams', 'Regularizer', 'PostProcessing', 'BatchNonMaxSuppression',
      'MultiscaleAnchorGenerator', 'ClassificationLoss', 'LocalizationLoss',
      'WeightedSigmoidClassificationLoss',
      'WeightedSoftmaxClassificationLoss'),
                  ('no effect', 'only default', 'refused')) <= row
  assert {'hard_example_miner', 'use_combined_nms_in_first_stage',
          'output_final_box_rpn_features', 'keras_initializer_by_name'} <= row
  with open(os.path.join(REPO, 'tests', 'fixtures',
                         'odapi_2_8_proto_fields.json'), encoding='utf-8') as f:
    odapi = json.load(f)
  checked = [('post_processing.proto', 'BatchNonMaxSuppression',
              post_processing_pb2.BatchNonMaxSuppression),
             ('hyperparams.proto', 'Initializer', hyperparams_pb2.Initializer),
             ('losses.proto', 'HardExampleMiner', losses_pb2.HardExampleMiner),
             ('faster_rcnn.proto', 'FasterRcnn', faster_rcnn_pb2.FasterRcnn),
             ('post_processing.proto', 'PostProcessing',
              post_processing_pb2.PostProcessing),
             ('eval.proto', 'EvalConfig', eval_pb2.EvalConfig),
             ('train.proto', 'TrainConfig', train_pb2.TrainConfig)]
  pool = calibration_pb2.DESCRIPTOR.pool
  checked += [('calibration.proto', name,
               pool.FindMessageTypeByName(f'deepmac_tf.protos.{name}'))
              for name in odapi['calibration.proto']]
  for proto_file, message, ours in checked:
    by_name = getattr(ours, 'DESCRIPTOR', ours).fields_by_name
    for name, (number, *_) in odapi[proto_file][message].items():
      if name == 'context_config':  # not parsed yet (README says so)
        continue
      assert name in by_name, f'{message}.{name}'
      assert by_name[name].number == number, f'{message}.{name}'
