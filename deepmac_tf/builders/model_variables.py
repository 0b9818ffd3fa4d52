"""Creates every variable of a model before the first training step, so
checkpoints (resume, fine-tune) restore into existing variables and the
optimizer slots can be built eagerly."""

import tensorflow as tf

from deepmac_tf.config import config_util
from deepmac_tf.data import image_resizer
from deepmac_tf.meta_architectures import capabilities

_FALLBACK_SIZE = 64


def input_size_from_configs(configs):
  """(height, width) of a representative model input for the dummy pass.

  The resizer's static output size; else max_dimension squared; else 64.
  """
  arch, model = config_util.get_model_message(configs['model'])
  resizer = image_resizer.build(model.image_resizer,
                                f'model.{arch}.image_resizer')
  if resizer.output_size is not None:
    return tuple(int(v) for v in resizer.output_size)
  size = resizer.max_dimension or _FALLBACK_SIZE
  return int(size), int(size)


def build_model_variables(model, image_height, image_width):
  """One inference-mode pass on a zero image through every head, so every
  variable exists (heads built on their first call included).

  Runs ``predict``, ``postprocess`` (unless the model is detector-free: that
  builds e.g. Mask R-CNN's box head) and, for models with masks, the mask
  head on one box (``predict_masks_from_boxes``).

  Args:
    model: a meta-architecture (``preprocess / predict / postprocess``).
    image_height / image_width: input size [1, H, W, 3].
  """
  images = tf.zeros([1, image_height, image_width, 3], tf.float32)
  predictions = model.predict(model.normalize_images(images), training=False)
  if not capabilities.is_detector_free(model):
    model.postprocess(predictions)
  if capabilities.has_masks(model):
    kwargs = ({'classes': tf.zeros([1, 1], tf.int32)}
              if capabilities.needs_box_classes(model) else {})
    model.predict_masks_from_boxes(
        predictions, tf.constant([[[0.25, 0.25, 0.75, 0.75]]], tf.float32),
        **kwargs)
  # Heads that run in training only (the teacher of teacher-student heads).
  build_training_heads = getattr(model, 'build_training_heads', None)
  if build_training_heads is not None:
    build_training_heads(predictions)
