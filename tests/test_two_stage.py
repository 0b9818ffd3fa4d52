"""The two-stage pseudo-label variants of scripts/reproduce.py: stage 2's
training / evaluation configs, the stage-1 requirement, the table."""

import json

import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import experiments
from deepmac_tf.reproduction import run_config
from deepmac_tf.reproduction import runner
from deepmac_tf.reproduction import two_stage


@pytest.mark.parametrize('name', ['two_stage_deepmac', 'two_stage_mask_rcnn'])
def test_stage_two_trains_every_class_on_the_pseudo_records(name, tmp_path):
  variant = next(v for v in experiments.METHODS.variants if v.name == name)
  pipeline = run_config.build_pipeline(
      variant.template_path(), str(tmp_path), [variant.override], steps=10)
  seen = list(run_config.mask_block(pipeline).allowed_masked_classes_ids)
  assert seen == [1, 2, 3, 4, 5]
  train, evaluation = two_stage.stage_two_pipelines(pipeline, '/p/x.record')
  assert list(train.train_input_reader.tf_record_input_reader.input_path) == [
      '/p/x.record']
  # Fully supervised: every class trains masks.
  assert not run_config.mask_block(train).allowed_masked_classes_ids
  # Evaluation keeps the stage-1 split and the real validation masks.
  assert list(run_config.mask_block(evaluation).allowed_masked_classes_ids) == (
      seen)
  assert evaluation.eval_input_reader == pipeline.eval_input_reader
  assert 'PATH' not in str(
      evaluation.train_input_reader.tf_record_input_reader.input_path)


def test_every_stage_one_is_an_earlier_variant_of_its_experiment():
  for experiment in experiments.EXPERIMENTS.values():
    names = [v.name for v in experiment.variants]
    for index, variant in enumerate(experiment.variants):
      if variant.pseudo_labels_from:
        assert variant.pseudo_labels_from in names[:index], variant.name


def test_unfinished_stage_one_is_refused(tmp_path):
  with pytest.raises(ConfigError, match='stage-1 run has not finished'):
    two_stage.prepare(str(tmp_path / 'stage1'), str(tmp_path / 'data'),
                      str(tmp_path / 'stage2'))


def test_settings_name_the_stage_one_variant():
  variant = next(v for v in experiments.METHODS.variants
                 if v.name == 'two_stage_deepmac')
  settings = runner.run_settings(experiments.METHODS, variant, 0, 10,
                                 experiments.METHODS.data, None, '')
  assert settings['pseudo_labels_from'] == 'deepmac_hg20'
  json.dumps(settings)
  plain = next(v for v in experiments.METHODS.variants
               if v.name == 'deepmac_hg20')
  assert 'pseudo_labels_from' not in runner.run_settings(
      experiments.METHODS, plain, 0, 10, experiments.METHODS.data, None, '')


def test_mask_rcnn_stage_two_is_the_partially_supervised_baseline_on_pseudo_masks(
    tmp_path):
  """The paper's recipe (appendix B.2): stage 2 is Mask R-CNN with the
  class-agnostic FCN head on proposals, i.e. the ``mask_rcnn`` baseline of
  the same table, differing only in its training data (the pseudo-labelled
  records) and in training masks of every class."""
  def pipeline(name):
    variant = next(v for v in experiments.METHODS.variants if v.name == name)
    return variant, run_config.build_pipeline(
        variant.template_path(), str(tmp_path), [variant.override], steps=10)
  variant, stage_two = pipeline('two_stage_mask_rcnn')
  _, baseline = pipeline('mask_rcnn')
  assert variant.pseudo_labels_from == 'deepmac_hg20'
  train, evaluation = two_stage.stage_two_pipelines(stage_two, '/p/x.record')
  assert train.model.WhichOneof('model') == 'faster_rcnn'
  head = run_config.mask_block(train)
  assert head.network_type == 'mask_rcnn_fcn'
  assert head.class_agnostic
  assert head.box_source == type(head).PROPOSALS
  assert not head.allowed_masked_classes_ids
  # Same model as the baseline but for the classes allowed masks.
  expected = type(baseline)()
  expected.CopyFrom(baseline)
  del run_config.mask_block(expected).allowed_masked_classes_ids[:]
  assert train.model == expected.model
  assert train.train_config == baseline.train_config
  assert evaluation.model == baseline.model
  assert evaluation.eval_config == baseline.eval_config
  assert list(train.train_input_reader.tf_record_input_reader.input_path) == [
      '/p/x.record']
  assert list(baseline.train_input_reader.tf_record_input_reader.input_path
             ) != ['/p/x.record']
