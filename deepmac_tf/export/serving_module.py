"""The ``tf.Module`` exported as a SavedModel: serving signatures around a
built (and restored) CenterNet / Deep-MAC model.

Each signature resizes every image with the model's image resizer (so
``true_image_shape`` is what the input pipeline would give), runs
``preprocess -> predict -> postprocess`` (or ``predict_masks_from_boxes``),
and returns float32 outputs under the OD API names:

* detection (image input types): ``detection_boxes`` [B, K, 4] normalized
  ymin, xmin, ymax, xmax to the original image, ``detection_scores`` [B, K],
  ``detection_classes`` [B, K] (1-based label-map ids),
  ``num_detections`` [B], ``detection_multiclass_scores`` [B, K, C],
  ``detection_boxes_strided`` [B, K, 4] (output-grid pixels of the padded
  input) and, for Deep-MAC, ``detection_masks`` [B, K, S, S] box-relative
  probabilities;
* box-prompted (``image_and_boxes_tensor``): ``detection_masks``
  [B, N, S, S] for the N given boxes, ``detection_boxes`` (the given boxes)
  and ``num_detections`` (N).

With ``add_reframed_masks``, ``detection_masks_reframed`` [B, K or N, H, W]
uint8 0/1 masks at the original image size are added (box masks pasted at
their boxes and thresholded at 0.5; uint8 because a float32 copy at image
size is 4x the memory for the same bits).

Only the model's variables are tracked (not the Keras layers), so the
SavedModel is a plain TF one that ``tf.saved_model.load`` reloads without
deepmac_tf or tf_keras.
"""

import tensorflow as tf

from deepmac_tf import graph_functions
from deepmac_tf.errors import ConfigError
from deepmac_tf.export import serving_inputs as inputs_lib
from deepmac_tf.meta_architectures.capabilities import has_masks
from deepmac_tf.meta_architectures.capabilities import is_detector_free
from deepmac_tf.meta_architectures.capabilities import needs_box_classes
from deepmac_tf.ops import mask_pasting

DETECTION_BOXES = 'detection_boxes'
DETECTION_MASKS = 'detection_masks'
DETECTION_MASKS_REFRAMED = 'detection_masks_reframed'
NUM_DETECTIONS = 'num_detections'
DETECTION_CLASSES = 'detection_classes'

# detection_classes are 0-based in the model, 1-based label ids outside.
LABEL_ID_OFFSET = 1

DEFAULT_SIGNATURE = 'serving_default'




def check_input_type(model, input_type):
  """Raises ConfigError for an unknown input type or one the model lacks."""
  if input_type not in inputs_lib.INPUT_TYPES:
    raise ConfigError(f'--input_type: unknown value {input_type!r}; '
                      f'expected one of {list(inputs_lib.INPUT_TYPES)}.')
  if is_detector_free(model) and (
      input_type != inputs_lib.IMAGE_AND_BOXES_TENSOR):
    raise ConfigError(
        f'--input_type={input_type}: the model is detector-free '
        '(model.center_net.deepmac_mask_estimation.detector_free: true) and '
        'predicts no boxes; only --input_type=image_and_boxes_tensor makes '
        'sense for it.')
  if input_type == inputs_lib.IMAGE_AND_BOXES_TENSOR and not has_masks(model):
    raise ConfigError(
        '--input_type=image_and_boxes_tensor: needs a model with a mask head '
        '(model.center_net.deepmac_mask_estimation, or model.faster_rcnn '
        'with number_of_stages: 3); this model predicts no masks.')


class DeepMacServingModule(tf.Module):
  """Serving signatures around a built CenterNet / Deep-MAC model."""

  def __init__(self, model, image_resizer, input_type,
               add_reframed_masks=False, name='deepmac_serving'):
    """Creates the module (tracing happens in ``signatures``).

    Args:
      model: a built meta-architecture (variables created and restored).
      image_resizer: ``deepmac_tf.data.image_resizer.ImageResizer`` of the
        model's config.
      input_type: one of ``serving_inputs.INPUT_TYPES``.
      add_reframed_masks: also return ``detection_masks_reframed``.
      name: module name.

    Raises:
      ConfigError: an unknown input type, or one the model cannot serve.
    """
    super().__init__(name=name)
    check_input_type(model, input_type)
    if not model.variables:
      raise ValueError('Build the model (one forward pass) before exporting.')
    self._model_holder = _Untracked(model)
    self._resizer = image_resizer
    self._input_type = input_type
    self._add_reframed = bool(add_reframed_masks and has_masks(model))
    # The SavedModel's state: the variables the signatures capture.
    self.model_variables = list(model.variables)

  @property
  def _model(self):
    return self._model_holder.value

  @property
  def input_type(self):
    return self._input_type

  def signature_input_types(self):
    """{signature name: input type}: serving_default plus the other kind.

    A Deep-MAC model with a detector exported for detection also gets an
    ``image_and_boxes_tensor`` signature, and one exported for boxes an
    ``image_tensor`` signature, so one SavedModel serves both uses.
    """
    result = {DEFAULT_SIGNATURE: self._input_type}
    model = self._model
    if self._input_type == inputs_lib.IMAGE_AND_BOXES_TENSOR:
      if not is_detector_free(model):
        result[inputs_lib.IMAGE_TENSOR] = inputs_lib.IMAGE_TENSOR
    elif has_masks(model):
      result[inputs_lib.IMAGE_AND_BOXES_TENSOR] = (
          inputs_lib.IMAGE_AND_BOXES_TENSOR)
    return result

  def signatures(self):
    """{signature name: concrete function} for ``tf.saved_model.save``."""
    result = {}
    for name, input_type in self.signature_input_types().items():
      specs = inputs_lib.input_specs(input_type,
                                     needs_box_classes(self._model))
      if input_type == inputs_lib.IMAGE_AND_BOXES_TENSOR:
        fn = graph_functions.function(self.serve_boxes, input_signature=list(
            specs.values()))
      else:
        fn = graph_functions.function(
            lambda input_tensor, t=input_type: self.serve_detection(
                input_tensor, t),
            input_signature=[specs[inputs_lib.INPUT_TENSOR]])
      result[name] = fn.get_concrete_function()
    if len(self._model.variables) != len(self.model_variables):
      raise ValueError('The model created variables while the signatures were '
                       'traced; run every head once before exporting '
                       '(exporter.create_variables).')
    return result

  # -- the serving computations (traced into the signatures) ---------------

  def _images_to_model_inputs(self, input_tensor, input_type):
    """(model inputs [B, h, w, 3] f32, true shapes [B, 3], (H, W), checks)."""
    out_hw = self._resizer.output_size
    spec = tf.TensorSpec(list(out_hw or (None, None)) + [3], tf.float32)

    def resize(image):
      resized, _, true_shape = self._resizer(image)
      return resized, true_shape

    checks = []
    if input_type in inputs_lib.STRING_INPUT_TYPES:
      strings = inputs_lib.validate_strings(input_tensor, input_type)
      decode = (inputs_lib.decode_tf_example
                if input_type == inputs_lib.TF_EXAMPLE
                else inputs_lib.decode_image)

      def decode_and_resize(serialized):
        image = decode(serialized)
        resized, true_shape = resize(image)
        return resized, true_shape, tf.shape(image)[:2]

      if out_hw is None:
        checks.append(tf.debugging.Assert(
            tf.equal(tf.shape(strings)[0], 1),
            [f'{inputs_lib.INPUT_TENSOR}: the image resizer of this model '
             'has no fixed output size, so pass one encoded image per call; '
             'batch size given:', tf.shape(strings)[0]]))
      with tf.control_dependencies(checks):
        strings = tf.identity(strings)
      images, true_shapes, sizes = tf.map_fn(
          decode_and_resize, strings,
          fn_output_signature=(spec, tf.TensorSpec([3], tf.int32),
                               tf.TensorSpec([2], tf.int32)))
      if self._add_reframed:
        checks.append(tf.debugging.Assert(
            tf.reduce_all(tf.equal(sizes, sizes[0])),
            [f'{inputs_lib.INPUT_TENSOR}: {DETECTION_MASKS_REFRAMED} needs '
             'the images of one call to have one size; sizes:', sizes],
            summarize=16))
      original_hw = (sizes[0, 0], sizes[0, 1])
    else:
      images = inputs_lib.validate_images(input_tensor, input_type)
      images, true_shapes = tf.map_fn(
          resize, tf.cast(images, tf.float32),
          fn_output_signature=(spec, tf.TensorSpec([3], tf.int32)))
      original_hw = (tf.shape(input_tensor)[1], tf.shape(input_tensor)[2])
    return images, true_shapes, original_hw, checks

  def _predict(self, images):
    model = self._model
    return model.predict(model.normalize_images(images), training=False)

  def serve_detection(self, input_tensor, input_type=None):
    """Detection on an image batch (see the module docstring for outputs).

    Args:
      input_tensor: the input type's tensor (``serving_inputs``).
      input_type: defaults to the module's input type.

    Returns:
      dict of float32 outputs (uint8 ``detection_masks_reframed``).
    """
    input_type = input_type or self._input_type
    images, true_shapes, (height, width), checks = (
        self._images_to_model_inputs(input_tensor, input_type))
    with tf.control_dependencies(checks):
      images = tf.identity(images)
    detections = self._model.postprocess(self._predict(images), true_shapes)
    outputs = {key: tf.cast(value, tf.float32)
               for key, value in detections.items()}
    outputs[DETECTION_CLASSES] += LABEL_ID_OFFSET
    if self._add_reframed and DETECTION_MASKS in outputs:
      outputs[DETECTION_MASKS_REFRAMED] = mask_pasting.paste_box_masks(
          outputs[DETECTION_MASKS], outputs[DETECTION_BOXES], height, width,
          threshold=0.5)
    return outputs

  def serve_boxes(self, input_tensor, boxes, classes=None):
    """Box-prompted masks: one mask per given box, any class.

    Args:
      input_tensor: uint8 [B, H, W, 3] images.
      boxes: float32 [B, N, 4] ymin, xmin, ymax, xmax normalized to the
        original image (N may be 0).
      classes: int32 [B, N] 1-based label ids of the boxes: required by
        class-specific models (their signature takes it), else unused.

    Returns:
      ``detection_masks`` [B, N, S, S] box-relative probabilities,
      ``detection_boxes`` [B, N, 4] (the given boxes), ``num_detections``
      [B] (N), float32; plus uint8 ``detection_masks_reframed`` [B, N, H, W]
      with the option.
    """
    images, true_shapes, (height, width), _ = self._images_to_model_inputs(
        input_tensor, inputs_lib.IMAGE_AND_BOXES_TENSOR)
    boxes = inputs_lib.validate_boxes(boxes, tf.shape(images)[0])
    predictions = self._predict(images)
    # Normalized to the original image == normalized to the true (resized,
    # unpadded) image; the model maps them to the padded map.
    # "No boxes" gives [B, 0, S, S]: the mask heads handle an empty batch
    # of crops themselves (layers/empty_batch.py).
    num_boxes = tf.shape(boxes)[1]
    kwargs = {}
    if needs_box_classes(self._model):
      if classes is None:
        raise ConfigError(
            f'{inputs_lib.CLASSES}: this model\'s masks are class-specific; '
            f'pass {inputs_lib.EXPECTED_CLASSES} with the boxes.')
      kwargs['classes'] = inputs_lib.validate_classes(
          classes, boxes, self._model.num_classes)
    masks = self._model.predict_masks_from_boxes(
        predictions, boxes, true_shapes, **kwargs)[DETECTION_MASKS]
    outputs = {
        DETECTION_MASKS: tf.cast(masks, tf.float32),
        DETECTION_BOXES: boxes,
        NUM_DETECTIONS: tf.cast(tf.fill([tf.shape(boxes)[0]], num_boxes),
                                tf.float32),
    }
    if self._add_reframed:
      outputs[DETECTION_MASKS_REFRAMED] = mask_pasting.paste_box_masks(
          masks, boxes, height, width, threshold=0.5)
    return outputs


class _Untracked:
  """Holds the Keras model without making it part of the SavedModel."""

  def __init__(self, value):
    self.value = value
