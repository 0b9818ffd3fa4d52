"""COCO metrics: our numbers are pycocotools' own, under the OD API names."""

import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest
from pycocotools import coco as coco_lib
from pycocotools import cocoeval as cocoeval_lib
from pycocotools import mask as mask_util

from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.evaluation import coco_accumulator
from deepmac_tf.evaluation import coco_metrics

CATEGORIES = [{'id': i, 'name': f'class_{i}'} for i in range(1, 7)]
SEEN = [1, 2, 3]
STAT_KEYS = coco_metrics.STAT_NAMES


@pytest.fixture(scope='module')
def coco_gt_json(tmp_path_factory):
  """A real COCO groundtruth file: the synthetic dataset's val split."""
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp('coco_metrics'))
  synthetic.create_dataset(root, 0, 24, seed=5, write_records=False,
                           show_progress=False)
  return os.path.join(root, 'annotations', 'instances_val.json')


def _decode(segmentation, height, width):
  if isinstance(segmentation, list):
    rles = mask_util.frPyObjects(segmentation, height, width)
    return mask_util.decode(mask_util.merge(rles))
  rle = dict(segmentation)
  if isinstance(rle['counts'], list):
    rle = mask_util.frPyObjects(rle, height, width)
  return mask_util.decode(rle)


def _perturbed_detections(dataset, seed=0):
  """Per image: detections derived from the groundtruth by shifting masks,
  jittering boxes, swapping some classes, adding false positives."""
  rng = np.random.default_rng(seed)
  by_image = {}
  for ann in dataset['annotations']:
    by_image.setdefault(ann['image_id'], []).append(ann)
  result = {}
  for image in dataset['images']:
    height, width = image['height'], image['width']
    boxes, scores, classes, masks = [], [], [], []
    for ann in by_image.get(image['id'], []):
      for _ in range(int(rng.integers(1, 3))):
        mask = _decode(ann['segmentation'], height, width)
        mask = np.roll(mask, rng.integers(-3, 4, size=2), axis=(0, 1))
        x, y, w, h = ann['bbox']
        box = np.array([y, x, y + h, x + w]) + rng.normal(0, 1.5, 4)
        label = ann['category_id']
        if rng.random() < 0.2:
          label = int(rng.integers(1, 11))
        boxes.append(box)
        scores.append(rng.random())
        classes.append(label)
        masks.append(mask)
    # A false positive.
    boxes.append([5, 5, 20, 25])
    scores.append(rng.random())
    classes.append(int(rng.integers(1, 11)))
    fp = np.zeros([height, width], np.uint8)
    fp[5:20, 5:25] = 1
    masks.append(fp)
    result[image['id']] = (np.array(boxes, np.float64), np.array(scores),
                           np.array(classes), np.stack(masks))
  return result


def _reference_eval(gt_path, results, iou_type, cat_ids=None):
  """pycocotools on the file and result list, untouched by our code."""
  with contextlib.redirect_stdout(io.StringIO()):
    gt = coco_lib.COCO(gt_path)
    dt = gt.loadRes(copy.deepcopy(results))
    evaluator = cocoeval_lib.COCOeval(gt, dt, iou_type)
    if cat_ids is not None:
      evaluator.params.catIds = list(cat_ids)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return evaluator


def _reference_results(detections, iou_type):
  results = []
  for image_id, (boxes, scores, classes, masks) in detections.items():
    for box, score, label, mask in zip(boxes, scores, classes, masks):
      item = {'image_id': image_id, 'category_id': int(label),
              'score': float(score)}
      if iou_type == 'bbox':
        item['bbox'] = [box[1], box[0], box[3] - box[1], box[2] - box[0]]
      else:
        rle = mask_util.encode(np.asfortranarray(mask))
        rle['counts'] = rle['counts'].decode('ascii')
        item['segmentation'] = rle
      results.append(item)
  return results


@pytest.fixture(scope='module')
def evaluated(coco_gt_json):
  """Our evaluator fed the same groundtruth and detections as arrays."""
  with open(coco_gt_json, encoding='utf-8') as f:
    dataset = json.load(f)
  categories = [{'id': c['id'], 'name': c['name']}
                for c in dataset['categories']]
  detections = _perturbed_detections(dataset)
  evaluator = coco_metrics.CocoEvaluator(
      categories, include_metrics_per_category=True,
      all_metrics_per_category=True,
      super_categories={'voc': 'circle, ellipse,square',
                        'rest': 'star,cross'},
      seen_class_ids=[1, 2, 3, 4, 5])
  by_image = {}
  for ann in dataset['annotations']:
    by_image.setdefault(ann['image_id'], []).append(ann)
  for image in dataset['images']:
    anns = by_image.get(image['id'], [])
    height, width = image['height'], image['width']
    boxes = [[a['bbox'][1], a['bbox'][0], a['bbox'][1] + a['bbox'][3],
              a['bbox'][0] + a['bbox'][2]] for a in anns]
    masks = np.zeros([len(anns), height, width], np.uint8)
    for i, a in enumerate(anns):
      masks[i] = _decode(a['segmentation'], height, width)
    # The image id is the file name; the accumulator numbers images in
    # order, which is the json's order and ids (1..N).
    evaluator.add_groundtruth(
        image['file_name'], np.reshape(boxes, [-1, 4]),
        [a['category_id'] for a in anns], masks,
        is_crowd=[a['iscrowd'] for a in anns],
        area=[a['area'] for a in anns])
    evaluator.add_detections(image['file_name'], *detections[image['id']])
  return dataset, detections, evaluator.evaluate()


@pytest.mark.parametrize('prefix,iou_type', [('DetectionMasks', 'segm'),
                                             ('DetectionBoxes', 'bbox')])
def test_metrics_equal_pycocotools_on_same_detections(
    coco_gt_json, evaluated, prefix, iou_type):
  _, detections, metrics = evaluated
  reference = _reference_eval(coco_gt_json,
                              _reference_results(detections, iou_type),
                              iou_type)
  for name, value in zip(STAT_KEYS, reference.stats):
    assert metrics[f'{prefix}_{name}'] == pytest.approx(value, abs=1e-12), name
  # Non-trivial numbers: the test would not pass by both being 0 or -1.
  assert 0.05 < metrics[f'{prefix}_Precision/mAP'] < 0.95


@pytest.mark.parametrize('split,cat_ids', [('SeenClasses', [1, 2, 3, 4, 5]),
                                           ('UnseenClasses', [6, 7, 8, 9, 10])])
def test_seen_unseen_split_equals_cocoeval_restricted(coco_gt_json, evaluated,
                                                      split, cat_ids):
  _, detections, metrics = evaluated
  reference = _reference_eval(coco_gt_json,
                              _reference_results(detections, 'segm'),
                              'segm', cat_ids)
  for name, value in zip(coco_metrics.SPLIT_NAMES, reference.stats[:6]):
    key = f'DetectionMasks_{split}/{name}'
    assert metrics[key] == pytest.approx(value, abs=1e-12), key
  assert not any(k.startswith('DetectionBoxes_SeenClasses') for k in metrics)


def test_exact_split_metric_names(evaluated):
  _, _, metrics = evaluated
  for split in ('SeenClasses', 'UnseenClasses'):
    for name in ('mAP', 'mAP@.50IOU', 'mAP@.75IOU', 'mAP (small)',
                 'mAP (medium)', 'mAP (large)'):
      assert f'DetectionMasks_{split}/{name}' in metrics


def test_per_category_and_super_category(coco_gt_json, evaluated):
  dataset, detections, metrics = evaluated
  reference = _reference_eval(coco_gt_json,
                              _reference_results(detections, 'segm'),
                              'segm', [1, 2, 3])
  assert metrics['DetectionMasks_PerformanceBySuperCategory/voc'] == (
      pytest.approx(reference.stats[0], abs=1e-12))
  per_category = []
  for category in dataset['categories'][:3]:
    single = _reference_eval(coco_gt_json,
                             _reference_results(detections, 'segm'),
                             'segm', [category['id']])
    key = f'DetectionMasks_PerformanceByCategory/mAP/{category["name"]}'
    assert metrics[key] == pytest.approx(single.stats[0], abs=1e-12)
    # all_metrics_per_category: the OD API's 12 names, COCOeval's numbers.
    for i, name in enumerate((
        'Precision mAP', 'Precision mAP@.50IOU', 'Precision mAP@.75IOU',
        'Precision mAP (small)', 'Precision mAP (medium)',
        'Precision mAP (large)', 'Recall AR@1', 'Recall AR@10',
        'Recall AR@100', 'Recall AR@100 (small)', 'Recall AR@100 (medium)',
        'Recall AR@100 (large)')):
      assert metrics[f'DetectionMasks_{name} ByCategory/{category["name"]}'
                     ] == pytest.approx(single.stats[i], abs=1e-12), name
    per_category.append(single.stats[0])
  assert metrics['DetectionMasks_PerformanceBySuperCategory/voc'] == (
      pytest.approx(np.mean(per_category), abs=1e-12))
  assert 'DetectionBoxes_PerformanceBySuperCategory/rest' in metrics
  assert 'DetectionBoxes_PerformanceByCategory/mAP/l_shape' in metrics


def test_unknown_super_category_name_is_config_error():
  with pytest.raises(ConfigError, match=r'super_categories.*zebra'):
    coco_metrics.CocoEvaluator(CATEGORIES,
                               super_categories={'x': 'class_1,zebra'})


def test_unknown_metrics_set_is_config_error():
  with pytest.raises(ConfigError, match='eval_config.metrics_set'):
    coco_metrics.CocoEvaluator(CATEGORIES, metrics_set=['pascal_voc'])


def _square_masks(boxes, size=64):
  masks = np.zeros([len(boxes), size, size], np.uint8)
  for i, (y1, x1, y2, x2) in enumerate(np.asarray(boxes, int)):
    masks[i, y1:y2, x1:x2] = 1
  return masks


def test_perfect_detector_scores_one(capsys):
  evaluator = coco_metrics.CocoEvaluator(CATEGORIES, seen_class_ids=SEEN)
  rng = np.random.default_rng(1)
  for image in range(6):
    y, x = rng.integers(0, 30, size=(2, 3))
    boxes = np.stack([y, x, y + 20 + image, x + 25], axis=1).astype(float)
    classes = [1 + image % 6, 1 + (image + 2) % 6, 1 + (image + 4) % 6]
    masks = _square_masks(boxes)
    evaluator.add_groundtruth(f'img{image}', boxes, classes, masks)
    evaluator.add_detections(f'img{image}', boxes, [0.9, 0.8, 0.7], classes,
                             masks)
  metrics = evaluator.evaluate()
  for prefix in ('DetectionBoxes', 'DetectionMasks'):
    assert metrics[f'{prefix}_Precision/mAP'] == pytest.approx(1.0)
    assert metrics[f'{prefix}_Recall/AR@100'] == pytest.approx(1.0)
  assert metrics['DetectionMasks_SeenClasses/mAP'] == pytest.approx(1.0)
  assert metrics['DetectionMasks_UnseenClasses/mAP'] == pytest.approx(1.0)
  # pycocotools' tables stay off stdout.
  assert capsys.readouterr().out == ''


def test_crowd_groundtruth_is_an_ignore_region():
  boxes = np.array([[0, 0, 20, 20], [30, 30, 60, 60]], float)
  masks = _square_masks(boxes)
  detections = (np.array([[30, 30, 60, 60], [0, 0, 20, 20]], float),
                [0.9, 0.5], [1, 1], masks[::-1])

  def run(is_crowd):
    evaluator = coco_metrics.CocoEvaluator(CATEGORIES[:1])
    evaluator.add_groundtruth('a', boxes, [1, 1], masks, is_crowd=is_crowd)
    evaluator.add_detections('a', *detections)
    return evaluator.evaluate()

  # A detection on a crowd region is neither a hit nor a false positive.
  with_crowd = run([False, True])
  assert with_crowd['DetectionMasks_Precision/mAP'] == pytest.approx(1.0)
  assert with_crowd['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0)
  # Counted as a groundtruth instance it is simply found too.
  assert run([False, False])['DetectionMasks_Recall/AR@100'] == pytest.approx(
      1.0)
  # Only-crowd groundtruth: nothing to find, every AP undefined.
  only_crowd = run([True, True])
  assert only_crowd['DetectionMasks_Precision/mAP'] == -1.0


def test_images_without_detections_or_groundtruth():
  evaluator = coco_metrics.CocoEvaluator(CATEGORIES)
  boxes = np.array([[0, 0, 20, 20]], float)
  evaluator.add_groundtruth('with_gt', boxes, [2], _square_masks(boxes))
  evaluator.add_detections('with_gt', np.zeros([0, 4]), [], [],
                           np.zeros([0, 64, 64], np.uint8))
  evaluator.add_groundtruth('empty', np.zeros([0, 4]), [],
                            np.zeros([0, 64, 64], np.uint8))
  evaluator.add_detections('empty', boxes, [0.3], [2], _square_masks(boxes))
  metrics = evaluator.evaluate()
  assert metrics['DetectionMasks_Precision/mAP'] == 0.0
  assert metrics['DetectionBoxes_Recall/AR@100'] == 0.0


def test_no_detections_at_all_and_no_images():
  evaluator = coco_metrics.CocoEvaluator(CATEGORIES)
  boxes = np.array([[0, 0, 20, 20]], float)
  evaluator.add_groundtruth('a', boxes, [2], _square_masks(boxes))
  metrics = evaluator.evaluate()
  assert metrics['DetectionBoxes_Precision/mAP'] == 0.0
  empty = coco_metrics.CocoEvaluator(CATEGORIES).evaluate()
  assert set(f'DetectionBoxes_{n}' for n in STAT_KEYS) <= set(empty)
  assert all(v == -1.0 for v in empty.values())


def test_accumulator_checks_inputs():
  accumulator = coco_accumulator.CocoAccumulator(CATEGORIES)
  with pytest.raises(DataError, match='not in the label map'):
    accumulator.add_groundtruth('a', [[0, 0, 1, 1]], [99])
  with pytest.raises(DataError, match='before its groundtruth'):
    accumulator.add_detections('b', [[0, 0, 1, 1]], [0.5], [1])
  with pytest.raises(DataError, match='classes has 2 rows'):
    accumulator.add_groundtruth('c', [[0, 0, 1, 1]], [1, 2])


def test_repeated_image_counts_once():
  accumulator = coco_accumulator.CocoAccumulator(CATEGORIES)
  for _ in range(2):
    accumulator.add_groundtruth('a', [[0, 0, 10, 10]], [1])
    accumulator.add_detections('a', [[0, 0, 10, 10]], [0.5], [1])
  assert accumulator.num_images == 1
  assert len(accumulator.detection_results()) == 1
  ann = accumulator.groundtruth_dataset()['annotations'][0]
  assert ann['bbox'] == [0.0, 0.0, 10.0, 10.0]
  assert ann['area'] == 100.0
