"""The eval driver on the tiny synthetic pipeline (untrained models)."""

import glob
import json
import logging
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_util

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pipeline_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import coco_metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import eval_loop  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import image_frames  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import miou  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.evaluation import visualization  # pylint: disable=g-import-not-at-top,wrong-import-position

NAMES = ['circle', 'ellipse', 'square', 'triangle', 'hexagon', 'star', 'cross',
         'ring', 'crescent', 'l_shape']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('eval_loop_data'))


def _configs(tmp_path, data_root, override=''):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, override,
                                         data_root=data_root)
  return config_lib.get_configs_from_pipeline_file(path)


def _summary_tags(directory):
  tags = set()
  for path in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.add((value.tag, event.step))
  return tags


def _summary_scalars(directory):
  """{(tag, step): value} of the scalar summaries written there."""
  values = {}
  for path in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.HasField('tensor') and not value.tensor.string_val:
          values[(value.tag, event.step)] = float(
              tf.make_ndarray(value.tensor))
  return values


def test_evaluate_untrained_model_returns_every_key(tmp_path, data_root,
                                                    caplog):
  configs = _configs(tmp_path, data_root)
  model = model_builder.build(configs['model'], is_training=False)
  writer = tf.summary.create_file_writer(str(tmp_path / 'eval'))
  with caplog.at_level(logging.INFO, logger='absl'):
    metrics = eval_loop.evaluate(model, configs, global_step=7,
                                 output_dir=str(tmp_path / 'model'),
                                 summary_writer=writer)
  expected = set()
  for prefix in ('DetectionBoxes', 'DetectionMasks'):
    expected |= {f'{prefix}_{n}' for n in coco_metrics.STAT_NAMES}
    expected |= {f'{prefix}_PerformanceByCategory/mAP/{n}' for n in NAMES}
    expected |= {f'{prefix}_PerformanceBySuperCategory/{k}'
                 for k in ('seen', 'unseen')}
  for split in ('SeenClasses', 'UnseenClasses'):
    expected |= {f'DetectionMasks_{split}/{n}'
                 for n in coco_metrics.SPLIT_NAMES}
  # Box prompts: the mask branch at the groundtruth boxes (mIoU).
  expected |= {'BoxPromptedMasks/mIoU', 'BoxPromptedMasks/mIoU_seen',
               'BoxPromptedMasks/mIoU_unseen'}
  expected |= {f'BoxPromptedMasks/mIoU/{n}' for n in NAMES}
  assert set(metrics) == expected
  assert 0.0 <= metrics['BoxPromptedMasks/mIoU_unseen'] <= 1.0
  assert all(isinstance(v, float) and -1.0 <= v <= 1.0
             for v in metrics.values())
  assert eval_loop.default_best_metric(configs) in metrics

  with open(tmp_path / 'model' / 'metrics_step_7.json', encoding='utf-8') as f:
    assert json.load(f) == pytest.approx(metrics)
  tags = _summary_tags(str(tmp_path / 'eval'))
  assert ('DetectionMasks_UnseenClasses/mAP', 7) in tags
  assert ('DetectionBoxes_Precision/mAP (small)', 7) in tags
  # eval_config.num_visualizations: 2.
  assert {t for t, _ in tags if t.startswith('eval_side_by_side')} == {
      'eval_side_by_side_0', 'eval_side_by_side_1'}
  log = caplog.text
  assert '4 examples' in log and 'DetectionMasks_SeenClasses/mAP' in log
  # Eval losses (as the OD API): Loss/* scalars beside the metrics, the
  # total the sum of the terms; not in the returned metrics.
  scalars = _summary_scalars(str(tmp_path / 'eval'))
  losses = {t: v for (t, s), v in scalars.items()
            if t.startswith('Loss/') and s == 7}
  assert {'Loss/total_loss', 'Loss/object_center',
          'Loss/deep_mask_estimation'} <= set(losses)
  assert all(np.isfinite(v) for v in losses.values())
  assert losses['Loss/total_loss'] == pytest.approx(sum(
      v for t, v in losses.items() if t != 'Loss/total_loss'), rel=1e-4)
  assert 'Eval losses: Loss/' in log
  assert not any(k.startswith('Loss/') for k in metrics)


def test_eval_images_fall_back_to_the_top_detections():
  scores = np.array([0.05, 0.3, 0.1, 0.2, 0.01])
  # Nothing reaches 0.5 (a young model): the 3 highest are drawn.
  assert visualization.detections_to_draw(scores, 0.5, 20) == [1, 3, 2]
  assert visualization.detections_to_draw(scores, 0.5, 2) == [1, 3]
  assert visualization.detections_to_draw(scores, 0.5, 20,
                                          fallback_top_k=1) == [1]
  # Otherwise only those at or above the threshold.
  assert visualization.detections_to_draw(scores, 0.15, 20) == [1, 3]
  assert visualization.detections_to_draw([], 0.5, 20) == []
  image = np.zeros([16, 16, 3], np.uint8)
  drawn = visualization.draw_detections(
      image, [[0.2, 0.2, 0.8, 0.8]], [1], [0.1], min_score=0.5)
  assert drawn.any()  # the box below the threshold is drawn
  empty = visualization.draw_detections(
      image, [[0.2, 0.2, 0.8, 0.8]], [1], [0.1], min_score=0.5,
      fallback_top_k=0)
  assert not empty.any()


def test_sampling_limits_and_latest_json(tmp_path, data_root, caplog):
  configs = _configs(tmp_path, data_root)
  configs['eval_config'].include_metrics_per_category = False
  del configs['eval_config'].metrics_set[:]
  configs['eval_config'].metrics_set.append('coco_detection_metrics')
  # num_epochs 0 (the proto default) repeats forever; eval reads once.
  configs['eval_input_configs'][0].num_epochs = 0
  model = model_builder.build(configs['model'], is_training=False)
  with caplog.at_level(logging.INFO, logger='absl'):
    metrics = eval_loop.evaluate(model, configs, sample_1_of_n=2,
                                 output_dir=str(tmp_path))
    traced = dict(eval_loop._FUNCTIONS[model])  # pylint: disable=protected-access
    eval_loop.evaluate(model, configs, max_examples=3)
  assert '(2 examples' in caplog.text and '(3 examples' in caplog.text
  # The second evaluation reuses the traced function.
  assert eval_loop._FUNCTIONS[model] == traced  # pylint: disable=protected-access
  assert configs['eval_input_configs'][0].num_epochs == 0  # not mutated
  assert not any(k.startswith('DetectionMasks') for k in metrics)
  assert os.path.exists(tmp_path / 'metrics_step_latest.json')


def test_detector_free_model_reports_miou(tmp_path, data_root):
  configs = _configs(
      tmp_path, data_root,
      'model { center_net { deepmac_mask_estimation { detector_free: true } } }')
  model = model_builder.build(configs['model'], is_training=False)
  writer = tf.summary.create_file_writer(str(tmp_path / 'eval'))
  metrics = eval_loop.evaluate(model, configs, global_step=0,
                               summary_writer=writer)
  assert {miou.MIOU, miou.MIOU_SEEN, miou.MIOU_UNSEEN} <= set(metrics)
  assert metrics[miou.MIOU] >= 0.0
  assert f'{miou.MIOU}/star' in metrics  # include_metrics_per_category
  assert eval_loop.default_best_metric(configs) == miou.MIOU_UNSEEN
  tags = {t for t, _ in _summary_tags(str(tmp_path / 'eval'))}
  assert miou.MIOU_UNSEEN in tags and 'eval_side_by_side_0' in tags


def test_default_best_metric(tmp_path, data_root):
  configs = _configs(tmp_path, data_root)
  assert eval_loop.default_best_metric(configs) == (
      'DetectionMasks_UnseenClasses/mAP')
  deepmac = configs['model'].center_net.deepmac_mask_estimation
  deepmac.ClearField('allowed_masked_classes_ids')
  assert eval_loop.default_best_metric(configs) == 'DetectionMasks_Precision/mAP'
  deepmac.allowed_masked_classes_ids.extend(range(1, 11))  # all classes
  assert eval_loop.default_best_metric(configs) == 'DetectionMasks_Precision/mAP'
  deepmac.detector_free = True
  assert eval_loop.default_best_metric(configs) == miou.MIOU
  configs['model'].center_net.ClearField('deepmac_mask_estimation')
  assert eval_loop.default_best_metric(configs) == 'DetectionBoxes_Precision/mAP'


def test_unknown_metrics_set_names_the_field(tmp_path, data_root):
  configs = _configs(tmp_path, data_root,
                     'eval_config { metrics_set: "oid_V2_detection_metrics" }')
  model = model_builder.build(configs['model'], is_training=False)
  with pytest.raises(ConfigError, match='eval_config.metrics_set'):
    eval_loop.evaluate(model, configs)


def test_original_frame_matches_the_coco_json(tmp_path, data_root):
  """Resized 64 -> 48 input: groundtruth and pasted masks come back in the
  original 64x64 frame of the dataset's COCO json."""
  configs = _configs(
      tmp_path, data_root,
      'model { center_net { image_resizer { keep_aspect_ratio_resizer { '
      'min_dimension: 48 max_dimension: 48 } } } }')
  with open(os.path.join(pipeline_fixtures.tiny_dataset(data_root),
                         'annotations', 'instances_val.json'),
            encoding='utf-8') as f:
    coco = json.load(f)
  dataset = dataset_builder.build_from_pipeline(configs, 'eval')
  batch = {k: v.numpy() for k, v in next(iter(dataset)).items()}
  assert batch['image'].shape[1:3] == (48, 48)
  gt = image_frames.groundtruth(batch, 0)
  # COCO conversion writes the COCO image id as the source_id.
  image = next(i for i in coco['images']
               if str(i['id']) == image_frames.image_id(batch, 0, ''))
  anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
  assert gt['original_shape'] == (64, 64)
  assert gt['masks'].shape == (len(anns), 64, 64)
  for i, ann in enumerate(anns):
    x, y, w, h = ann['bbox']
    np.testing.assert_allclose(gt['absolute_boxes'][i], [y, x, y + h, x + w],
                               atol=1.5)
    truth = mask_util.decode(ann['segmentation'])
    iou = (np.sum(truth & gt['masks'][i]) /
           max(np.sum(truth | gt['masks'][i]), 1))
    assert iou > 0.8
  # Detections equal to the groundtruth boxes with all-ones box masks paste
  # back inside those boxes at the original size.
  count = len(anns)
  outputs = {'detection_boxes': gt['boxes'][None].astype(np.float32),
             'detection_scores': np.ones([1, count]),
             'detection_classes': gt['classes'][None] - 1,
             'num_detections': np.array([count]),
             'detection_masks': np.ones([1, count, 8, 8], np.float32)}
  det = image_frames.detections(outputs, 0, (64, 64))
  np.testing.assert_allclose(det['absolute_boxes'], gt['absolute_boxes'])
  assert det['masks'].shape == (count, 64, 64)
  for i in range(count):
    ys, xs = np.nonzero(det['masks'][i])
    y1, x1, y2, x2 = gt['absolute_boxes'][i]
    assert y1 - 1 <= ys.min() and ys.max() <= y2 + 1
    assert x1 - 1 <= xs.min() and xs.max() <= x2 + 1


def test_true_normalized_boxes_undo_padding():
  # A 30x60 true image padded to 64x64: a box on the whole true image.
  boxes = image_frames.true_normalized_boxes([[0, 0, 30 / 64, 60 / 64]],
                                             (30, 60), (64, 64))
  np.testing.assert_allclose(boxes, [[0, 0, 1, 1]])
  masks = np.arange(6).reshape([1, 2, 3])
  resized = image_frames.resize_nearest(masks, 4, 6)
  np.testing.assert_array_equal(resized[0, ::2, ::2], masks[0])


def test_paste_masks_matches_mask_pasting():
  from deepmac_tf.ops import mask_pasting  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  masks = rng.random([5, 16, 16]).astype(np.float32)
  corner = rng.random([5, 2]) * 0.6
  boxes = np.concatenate([corner, corner + 0.1 + rng.random([5, 2]) * 0.3],
                         axis=1).astype(np.float32)
  expected = mask_pasting.paste_box_masks(masks, boxes, 37, 53)
  pasted = image_frames.paste_masks(masks, boxes, 37, 53)
  np.testing.assert_array_equal(pasted, expected.numpy() > 0.5)
  assert pasted.sum() > 0
  assert image_frames.paste_masks(masks[:0], boxes[:0], 4, 5).shape == (0, 4, 5)


def test_box_prompted_miou_equals_the_detector_free_protocol(tmp_path,
                                                            data_root):
  """The detection model's BoxPromptedMasks/* are the detector-free mIoU of
  the same weights (masks at the groundtruth boxes, one backbone pass)."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  configs = _configs(tmp_path, data_root)
  configs['eval_config'].include_metrics_per_category = False
  model = model_builder.build(configs['model'], is_training=False)
  with_detection = eval_loop.evaluate(model, configs)
  # The same weights, scored by the detector-free path.
  model._deepmac_params = dataclasses.replace(  # pylint: disable=protected-access
      model.deepmac_params, detector_free=True)
  detector_free = eval_loop.evaluate(model, configs)
  for suffix in ('', '_seen', '_unseen'):
    assert with_detection[f'BoxPromptedMasks/mIoU{suffix}'] == pytest.approx(
        detector_free[f'DetectorFreeMasks/mIoU{suffix}'], abs=1e-6)
