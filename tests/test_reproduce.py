"""scripts/reproduce.py and deepmac_tf.reproduction: results, resume, plots."""

import functools
import json
import os
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import pytest

from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import experiments
from deepmac_tf.reproduction import run_config
from deepmac_tf.reproduction import runner
from deepmac_tf.reproduction import summary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'reproduce.py')
SUMMARY_KEYS = {'name', 'seen_mean', 'seen_std', 'unseen_mean', 'unseen_std',
                'n_seeds', 'seconds'}
# A tiny setting: 32 px images, a narrow model, 1 step of 2 images.
TINY = ['--experiment=mask_heads', '--heads=resnet4', '--steps=1',
        '--num_train_images=4', '--num_val_images=4', '--image_size=32',
        '--log_every_n_steps=1',
        '--config_override=model { center_net { deepmac_mask_estimation { '
        'mask_size: 8 num_init_channels: 4 dim: 4 pixel_embedding_dim: 4 } } '
        '} train_config { batch_size: 2 }']


@functools.lru_cache(maxsize=None)
def _script_module():
  """scripts/reproduce.py loaded once per process (its flags are global)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('reproduce_script', SCRIPT)
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  return script


def _run(*args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, timeout=600, env=env, cwd=REPO)


def test_tiny_experiment_writes_results_resumes_and_plots(tmp_path,
                                                          monkeypatch,
                                                          capsys):
  out = str(tmp_path / 'out')
  first = _run(*TINY, '--seeds=1', f'--output_dir={out}')
  assert first.returncode == 0, first.stderr[-3000:]
  assert '[run 1/1] resnet4 seed 0: training 1 steps' in first.stdout
  with open(os.path.join(out, 'results.json')) as f:
    results = json.load(f)
  assert [set(row) for row in results['summary']] == [SUMMARY_KEYS]
  row = results['summary'][0]
  assert row['name'] == 'resnet4' and row['n_seeds'] == 1
  assert 0 <= row['seen_mean'] <= 100 and 0 <= row['unseen_mean'] <= 100
  run = results['runs'][0]
  assert run['settings']['steps'] == 1 and run['seed'] == 0
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
  # The no-training references, scored on the same validation instances.
  assert set(results['priors']) == {'ellipse', 'box'}
  assert '| *ellipse inscribed in the box (no training)* |' in text
  assert 'Above the inscribed ellipse' in text

  # Without --resume the finished runs are not silently overwritten.
  refused = _run(*TINY, '--seeds=1', f'--output_dir={out}')
  assert refused.returncode == 1
  assert 'ERROR:' in refused.stderr and '--resume' in refused.stderr

  # Resuming with a second seed reuses seed 0 and runs seed 1 only (in
  # process, with the run itself replaced: its training is the first run's).
  executed = []

  def fake_execute(experiment, variant, settings, data_dir, path, examples,
                   log_every):
    del experiment, data_dir, examples, log_every
    executed.append((variant.name, settings['seed']))
    record = dict(results['runs'][0], seed=settings['seed'],
                  settings=json.loads(json.dumps(settings)))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, runner.RUN_FILE), 'w') as f:
      json.dump(record, f)
    return record

  script = _script_module()
  monkeypatch.setattr(runner, 'execute', fake_execute)
  with flagsaver.flagsaver():
    flags.FLAGS(['reproduce.py', *TINY, '--seeds=2', '--resume',
                 f'--output_dir={out}'])
    assert script.main([]) == 0
  printed = capsys.readouterr().out
  assert executed == [('resnet4', 1)]
  assert '[run 1/2] resnet4 seed 0: finished earlier, reused' in printed
  assert '[run 2/2] resnet4 seed 1: training 1 steps' in printed
  with open(os.path.join(out, 'results.json')) as f:
    resumed = json.load(f)
  assert resumed['runs'][0] == results['runs'][0]
  assert [r['seed'] for r in resumed['runs']] == [0, 1]
  assert resumed['summary'][0]['n_seeds'] == 2
  assert resumed['summary'][0]['seen_std'] == 0


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


def test_box_priors_score_the_box_alone(tmp_path):
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import priors  # pylint: disable=g-import-not-at-top
  synthetic.create_dataset(str(tmp_path), 1, 40, seed=3, write_records=False,
                           show_progress=False)
  scores = priors.box_priors(str(tmp_path), synthetic.SEEN_CLASS_IDS)
  assert list(scores) == ['ellipse', 'box']
  for name in scores:
    # Seen classes are convex and fill their box, unseen ones do not.
    assert 0 < scores[name]['unseen'] < scores[name]['seen'] < 100
  # An ellipse fits the (mostly round) shapes better than the whole box.
  assert scores['ellipse']['seen'] > scores['box']['seen']


def test_inscribed_ellipses_match_box_region_convention():
  from deepmac_tf.evaluation import miou  # pylint: disable=g-import-not-at-top
  boxes = [[0.25, 0.0, 0.75, 1.0]]
  ellipse = miou.inscribed_ellipses(boxes, 8, 8)[0]
  assert ellipse.shape == (8, 8)
  assert not ellipse[:2].any() and not ellipse[6:].any()  # outside the box
  assert ellipse[3:5].all()  # the middle rows span the width
  assert (ellipse <= miou.box_region(boxes, 8, 8)[0]).all()


def test_story_lines_read_the_numbers():
  from deepmac_tf.reproduction import story  # pylint: disable=g-import-not-at-top
  references = {'ellipse': {'seen': 74.3, 'unseen': 52.7}}
  metrics = {'BoxPromptedMasks/mIoU_seen': 0.85,
             'BoxPromptedMasks/mIoU_unseen': 0.52,
             'DetectionMasks_SeenClasses/mAP': 0.096,
             'DetectionMasks_UnseenClasses/mAP': -1.0,
             'DetectionBoxes_Precision/mAP': 0.069}
  text = '\n'.join(story.story_lines(metrics, references, 'val_0.png'))
  assert 'masks at the groundtruth boxes (mIoU)' in text
  assert '85.0  52.0' in text and '74.3  52.7' in text
  assert '9.6     -' in text  # undefined mask AP prints '-'
  assert 'Seen classes: the mask head segments them, +10.7' in text
  assert 'Unseen classes (never a mask in training): the mask head is not ' \
      'yet better than a mask drawn from the box alone (-0.7' in text
  assert 'seen +10.7, unseen -0.7 mIoU' in text
  assert 'bounded by the detector (box AP 6.9)' in text
  assert 'val_0.png' in text
  untrained = dict(metrics, **{'BoxPromptedMasks/mIoU_seen': 0.70})
  assert 'Each above' not in '\n'.join(
      story.story_lines(untrained, references))
  strong = dict(metrics, **{'DetectionBoxes_Precision/mAP': 0.45})
  assert 'bounded by the detector' not in '\n'.join(
      story.story_lines(strong, {}))


def test_random_seen_split_is_per_seed_and_deterministic():
  first = run_config.random_seen_split(3, seed=0)
  assert first == run_config.random_seen_split(3, seed=0)
  assert len(first) == 3 and first == sorted(first)
  assert {tuple(run_config.random_seen_split(3, s)) for s in range(5)} != {
      tuple(first)}


def test_eta_uses_each_variants_own_run_time():
  script = _script_module()
  assert script._eta({}, ['resnet4']) == 'known after the first run'
  assert script._eta({'resnet4': [100.0]}, []) == '0:00:00'
  # hourglass20 has no run yet: it costs the mean of all runs so far.
  assert script._eta({'resnet4': [100.0, 140.0]},
                     ['resnet4', 'hourglass20']) == '0:04:00'
  assert script._eta({'resnet4': [60.0], 'hourglass20': [3600.0]},
                     ['hourglass20', 'resnet4']) == '1:01:00'
