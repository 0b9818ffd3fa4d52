"""Inference on exported SavedModels: detection, box-prompted segmentation
with masks pasted into image space, overlays and COCO-format results.

Serving side only (TensorFlow, numpy, PIL, pycocotools): never imports the
training stack, the exporter, builders or model code.
"""

from deepmac_tf.inference.coco_results import to_coco_results
from deepmac_tf.inference.coco_results import write_coco_results
from deepmac_tf.inference.image_io import load_image
from deepmac_tf.inference.image_io import parse_boxes
from deepmac_tf.inference.visualization import draw_overlay
from deepmac_tf.inference.visualization import save_overlay

_PREDICTOR_NAMES = ('DeepMacPredictor', 'Detections', 'load')


def __getattr__(name):
  # TensorFlow loads with the predictor, on first use: scripts check their
  # image and box inputs (image_io) in a second, before that import.
  if name in _PREDICTOR_NAMES:
    from deepmac_tf.inference import predictor  # pylint: disable=g-import-not-at-top
    return getattr(predictor, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
