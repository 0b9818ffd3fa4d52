"""Inference on exported SavedModels: detection, box-prompted segmentation
with masks pasted into image space, overlays and COCO-format results.

Serving side only (TensorFlow, numpy, PIL, pycocotools): never imports the
training stack, the exporter, builders or model code.
"""

from deepmac_tf.inference.coco_results import to_coco_results
from deepmac_tf.inference.coco_results import write_coco_results
from deepmac_tf.inference.image_io import load_image
from deepmac_tf.inference.image_io import parse_boxes
from deepmac_tf.inference.predictor import DeepMacPredictor
from deepmac_tf.inference.predictor import Detections
from deepmac_tf.inference.predictor import load
from deepmac_tf.inference.visualization import draw_overlay
from deepmac_tf.inference.visualization import save_overlay
