"""The demo's closing table with a detector good enough to read mask AP."""

from deepmac_tf.reproduction import story

_NAMES = {'seen': ['circle', 'square'], 'unseen': ['star', 'ring']}


def _metrics(box_ap, per_class):
  metrics = {'BoxPromptedMasks/mIoU_seen': 0.86,
             'BoxPromptedMasks/mIoU_unseen': 0.60,
             'DetectionMasks_SeenClasses/mAP': 0.40,
             'DetectionMasks_UnseenClasses/mAP': 0.15,
             'DetectionBoxes_Precision/mAP': box_ap}
  for name, value in per_class.items():
    metrics[f'DetectionBoxes_PerformanceByCategory/mAP/{name}'] = value
  return metrics


def test_box_ap_per_kind_and_the_mask_ap_gap():
  metrics = _metrics(0.45, {'circle': 0.50, 'square': 0.40, 'star': 0.44,
                            'ring': -1.0})
  text = '\n'.join(story.story_lines(metrics, {}, None, _NAMES))
  # ring's -1 (no instance) is left out of the unseen mean.
  row, = [line for line in text.splitlines() if 'mean over classes' in line]
  assert row.split()[-2:] == ['45.0', '44.0']
  assert ('Masks of detected objects: mask AP 40.0 seen vs 15.0 unseen '
          '(-25.0), while the detector finds both kinds about as well '
          '(box AP 45.0 vs 44.0): the gap is the mask head\'s') in text
  assert 'bounded by the detector' not in text


def test_a_detector_that_differs_by_kind_is_named():
  metrics = _metrics(0.45, {'circle': 0.70, 'square': 0.60, 'star': 0.30,
                            'ring': 0.20})
  text = '\n'.join(story.story_lines(metrics, {}, None, _NAMES))
  assert 'the detector differs too (box AP 65.0 vs 25.0)' in text


def test_a_weak_detector_gets_no_mask_ap_reading():
  metrics = _metrics(0.07, {'circle': 0.07, 'square': 0.07, 'star': 0.07,
                            'ring': 0.07})
  lines = story.story_lines(metrics, {}, None, _NAMES)
  assert not any('Masks of detected objects' in line for line in lines)
  assert any('bounded by the detector (box AP 7.0)' in line for line in lines)
  # Without class names there is no per-kind row.
  assert not any('mean over classes' in line
                 for line in story.story_lines(metrics, {}))
