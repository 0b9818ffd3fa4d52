"""Load an exported SavedModel and run detection or box-prompted segmentation.

Serving side only: TensorFlow, numpy, PIL, the label-map reader and the
mask-pasting op; no model code. Works with this project's exports (which carry their input type
and label map in ``saved_model/assets.extra``) and with OD API Deep-MAC
exports (pass ``label_map_path`` for class names).

Masks come back pasted into image space at the original image size: the
exported ``detection_masks`` are box-relative [K, S, S] probabilities, which
``ops.mask_pasting.paste_box_masks`` crop-resizes at each box (the OD API's
reframe semantics) and thresholds.

Example::

  model = DeepMacPredictor('exported/saved_model')
  found = model.detect('image.jpg', min_score_threshold=0.5)
  found.masks        # bool [N, H, W] at the image size
  found.class_names  # ['circle', ...]
  masks = model.segment(image, [[0.1, 0.2, 0.6, 0.7]]).masks
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from deepmac_tf.data import label_map_util
from deepmac_tf.errors import DataError
from deepmac_tf.errors import tf_message_line
from deepmac_tf.inference import image_io
from deepmac_tf.ops import mask_pasting

INPUT_TENSOR = 'input_tensor'
BOXES = 'boxes'
CLASSES = 'classes'  # box-prompted signature of class-specific models
METADATA_PATH = os.path.join('assets.extra', 'export_metadata.json')
LABEL_MAP_PATH = os.path.join('assets.extra', 'label_map.pbtxt')


@dataclasses.dataclass
class Detections:
  """Results for one image (N instances, image of size H x W).

  Attributes:
    boxes: float32 [N, 4] ymin, xmin, ymax, xmax normalized to the image.
    scores: float32 [N] (1.0 for given boxes).
    classes: int32 [N] 1-based label-map ids (0 = unknown, e.g. a given box
      without a class).
    class_names: N names from the label map ('' when unknown).
    masks: bool [N, H, W] image-space masks, or None (no mask model).
    mask_probabilities: float32 [N, H, W] pasted probabilities, or None.
    image_size: (H, W).
  """
  boxes: np.ndarray
  scores: np.ndarray
  classes: np.ndarray
  class_names: list
  masks: np.ndarray | None
  mask_probabilities: np.ndarray | None
  image_size: tuple

  def __len__(self):
    return int(self.boxes.shape[0])

  def pixel_boxes(self):
    """float32 [N, 4] ymin, xmin, ymax, xmax in pixels."""
    height, width = self.image_size
    return self.boxes * np.array([height, width, height, width], np.float32)


def _signature_inputs(signature):
  return signature.structured_input_signature[1]


class DeepMacPredictor:
  """A loaded SavedModel with ``detect`` and ``segment`` methods."""

  def __init__(self, saved_model_dir, label_map_path=None):
    """Loads the SavedModel.

    Args:
      saved_model_dir: the export's ``saved_model`` folder (or the export
        folder holding it).
      label_map_path: label map for class names (default: the one stored
        in the export, if any).

    Raises:
      DataError: no SavedModel there, or no usable signature.
      LabelMapError: an unreadable label map.
    """
    path = os.fspath(saved_model_dir)
    if not os.path.exists(os.path.join(path, 'saved_model.pb')) and (
        os.path.exists(os.path.join(path, 'saved_model', 'saved_model.pb'))):
      path = os.path.join(path, 'saved_model')
    if not os.path.exists(os.path.join(path, 'saved_model.pb')):
      raise DataError(f'--saved_model_dir: no saved_model.pb in {path} (pass '
                      'the exporter\'s output_directory/saved_model).')
    self.saved_model_dir = path
    try:
      self._loaded = tf.saved_model.load(path)
    except (OSError, IndexError, tf.errors.OpError) as e:
      # A damaged or truncated export: an unparsable saved_model.pb is an
      # OSError, a short variables file TF's reader's IndexError ("Read
      # less bytes than requested"), other damage an OpError.
      raise DataError(f'--saved_model_dir: cannot load {path} as a '
                      f'SavedModel ({tf_message_line(e)[:300]}).') from None
    self.metadata = self._read_metadata()
    self._detect_fn, self._detect_type = None, None
    self._boxes_fn, self._boxes_type = None, None
    for name, signature in self._loaded.signatures.items():
      keys = set(_signature_inputs(signature))
      input_type = self.metadata.get('signatures', {}).get(name, {}).get(
          'input_type')
      if keys in ({INPUT_TENSOR, BOXES}, {INPUT_TENSOR, BOXES, CLASSES}) and (
          self._boxes_fn is None):
        self._boxes_fn, self._boxes_type = signature, input_type
      elif keys == {INPUT_TENSOR} and (
          self._detect_fn is None or name == 'serving_default'):
        self._detect_fn, self._detect_type = signature, input_type
    if self._detect_fn is None and self._boxes_fn is None:
      raise DataError(f'{path}: no signature takes "input_tensor" (and '
                      '"boxes"); is this an object-detection export?')
    if label_map_path is None and os.path.exists(
        os.path.join(path, LABEL_MAP_PATH)):
      label_map_path = os.path.join(path, LABEL_MAP_PATH)
    self.category_index = (label_map_util.create_category_index(
        label_map_path) if label_map_path else {})

  def _read_metadata(self):
    metadata_path = os.path.join(self.saved_model_dir, METADATA_PATH)
    if not os.path.exists(metadata_path):
      return {}
    with open(metadata_path, encoding='utf-8') as f:
      return json.load(f)

  @property
  def can_detect(self):
    return self._detect_fn is not None

  @property
  def can_segment_boxes(self):
    return self._boxes_fn is not None

  def class_name(self, class_id):
    """Display name of a 1-based id ('' for 0, 'class N' if unknown)."""
    if class_id <= 0:
      return ''
    entry = self.category_index.get(int(class_id))
    return entry['name'] if entry else f'class {int(class_id)}'

  def _image_input(self, signature, input_type, image):
    dtype = _signature_inputs(signature)[INPUT_TENSOR].dtype
    if dtype == tf.uint8:
      return tf.constant(image[None])
    if dtype == tf.float32:
      return tf.constant(image[None].astype(np.float32))
    if dtype == tf.string:
      encoded = image_io.encode_png(image)
      if input_type == 'tf_example':
        height, width = image.shape[:2]
        example = tf.train.Example(features=tf.train.Features(feature={
            'image/encoded': _bytes_feature(encoded),
            'image/format': _bytes_feature(b'png'),
            'image/height': _int_feature(height),
            'image/width': _int_feature(width),
        }))
        return tf.constant([example.SerializeToString()])
      return tf.constant([encoded])
    raise DataError(f'{self.saved_model_dir}: input_tensor has dtype '
                    f'{dtype.name}, which this API cannot feed.')

  def _masks(self, outputs, boxes, image_size, mask_threshold):
    if 'detection_masks' not in outputs:
      return None, None
    box_masks = outputs['detection_masks'][0].numpy()[:boxes.shape[0]]
    probabilities = mask_pasting.paste_box_masks(box_masks, boxes,
                                                 *image_size).numpy()
    return probabilities > mask_threshold, probabilities

  def detect(self, image, min_score_threshold=0.5, mask_threshold=0.5,
             max_detections=None):
    """Detects objects and their masks in one image.

    Args:
      image: path, PIL image or array (see ``image_io.load_image``).
      min_score_threshold: keep detections with score >= this.
      mask_threshold: probability above which a pixel is in the mask.
      max_detections: keep at most this many (highest scores first).

    Returns:
      ``Detections`` sorted by decreasing score.

    Raises:
      DataError: the export has no detection signature (detector-free), or
        a bad image.
    """
    if self._detect_fn is None:
      raise DataError(f'{self.saved_model_dir}: this export has no detection '
                      'signature (a detector-free model); use segment(image, '
                      'boxes).')
    image = image_io.load_image(image)
    outputs = self._detect_fn(**{INPUT_TENSOR: self._image_input(
        self._detect_fn, self._detect_type, image)})
    scores = outputs['detection_scores'][0].numpy()
    count = int(outputs['num_detections'][0].numpy())
    order = np.argsort(-scores[:count], kind='stable')
    order = order[scores[order] >= min_score_threshold]
    if max_detections is not None:
      order = order[:max_detections]
    boxes = outputs['detection_boxes'][0].numpy()[order]
    classes = np.round(outputs['detection_classes'][0].numpy()[order]).astype(
        np.int32)
    masks, probabilities = None, None
    if 'detection_masks' in outputs:
      box_masks = outputs['detection_masks'][0].numpy()[order]
      probabilities = mask_pasting.paste_box_masks(
          box_masks, boxes, *image.shape[:2]).numpy()
      masks = probabilities > mask_threshold
    return Detections(
        boxes=boxes.astype(np.float32), scores=scores[order].astype(np.float32),
        classes=classes, class_names=[self.class_name(c) for c in classes],
        masks=masks, mask_probabilities=probabilities,
        image_size=tuple(image.shape[:2]))

  def segment(self, image, boxes, classes=None, mask_threshold=0.5,
              pixel_boxes=False):
    """Box-prompted segmentation: one mask per given box, any class.

    Args:
      image: path, PIL image or array.
      boxes: [N, 4] ymin, xmin, ymax, xmax, normalized (or pixels with
        ``pixel_boxes``).
      classes: [N] 1-based ids: attached (names, COCO results); required
        by exports of class-specific models (MaskX R-CNN), whose mask of a
        box is its class's channel.
      mask_threshold: probability above which a pixel is in the mask.
      pixel_boxes: boxes are in pixels of the image.

    Returns:
      ``Detections`` in the order of the boxes (scores 1.0).

    Raises:
      DataError: no box-prompted signature in the export, bad image/boxes.
    """
    if self._boxes_fn is None:
      raise DataError(f'{self.saved_model_dir}: this export has no '
                      'image_and_boxes_tensor signature; re-export a Deep-MAC '
                      'model (any --input_type adds it).')
    image = image_io.load_image(image)
    boxes = image_io.check_boxes(
        boxes, image_size=image.shape[:2] if pixel_boxes else None)
    num = boxes.shape[0]
    class_ids = (np.zeros([num], np.int32) if classes is None
                 else np.asarray(classes, np.int32).reshape([-1]))
    if class_ids.shape[0] != num:
      raise DataError(f'classes: {class_ids.shape[0]} ids for {num} boxes.')
    inputs = {INPUT_TENSOR: self._image_input(self._boxes_fn,
                                              self._boxes_type, image),
              BOXES: tf.constant(boxes[None])}
    if CLASSES in _signature_inputs(self._boxes_fn):
      if classes is None:
        raise DataError(
            f'{self.saved_model_dir}: this model predicts class-specific '
            'masks (MaskX R-CNN / class_agnostic: false); give the class of '
            'each box (classes=[...] 1-based ids; segment.py: a --boxes JSON '
            'file with "category_id").')
      inputs[CLASSES] = tf.constant(class_ids[None])
    outputs = self._boxes_fn(**inputs)
    masks, probabilities = self._masks(outputs, boxes, image.shape[:2],
                                       mask_threshold)
    return Detections(
        boxes=boxes, scores=np.ones([num], np.float32), classes=class_ids,
        class_names=[self.class_name(c) for c in class_ids], masks=masks,
        mask_probabilities=probabilities, image_size=tuple(image.shape[:2]))


def load(saved_model_dir, label_map_path=None):
  """Shorthand for ``DeepMacPredictor(saved_model_dir, label_map_path)``."""
  return DeepMacPredictor(saved_model_dir, label_map_path)


def _bytes_feature(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
