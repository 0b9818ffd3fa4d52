"""Detections as COCO-format results (``loadRes``-compatible JSON).

One dict per instance: ``image_id``, ``category_id`` (1-based label id; 0
when unknown, e.g. a prompted box without a class), ``bbox`` [x, y, width,
height] in pixels, ``score``, ``area`` (mask pixels, else box area) and,
with masks, ``segmentation`` as compressed RLE ``{'size': [H, W], 'counts':
str}`` from pycocotools.
"""

import json
import os

import numpy as np
from pycocotools import mask as mask_util


def encode_mask(mask):
  """bool / uint8 [H, W] -> COCO RLE with a str ``counts``."""
  rle = mask_util.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
  rle['counts'] = rle['counts'].decode('ascii')
  return rle


def to_coco_results(detections, image_id=0):
  """``Detections`` of one image -> list of COCO result dicts."""
  results = []
  pixel_boxes = detections.pixel_boxes()
  for index in range(len(detections)):
    ymin, xmin, ymax, xmax = [float(v) for v in pixel_boxes[index]]
    result = {
        'image_id': image_id,
        'category_id': int(detections.classes[index]),
        'bbox': [round(xmin, 2), round(ymin, 2), round(xmax - xmin, 2),
                 round(ymax - ymin, 2)],
        'score': round(float(detections.scores[index]), 5),
    }
    name = detections.class_names[index]
    if name:
      result['category_name'] = name
    if detections.masks is not None:
      mask = detections.masks[index]
      result['segmentation'] = encode_mask(mask)
      result['area'] = int(mask.sum())
    else:
      result['area'] = round((xmax - xmin) * (ymax - ymin), 2)
    results.append(result)
  return results


def write_coco_results(results, path):
  """Writes a results list as JSON (creating the folder)."""
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    # One result per line: readable, and small for many instances.
    f.write('[\n' + ',\n'.join(json.dumps(r) for r in results) + '\n]\n')
  return path
