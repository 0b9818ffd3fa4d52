"""What a mask head scores without looking at the image: masks from the box.

A detector-free model gets each instance's groundtruth box, so a mask drawn
from the box alone already scores a sizeable mIoU: the ellipse inscribed in
the box is 74 / 53 (seen / unseen) on the default synthetic shapes, the
filled box 64 / 45. A head is only segmenting once it is above these; the
seen / unseen gap of the paper is a gap *above* them. ``box_priors`` scores
both priors on an experiment's validation split with the evaluation's own
accumulator (``evaluation.miou``: the same protocol as
``DetectorFreeMasks/mIoU_*``), so ``results.md`` and ``seen_unseen.png`` show
them beside the heads.
"""

import json
import os

import numpy as np
from pycocotools import mask as mask_utils

from deepmac_tf.evaluation import miou

# name -> (label, masks from [N, 4] normalized boxes at H x W).
PRIORS = {
    'ellipse': ('ellipse inscribed in the box (no training)',
                miou.inscribed_ellipses),
    'box': ('filled box (no training)', miou.box_region),
}


def box_priors(data_dir, seen_class_ids):
  """mIoU (0-100) of every prior on the validation split.

  Args:
    data_dir: synthetic dataset folder (``annotations/instances_val.json``).
    seen_class_ids: the classes that trained masks (the seen / unseen split).

  Returns:
    ``{name: {'label', 'seen', 'unseen', 'all'}}`` in ``PRIORS`` order; a
    value is None where the split has no instance.
  """
  with open(os.path.join(data_dir, 'annotations', 'instances_val.json'),
            encoding='utf-8') as f:
    coco = json.load(f)
  by_image = {}
  for annotation in coco['annotations']:
    if not annotation.get('iscrowd', 0):
      by_image.setdefault(annotation['image_id'], []).append(annotation)
  accumulators = {name: miou.MIoUAccumulator(coco['categories'],
                                             seen_class_ids)
                  for name in PRIORS}
  for image in coco['images']:
    annotations = by_image.get(image['id'])
    if not annotations:
      continue
    height, width = image['height'], image['width']
    boxes = np.array([[y / height, x / width, (y + h) / height,
                       (x + w) / width]
                      for x, y, w, h in (a['bbox'] for a in annotations)])
    masks = np.stack([mask_utils.decode(a['segmentation'])
                      for a in annotations])
    classes = np.array([a['category_id'] for a in annotations])
    for name, (_, prior) in PRIORS.items():
      accumulators[name].add(prior(boxes, height, width), masks, boxes,
                             classes)
  results = {}
  for name, (label, _) in PRIORS.items():
    metrics = accumulators[name].evaluate()

    def pct(key, metrics=metrics):
      value = metrics.get(key)
      return None if value is None or value < 0 else 100.0 * float(value)
    results[name] = {'label': label, 'seen': pct(miou.MIOU_SEEN),
                     'unseen': pct(miou.MIOU_UNSEEN), 'all': pct(miou.MIOU)}
  return results
