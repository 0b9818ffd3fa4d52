"""Evaluation: COCO box / mask metrics split seen / unseen, detector-free mIoU.

* ``coco_groundtruth.CocoAccumulator``: per-image groundtruth and detections
  (numpy) -> COCO-format dicts, masks RLE-encoded.
* ``coco_metrics``: pycocotools ``COCOeval`` under the OD API metric names,
  per-category, super-category and seen / unseen class splits.
* ``miou``: detector-free mean IoU of masks predicted at groundtruth boxes.
* ``eval_loop.evaluate(model, configs, ...)``: the eval driver.

Imports here stay light (no TensorFlow) so metric code is usable alone.
"""
