"""scripts/reproduce.py and deepmac_tf.reproduction: results, resume, plots."""

import json
import os
import subprocess
import sys

import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import experiments
from deepmac_tf.reproduction import run_config
from deepmac_tf.reproduction import summary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'reproduce.py')
SUMMARY_KEYS = {'name', 'seen_mean', 'seen_std', 'unseen_mean', 'unseen_std',
                'n_seeds', 'seconds'}
# A tiny setting: 32 px images, a narrow model, 2 steps of 2 images.
TINY = ['--experiment=mask_heads', '--heads=resnet4', '--steps=2',
        '--num_train_images=8', '--num_val_images=6', '--image_size=32',
        '--log_every_n_steps=1',
        '--config_override=model { center_net { deepmac_mask_estimation { '
        'mask_size: 16 num_init_channels: 8 dim: 8 pixel_embedding_dim: 8 } } '
        '} train_config { batch_size: 2 }']


def _run(*args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, timeout=600, env=env, cwd=REPO)


def test_tiny_experiment_writes_results_resumes_and_plots(tmp_path):
  out = str(tmp_path / 'out')
  first = _run(*TINY, '--seeds=1', f'--output_dir={out}')
  assert first.returncode == 0, first.stderr[-3000:]
  assert '[run 1/1] resnet4 seed 0: training 2 steps' in first.stdout
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  assert [set(row) for row in results['summary']] == [SUMMARY_KEYS]
  row = results['summary'][0]
  assert row['name'] == 'resnet4' and row['n_seeds'] == 1
  assert 0 <= row['seen_mean'] <= 100 and 0 <= row['unseen_mean'] <= 100
  run = results['runs'][0]
  assert run['settings']['steps'] == 2 and run['seed'] == 0
  assert run['seen_class_ids'] == [1, 2, 3, 4, 5]
  assert run['metrics']['DetectorFreeMasks/mIoU_seen'] * 100 == (
      pytest.approx(row['seen_mean'], abs=0.01))
  assert set(run['per_class']) == {'circle', 'ellipse', 'square', 'triangle',
                                   'hexagon', 'star', 'cross', 'ring',
                                   'crescent', 'l_shape'}
  assert results['plots'] == ['seen_unseen.png', 'examples.png',
                              'per_class.png']
  for name in results['plots']:
    assert os.path.getsize(os.path.join(out, name)) > 1000
  text = open(os.path.join(out, 'results.md')).read()
  assert '| ResNet-4 |' in text and '78.6 / 62.1' in text  # the paper's
  assert 'ResNet-4 seen   #' in text  # the text bars

  # Without --resume the finished runs are not silently overwritten.
  refused = _run(*TINY, '--seeds=1', f'--output_dir={out}')
  assert refused.returncode == 1
  assert 'ERROR:' in refused.stderr and '--resume' in refused.stderr

  # Resuming with a second seed reuses seed 0 and runs seed 1 only.
  second = _run(*TINY, '--seeds=2', '--resume', f'--output_dir={out}')
  assert second.returncode == 0, second.stderr[-3000:]
  assert '[run 1/2] resnet4 seed 0: finished earlier, reused' in second.stdout
  assert '[run 2/2] resnet4 seed 1: training 2 steps' in second.stdout
  with open(os.path.join(out, 'results.json')) as f:
    resumed = json.load(f)
  assert resumed['runs'][0] == results['runs'][0]
  assert resumed['summary'][0]['n_seeds'] == 2
  assert resumed['summary'][0]['seen_std'] >= 0


def test_mean_std_and_rows():
  assert summary.mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
  assert summary.mean_std([5.0]) == (5.0, 0.0)
  assert summary.mean_std([None]) == (None, None)
  variant = experiments.MASK_HEADS.variants[0]
  records = [{'name': variant.name, 'seen': 80.0, 'unseen': 60.0,
              'seconds': 10.0, 'box_ap': None, 'per_class': {'star': 50.0}},
             {'name': variant.name, 'seen': 82.0, 'unseen': 64.0,
              'seconds': 12.0, 'box_ap': None, 'per_class': {'star': 70.0}}]
  rows = summary.summary_rows([variant], records)
  assert rows == [{'name': 'resnet4', 'seen_mean': 81.0,
                   'seen_std': pytest.approx(1.41, abs=0.01),
                   'unseen_mean': 62.0, 'unseen_std': pytest.approx(2.83,
                                                                    abs=0.01),
                   'n_seeds': 2, 'seconds': 22.0}]
  assert summary.per_class_means([variant], records) == {
      'resnet4': {'star': 60.0}}


def test_unknown_head_and_experiment_are_config_errors():
  with pytest.raises(ConfigError, match='resnet5'):
    experiments.MASK_HEADS.select(['resnet5'])
  with pytest.raises(ConfigError, match='mask_heads'):
    experiments.get('mask_head')
  heads = [v.name for v in experiments.EMBEDDINGS.select(['hourglass20'])]
  assert heads == ['hourglass20', 'hourglass20+no_xy',
                   'hourglass20+no_instance', 'hourglass20+no_embeddings']


def test_every_available_variant_config_parses(tmp_path):
  for experiment in experiments.EXPERIMENTS.values():
    for variant in experiment.variants:
      if not variant.template_path():
        assert variant.note  # says what it waits for
        continue
      pipeline = run_config.build_pipeline(
          variant.template_path(), str(tmp_path),
          [experiment.override, variant.override], steps=30,
          input_size=experiment.input_size,
          seen_class_ids=[2, 7] if variant.num_seen_classes else None)
      assert pipeline.train_config.num_steps == 30
      if variant.head:
        assert f'network_type: "{variant.head}"' in str(pipeline.model)
      if variant.num_seen_classes:
        assert run_config.seen_class_ids(pipeline) == [2, 7]
        assert pipeline.eval_config.super_categories['unseen'].startswith(
            'circle,square')


def test_random_seen_split_is_per_seed_and_deterministic():
  first = run_config.random_seen_split(3, seed=0)
  assert first == run_config.random_seen_split(3, seed=0)
  assert len(first) == 3 and first == sorted(first)
  assert {tuple(run_config.random_seen_split(3, s)) for s in range(5)} != {
      tuple(first)}


def test_eta_uses_each_variants_own_run_time():
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('reproduce_script', SCRIPT)
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  assert script._eta({}, ['resnet4']) == 'known after the first run'
  assert script._eta({'resnet4': [100.0]}, []) == '0:00:00'
  # hourglass20 has no run yet: it costs the mean of all runs so far.
  assert script._eta({'resnet4': [100.0, 140.0]},
                     ['resnet4', 'hourglass20']) == '0:04:00'
  assert script._eta({'resnet4': [60.0], 'hourglass20': [3600.0]},
                     ['hourglass20', 'resnet4']) == '1:01:00'
