"""The demo's closing table: seen vs unseen at a glance, and what it means.

``story_lines`` turns a detection model's evaluation metrics (fractions, as
the evaluation writes them) and the no-training references of ``priors``
(0-100) into a few lines a newcomer can read: masks at the groundtruth
boxes (the mask head alone), the same from the box alone, masks of the
detected objects (mask AP, bounded by the detector) and box AP (all
classes, and seen vs unseen when the evaluation has those
super-categories). The
sentences under the table are chosen from the numbers, never fixed.
"""

_BOX_PROMPTED = 'BoxPromptedMasks/mIoU'
_MASK_AP = 'DetectionMasks_{}Classes/mAP'
_BOX_AP = 'DetectionBoxes_Precision/mAP'
_BOX_AP_OF_KIND = 'DetectionBoxes_PerformanceBySuperCategory/{}'
# Points above the box-alone reference that count as "segments".
_MARGIN = 2.0
# Below this box AP, mask AP mostly measures the detector.
_WEAK_DETECTOR_AP = 30.0
# Seen and unseen box AP this close: the detector finds both kinds alike.
_SAME_BOX_AP = 10.0


def _pct(metrics, key):
  value = metrics.get(key)
  return None if value is None or value < 0 else 100.0 * float(value)


def _cell(value):
  return '     -' if value is None else f'{value:6.1f}'


def _detected_masks_line(box_ap, box_ap_by_kind, mask_ap):
  """The reading of mask AP once the detector is good enough."""
  seen, unseen = mask_ap['seen'], mask_ap['unseen']
  if box_ap is None or box_ap < _WEAK_DETECTOR_AP or None in (seen, unseen):
    return None
  box_seen, box_unseen = box_ap_by_kind['seen'], box_ap_by_kind['unseen']
  line = (f'Masks of detected objects: mask AP {seen:.1f} seen vs '
          f'{unseen:.1f} unseen ({unseen - seen:+.1f})')
  if None in (box_seen, box_unseen):
    return line + f', with a detector at box AP {box_ap:.1f}.'
  if abs(box_seen - box_unseen) <= _SAME_BOX_AP:
    return line + (f', while the detector finds both kinds about as well '
                   f'(box AP {box_seen:.1f} vs {box_unseen:.1f}): the gap is '
                   'the mask head\'s, which never saw an unseen mask.')
  return line + (f'; the detector differs too (box AP {box_seen:.1f} vs '
                 f'{box_unseen:.1f}), so part of the gap is the detector\'s.')


def _verdict(name, head, prior):
  if head is None or prior is None:
    return None
  above = head - prior
  if above >= _MARGIN:
    return (f'{name}: the mask head segments them, {above:+.1f} mIoU above '
            'a mask drawn from the box alone.')
  return (f'{name}: the mask head is not yet better than a mask drawn from '
          f'the box alone ({above:+.1f} mIoU); train longer '
          '(--num_train_steps).')


def story_lines(metrics, priors, overlay_path=None):
  """The closing table and its reading.

  Args:
    metrics: evaluation metrics (fractions in [0, 1]; -1 = undefined):
      ``BoxPromptedMasks/mIoU_(un)seen``, ``DetectionMasks_(Un)seenClasses/
      mAP``, ``DetectionBoxes_Precision/mAP`` and, for a box AP row per
      kind of class, ``DetectionBoxes_PerformanceBySuperCategory/(un)seen``
      (the eval config's super-categories; missing ones print '-').
    priors: ``priors.box_priors`` of the same validation split, or {}.
    overlay_path: a picture to look at, or None.

  Returns:
    A list of lines (no trailing newlines).
  """
  prompted = {k: _pct(metrics, f'{_BOX_PROMPTED}_{k}')
              for k in ('seen', 'unseen')}
  mask_ap = {k: _pct(metrics, _MASK_AP.format(k.capitalize()))
             for k in ('seen', 'unseen')}
  ellipse = priors.get('ellipse') or {}
  reference = {k: ellipse.get(k) for k in ('seen', 'unseen')}
  box_ap = _pct(metrics, _BOX_AP)
  box_ap_by_kind = {k: _pct(metrics, _BOX_AP_OF_KIND.format(k))
                    for k in ('seen', 'unseen')}
  lines = [
      'What the demo shows (validation split; only the seen classes had '
      'masks in training):',
      f'  {"":44s}  seen  unseen',
      f'  {"masks at the groundtruth boxes (mIoU)":44s}'
      f'{_cell(prompted["seen"])}{_cell(prompted["unseen"])}',
      f'  {"mask from the box alone, no training (mIoU)":44s}'
      f'{_cell(reference["seen"])}{_cell(reference["unseen"])}',
      f'  {"masks of detected objects (mask AP)":44s}'
      f'{_cell(mask_ap["seen"])}{_cell(mask_ap["unseen"])}',
      f'  {"box AP of the detector, all classes":44s}{_cell(box_ap)}',
  ]
  if None not in box_ap_by_kind.values():
    lines.append(f'  {"box AP of the detector, per kind of class":44s}'
                 f'{_cell(box_ap_by_kind["seen"])}'
                 f'{_cell(box_ap_by_kind["unseen"])}')
  lines.append('What it means:')
  detected = _detected_masks_line(box_ap, box_ap_by_kind, mask_ap)
  if detected:
    lines.append(f'  - {detected}')
  for name, key in (('Seen classes', 'seen'),
                    ('Unseen classes (never a mask in training)', 'unseen')):
    verdict = _verdict(name, prompted[key], reference[key])
    if verdict:
      lines.append(f'  - {verdict}')
  seen = unseen = None
  if None not in prompted.values() and None not in reference.values():
    seen = prompted['seen'] - reference['seen']
    unseen = prompted['unseen'] - reference['unseen']
  if seen is not None and seen >= _MARGIN:
    # Only once the head has learned the seen classes is the gap about
    # generalization.
    lines.append(f'  - Each above its box-alone reference: seen {seen:+.1f}, '
                 f'unseen {unseen:+.1f} mIoU. What the head learned from the '
                 'seen masks transfers to the unseen classes only in part: '
                 'the gap the paper closes with deep mask heads '
                 '(scripts/reproduce.py --experiment mask_heads compares '
                 'heads).')
  if box_ap is not None and box_ap < _WEAK_DETECTOR_AP:
    lines.append(f'  - Mask AP is bounded by the detector (box AP {box_ap:.1f}'
                 '): most masks sit on missed or misplaced boxes; the mIoU '
                 'rows score the mask head on its own.')
  if overlay_path:
    lines.append(f'  - Look at {overlay_path} (left: detections, right: '
                 'masks for the groundtruth boxes).')
  return lines
