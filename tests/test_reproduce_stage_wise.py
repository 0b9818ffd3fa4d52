"""reproduce.py's stage-wise MaskX R-CNN experiment (``maskx_stage_wise``):
one detector run, four mask branches restoring and freezing it."""

import json
import os

import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import faster_rcnn_pb2
from deepmac_tf.reproduction import experiments
from deepmac_tf.reproduction import run_config
from deepmac_tf.reproduction import runner

_EXPERIMENT = experiments.get('maskx_stage_wise')
_DATA = '/data_dir'


def _pipeline(variant):
  return run_config.build_pipeline(
      variant.template_path(), _DATA, [_EXPERIMENT.override, variant.override],
      _EXPERIMENT.run_steps(variant, _EXPERIMENT.steps),
      _EXPERIMENT.input_size)


def _by_name():
  return {v.name: v for v in _EXPERIMENT.variants}


def test_mask_variants_restore_an_earlier_detector_run_and_freeze_it():
  names = [v.name for v in _EXPERIMENT.variants]
  mask_variants = [v for v in _EXPERIMENT.variants if v.detector_from]
  assert [v.name for v in mask_variants] == [
      'class_agnostic', 'class_agnostic_mlp', 'transfer', 'transfer_mlp']
  for variant in mask_variants:
    # The plan runs variants in table order: the detector comes first.
    assert names.index(variant.detector_from) < names.index(variant.name)
    block = run_config.mask_block(_pipeline(variant))
    assert block.training_mode == faster_rcnn_pb2.DeepMarcMaskHead.STAGE_WISE
  detector = _by_name()['detector']
  assert not detector.detector_from
  with pytest.raises(ConfigError, match='no mask block'):
    run_config.mask_block(_pipeline(detector))


def test_the_four_mask_branches_are_the_papers_ablation():
  blocks = {name: run_config.mask_block(_pipeline(v))
            for name, v in _by_name().items() if v.detector_from}
  expected = {'class_agnostic': (True, False, False),
              'class_agnostic_mlp': (True, False, True),
              'transfer': (False, True, False),
              'transfer_mlp': (False, True, True)}
  for name, (agnostic, transfer, mlp) in expected.items():
    block = blocks[name]
    assert (block.class_agnostic, block.HasField('weight_transfer'),
            block.HasField('mlp_mask_branch')) == (agnostic, transfer, mlp)
    # The same FCN head on the same boxes: only the ablated parts differ.
    assert (block.network_type, block.num_init_channels, block.crop_size,
            block.mask_size, block.box_source) == (
                'mask_rcnn_fcn', 32, 14, 28,
                faster_rcnn_pb2.DeepMarcMaskHead.PROPOSALS), name


def test_every_mask_variant_has_the_detector_runs_detector():
  """The checkpoint restores only if backbone, anchors, RPN and box head
  are configured alike: the model configs differ only in the mask part."""
  def detector_part(variant):
    model = _pipeline(variant).model.faster_rcnn
    model.ClearField('deepmarc_mask_head')
    model.ClearField('number_of_stages')
    return model
  reference = detector_part(_by_name()['detector'])
  for variant in _EXPERIMENT.variants:
    assert detector_part(variant) == reference, variant.name


def test_detector_trains_its_own_steps_and_settings_name_its_source():
  variants = _by_name()
  steps = {name: _EXPERIMENT.run_steps(v, 100)
           for name, v in variants.items()}
  assert steps['detector'] == _EXPERIMENT.detector_steps > 100
  assert _EXPERIMENT.run_steps(variants['detector'], 100, 7) == 7
  assert _EXPERIMENT.run_steps(variants['transfer'], 100, 7) == 100
  settings = {name: runner.run_settings(_EXPERIMENT, v, 0, steps[name],
                                        _EXPERIMENT.data, 64, '')
              for name, v in variants.items()}
  assert 'detector_from' not in settings['detector']
  for name in ('class_agnostic', 'transfer_mlp'):
    assert settings[name]['steps'] == 100
    assert settings[name]['detector_from'] == 'detector'
  # Other experiments have no detector runs: every variant trains --steps.
  maskx = experiments.get('maskx')
  assert {maskx.run_steps(v, 100, 7) for v in maskx.variants} == {100}


def test_restore_detector_points_at_the_evaluated_checkpoint(tmp_path):
  detector_dir = runner.run_dir(str(tmp_path), 'detector', 1)
  pipeline = _pipeline(_by_name()['transfer'])
  with pytest.raises(ConfigError, match='--heads detector'):
    runner._restore_detector(pipeline, str(tmp_path), 'detector', 1)
  os.makedirs(detector_dir)
  with open(os.path.join(detector_dir, runner.RUN_FILE), 'w',
            encoding='utf-8') as f:
    json.dump({'checkpoint': os.path.join('model_dir', 'ckpt-7')}, f)
  runner._restore_detector(pipeline, str(tmp_path), 'detector', 1)
  assert pipeline.train_config.fine_tune_checkpoint == os.path.join(
      detector_dir, 'model_dir', 'ckpt-7')
  assert pipeline.train_config.fine_tune_checkpoint_type == 'detection'


def test_results_compare_mask_variants_to_each_other_not_to_the_detector():
  from deepmac_tf.reproduction import summary  # pylint: disable=g-import-not-at-top
  variants = _EXPERIMENT.variants[:3]
  values = {'detector': (None, None), 'class_agnostic': (15.0, 3.0),
            'class_agnostic_mlp': (16.0, 3.5)}
  records = [{'name': name, 'seed': 0, 'seen': seen, 'unseen': unseen,
              'seconds': 1.0, 'cpu_seconds': 1.0, 'box_ap': 17.0,
              'per_class': {}} for name, (seen, unseen) in values.items()]
  text = summary.markdown(summary.build_results(
      _EXPERIMENT, variants, records, [], {'command': 'c', 'steps': 1,
                                           'seeds': 1, 'priors': {}}))
  assert 'Differences to class-agnostic (means' in text
  assert '- class-agnostic+MLP: seen +1.0, unseen +0.5' in text
  assert 'Differences to detector' not in text
