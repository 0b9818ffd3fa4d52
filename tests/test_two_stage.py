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
