"""The demo's closing table with a detector good enough to read mask AP."""

from deepmac_tf.reproduction import story

def _metrics(box_ap, per_kind):
  metrics = {'BoxPromptedMasks/mIoU_seen': 0.86,
             'BoxPromptedMasks/mIoU_unseen': 0.60,
             'DetectionMasks_SeenClasses/mAP': 0.40,
             'DetectionMasks_UnseenClasses/mAP': 0.15,
             'DetectionBoxes_Precision/mAP': box_ap}
  for kind, value in per_kind.items():
    metrics[f'DetectionBoxes_PerformanceBySuperCategory/{kind}'] = value
  return metrics


def test_box_ap_per_kind_and_the_mask_ap_gap():
  metrics = _metrics(0.45, {'seen': 0.45, 'unseen': 0.44})
  text = '\n'.join(story.story_lines(metrics, {}, None))
  row, = [line for line in text.splitlines() if 'per kind of class' in line]
  assert row.split()[-2:] == ['45.0', '44.0']
  assert ('Masks of detected objects: mask AP 40.0 seen vs 15.0 unseen '
          '(-25.0), while the detector finds both kinds about as well '
          '(box AP 45.0 vs 44.0): the gap is the mask head\'s') in text
  assert 'bounded by the detector' not in text


def test_a_detector_that_differs_by_kind_is_named():
  metrics = _metrics(0.45, {'seen': 0.65, 'unseen': 0.25})
  text = '\n'.join(story.story_lines(metrics, {}, None))
  assert 'the detector differs too (box AP 65.0 vs 25.0)' in text


def test_a_weak_detector_gets_no_mask_ap_reading():
  metrics = _metrics(0.07, {'seen': 0.07, 'unseen': 0.07})
  lines = story.story_lines(metrics, {}, None)
  assert not any('Masks of detected objects' in line for line in lines)
  assert any('bounded by the detector (box AP 7.0)' in line for line in lines)
  # Without the super-category metrics there is no per-kind row.
  assert not any('per kind of class' in line for line in story.story_lines(
      _metrics(0.07, {}), {}))
