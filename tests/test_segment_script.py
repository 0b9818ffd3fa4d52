"""scripts/segment.py: overlay PNG and COCO JSON, detection and box prompts."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_export as export_helpers  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = export_helpers.REPO
SCRIPT = os.path.join(REPO, 'scripts', 'segment.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('segment')
  # Exported for boxes: the export also carries a detection signature.
  exports = export_helpers.shared_exports(tmp_path_factory)['exports']
  image_path = str(root / 'image.png')
  Image.fromarray(export_helpers.sample_image(40, 60, seed=4)).save(
      image_path)
  return {'root': root, 'saved_model': os.path.join(
      exports['image_and_boxes_tensor'], 'saved_model'), 'image': image_path}


def _run(*args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                        text=True, timeout=300, env=env, cwd=REPO)


def test_detection_writes_overlay_and_coco_json(setup):
  output = setup['root'] / 'detect' / 'overlay.png'
  result = _run(f'--saved_model_dir={setup["saved_model"]}',
                f'--image={setup["image"]}', f'--output={output}',
                '--min_score_threshold=0', '--image_id=5',
                '--overlay_min_size=0')
  assert result.returncode == 0, result.stderr[-3000:]
  overlay = np.asarray(Image.open(output))
  assert overlay.shape == (40, 60, 3)
  with open(output.with_suffix('.json')) as f:
    results = json.load(f)
  assert len(results) == export_helpers.K
  for entry in results:
    assert entry['image_id'] == 5
    assert 1 <= entry['category_id'] <= 10 and entry['category_name']
    assert entry['segmentation']['size'] == [40, 60]
    assert mask_util.decode(entry['segmentation']).shape == (40, 60)
  assert f'{export_helpers.K} detections' in result.stdout
  assert 'COCO results:' in result.stdout


def test_box_prompts_from_flag_and_json(setup):
  output = setup['root'] / 'boxes' / 'overlay.png'
  json_path = setup['root'] / 'boxes' / 'results.json'
  result = _run(f'--saved_model_dir={setup["saved_model"]}',
                f'--image={setup["image"]}', f'--output={output}',
                f'--output_json={json_path}',
                '--boxes=0.1,0.1,0.6,0.5;0.2,0.4,0.9,0.95')
  assert result.returncode == 0, result.stderr[-3000:]
  assert np.asarray(Image.open(output)).shape == (256, 384, 3)  # Upscaled.
  with open(json_path) as f:
    results = json.load(f)
  assert [r['category_id'] for r in results] == [0, 0]
  np.testing.assert_allclose(results[0]['bbox'], [6.0, 4.0, 24.0, 20.0],
                             atol=0.01)
  boxes_file = setup['root'] / 'boxes.json'
  boxes_file.write_text(json.dumps([{'box': [0.1, 0.1, 0.6, 0.5],
                                     'category_id': 8}]))
  result = _run(f'--saved_model_dir={setup["saved_model"]}',
                f'--image={setup["image"]}', f'--output={output}',
                f'--boxes={boxes_file}')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(output.with_suffix('.json')) as f:
    results = json.load(f)
  assert results[0]['category_name'] == 'ring'
  assert '1 given boxes' in result.stdout and 'ring' in result.stdout


def test_bad_boxes_give_one_error_line(setup):
  result = _run(f'--saved_model_dir={setup["saved_model"]}',
                f'--image={setup["image"]}',
                f'--output={setup["root"] / "bad.png"}',
                '--boxes=0.1,0.1,1.6,0.5')
  assert result.returncode == 1
  assert 'ERROR: --boxes: box 0' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (setup['root'] / 'bad.png').exists()
