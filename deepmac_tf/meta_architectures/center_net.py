"""CenterNet meta-architecture for object detection (boxes only).

Lifecycle (DESIGN.md "The data path"): ``normalize_images(images)`` ->
``predict(preprocessed)`` -> ``loss(predictions, groundtruth)`` /
``postprocess(predictions, true_image_shapes)``. Groundtruth is the
``InputFields`` batch dict, passed explicitly; nothing is stashed on the model.
The OD API's lifecycle (``preprocess`` -> ``(inputs, true_image_shapes)``,
``provide_groundtruth`` + ``loss(predictions, true_image_shapes)``) is the
thin layer of ``detection_model.DetectionModelLifecycle`` on top.

Checkpoint object names follow the OD API (spec section 9): the backbone is
``_feature_extractor``; heads live in ``_prediction_head_dict`` under
``object_center``, ``box/scale``, ``box/offset`` (escaped ``box.Sscale`` in
checkpoint keys), each a list with one ``Sequential`` per backbone stage.
Deep-MAC subclasses this and adds heads with ``_add_prediction_head``.

Box conventions: [ymin, xmin, ymax, xmax]. Groundtruth boxes are normalized
to the padded input; ``detection_boxes_strided`` are in output-grid pixels of
the padded map; ``detection_boxes`` are normalized to the true (unpadded)
image.
"""

from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.losses import center_net_losses
from deepmac_tf.losses import normalization
from deepmac_tf.meta_architectures import center_net_heads
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import center_net_postprocess
from deepmac_tf.meta_architectures import center_net_targets
from deepmac_tf.meta_architectures import detection_model

OBJECT_CENTER = 'object_center'
BOX_SCALE = 'box/scale'
BOX_OFFSET = 'box/offset'
EXTRACTED_FEATURES = 'extracted_features'
PREPROCESSED_INPUTS = 'preprocessed_inputs'

LOSS_OBJECT_CENTER = 'Loss/object_center'
LOSS_BOX_SCALE = 'Loss/box/scale'
LOSS_BOX_OFFSET = 'Loss/box/offset'

DETECTION_BOXES = 'detection_boxes'
DETECTION_BOXES_STRIDED = 'detection_boxes_strided'
DETECTION_SCORES = 'detection_scores'
DETECTION_CLASSES = 'detection_classes'
DETECTION_MULTICLASS_SCORES = 'detection_multiclass_scores'
NUM_DETECTIONS = 'num_detections'

make_prediction_net = center_net_heads.make_prediction_net


def spatial_size(tensor):
  """(height, width) of [batch, h, w, c]: Python ints when static."""
  dynamic = tf.shape(tensor)
  height = tensor.shape[1] if tensor.shape[1] is not None else dynamic[1]
  width = tensor.shape[2] if tensor.shape[2] is not None else dynamic[2]
  return height, width


def padded_image_shapes(preprocessed_inputs):
  """int32 [batch, 3] (H, W, C) of the padded input, for every image."""
  shape = tf.shape(preprocessed_inputs)
  return tf.tile(shape[tf.newaxis, 1:4], [shape[0], 1])


class CenterNetMetaArch(detection_model.DetectionModelLifecycle,
                        tf_keras.layers.Layer):
  """CenterNet: center heatmap + box scale / offset heads on every stage."""

  def __init__(self,
               is_training: bool,
               num_classes: int,
               feature_extractor,
               object_center_params: center_net_params.ObjectCenterParams,
               object_detection_params: (
                   center_net_params.ObjectDetectionParams | None) = None,
               name: str = 'center_net_meta_arch',
               use_depthwise: bool = False,
               **kwargs):
    """Builds the heads (before any call, so checkpoint names are stable).

    Args:
      is_training: whether the model is built for training (kept for
        subclasses and builders; the Keras ``training`` argument of
        ``predict`` drives layer behaviour).
      num_classes: number of object classes (heatmap channels).
      feature_extractor: a ``CenterNetFeatureExtractor``-like layer with
        ``preprocess(images)``, ``call(x, training) -> list of [B, h, w, C]``,
        ``num_feature_outputs`` and ``out_stride``.
      object_center_params: ``ObjectCenterParams``.
      object_detection_params: ``ObjectDetectionParams`` or None (no box
        heads, no box losses, no boxes in postprocess).
      name: Keras layer name.
      use_depthwise: depthwise-separable hidden convs in every prediction
        head (the OD API's ``center_net.use_depthwise``).
      **kwargs: passed to ``tf_keras.layers.Layer``.
    """
    # No autocast: images stay float32 into preprocess under mixed precision.
    kwargs.setdefault('autocast', False)
    super().__init__(name=name, **kwargs)
    if num_classes < 1:
      raise ConfigError(f'center_net.num_classes: must be >= 1, got '
                        f'{num_classes}.')
    self._is_training = is_training
    self._use_depthwise = bool(use_depthwise)
    self._num_classes = num_classes
    self._feature_extractor = feature_extractor
    self._center_params = object_center_params
    self._od_params = object_detection_params
    self._num_stages = int(feature_extractor.num_feature_outputs)
    self._stride = int(feature_extractor.out_stride)
    self._prediction_head_dict = self._construct_prediction_heads()

  # -- construction --------------------------------------------------------

  def _construct_prediction_heads(self) -> dict[str, list]:
    """The CenterNet heads: {head name: [one Sequential per stage]}."""
    center = self._center_params
    heads = {
        OBJECT_CENTER: center_net_heads.make_prediction_net_list(
            self._num_stages, self._num_classes,
            kernel_sizes=center.center_head_kernel_sizes,
            num_filters=center.center_head_num_filters,
            bias_fill=center.heatmap_bias_init,
            use_depthwise=self._use_depthwise),
    }
    if self._od_params is not None:
      od = self._od_params
      heads[BOX_SCALE] = center_net_heads.make_prediction_net_list(
          self._num_stages, 2, kernel_sizes=od.scale_head_kernel_sizes,
          num_filters=od.scale_head_num_filters,
          use_depthwise=self._use_depthwise)
      heads[BOX_OFFSET] = center_net_heads.make_prediction_net_list(
          self._num_stages, 2, kernel_sizes=od.offset_head_kernel_sizes,
          num_filters=od.offset_head_num_filters,
          use_depthwise=self._use_depthwise)
    return heads

  def _add_prediction_head(self, head_name: str, num_out_channels: int,
                           kernel_sizes: Sequence[int] = (
                               center_net_params.DEFAULT_HEAD_KERNEL_SIZES),
                           num_filters: Sequence[int] = (
                               center_net_params.DEFAULT_HEAD_NUM_FILTERS),
                           bias_fill: float | None = None) -> None:
    """Adds one head per stage under ``_prediction_head_dict[head_name]``.

    For subclasses (e.g. Deep-MAC's 'INSTANCE_EMBEDDING'); call it in
    ``__init__`` after ``super().__init__``. ``predict`` then returns the
    head's per-stage outputs under ``head_name``.
    """
    if head_name in self._prediction_head_dict:
      raise ValueError(f'Prediction head {head_name!r} already exists.')
    self._prediction_head_dict[head_name] = (
        center_net_heads.make_prediction_net_list(
            self._num_stages, num_out_channels, kernel_sizes=kernel_sizes,
            num_filters=num_filters, bias_fill=bias_fill,
            use_depthwise=self._use_depthwise))

  # -- properties ----------------------------------------------------------

  @property
  def num_classes(self) -> int:
    return self._num_classes

  @property
  def stride(self) -> int:
    return self._stride

  @property
  def num_stages(self) -> int:
    return self._num_stages

  @property
  def feature_extractor(self):
    return self._feature_extractor

  # -- lifecycle -----------------------------------------------------------

  def normalize_images(self, images):
    """[B, H, W, 3] float 0..255 images, already at the model's input size
    -> feature-extractor inputs. (``preprocess``, the OD API's, also resizes
    and returns the true image shapes.)"""
    return self._feature_extractor.preprocess(images)

  def predict(self, preprocessed_inputs, true_image_shapes=None,
              training=None, **side_inputs) -> dict:
    """Runs the backbone and every head on every stage.

    Args:
      preprocessed_inputs: [B, H, W, 3] output of ``normalize_images`` (or
        the first output of ``preprocess``).
      true_image_shapes: int [B, 3] (OD API signature; CenterNet's heads do
        not need it: ``postprocess`` and ``loss`` take it).
      training: Keras training flag for the backbone and heads (None: the
        Keras learning phase, as in the OD API).
      **side_inputs: the OD API's side inputs (Context R-CNN); none is
        supported.

    Returns:
      dict: for each head name (``object_center`` [B,h,w,num_classes]
      logits, ``box/scale`` [B,h,w,2] (height, width in output pixels),
      ``box/offset`` [B,h,w,2], plus subclass heads) a list with one
      float32 tensor per stage; ``extracted_features`` (the backbone's list,
      in the compute dtype) and ``preprocessed_inputs``.
    """
    del true_image_shapes
    self.check_predict_inputs(preprocessed_inputs, side_inputs)
    features = self._feature_extractor(preprocessed_inputs, training=training)
    if not isinstance(features, (list, tuple)):
      features = [features]
    if len(features) != self._num_stages:
      raise ValueError(f'The feature extractor returned {len(features)} '
                       f'outputs; num_feature_outputs says {self._num_stages}.')
    predictions = {}
    for head_name in list(self._prediction_head_dict.keys()):
      heads = self._prediction_head_dict[head_name]
      # Heads may compute in bfloat16; everything downstream is float32.
      predictions[head_name] = [
          tf.cast(head(feature, training=training), tf.float32)
          for feature, head in zip(features, heads)]
    predictions[EXTRACTED_FEATURES] = list(features)
    predictions[PREPROCESSED_INPUTS] = preprocessed_inputs
    return predictions

  def call(self, images, training=None):
    """normalize_images + predict (the model can be called like a layer)."""
    return self.predict(self.normalize_images(images), training=training)

  def loss(self, prediction_dict, groundtruth=None, training=None) -> dict:
    """CenterNet losses, averaged over stages and normalized per box.

    Args:
      prediction_dict: output of ``predict``.
      groundtruth: ``InputFields`` dict with ``groundtruth_boxes`` [B,N,4]
        (normalized to the padded input), ``groundtruth_classes`` [B,N]
        (1-based, 0 = padding), optional ``groundtruth_weights`` [B,N]
        (default: 1 where the class is > 0) and optional
        ``true_image_shape`` [B,3] (default: the padded input shape). Or,
        OD API style, ``true_image_shapes`` [B, 3] / None: the groundtruth
        of ``provide_groundtruth`` is used.
      training: unused (kept for the lifecycle's signature).

    Returns:
      dict of float32 scalars: ``Loss/object_center`` and, with detection
      params, ``Loss/box/scale`` and ``Loss/box/offset``, already weighted.
    """
    groundtruth, training = self.loss_inputs(groundtruth, training)
    del training
    boxes, classes, weights, true_shapes = self._groundtruth_tensors(
        prediction_dict, groundtruth)
    # Boxes of the global batch under tf.distribute (see normalization).
    num_boxes = normalization.cross_replica_normalizer(
        tf.math.count_nonzero(weights))
    center = self._center_params
    losses = {
        LOSS_OBJECT_CENTER: center.object_center_loss_weight *
                            self._object_center_loss(
                                prediction_dict[OBJECT_CENTER], boxes,
                                classes, weights, true_shapes, num_boxes),
    }
    if self._od_params is not None:
      od = self._od_params
      scale_loss, offset_loss = self._box_losses(
          prediction_dict[BOX_SCALE], prediction_dict[BOX_OFFSET], boxes,
          weights, num_boxes)
      losses[LOSS_BOX_SCALE] = (
          od.scale_loss_weight * od.task_loss_weight * scale_loss)
      losses[LOSS_BOX_OFFSET] = (
          od.offset_loss_weight * od.task_loss_weight * offset_loss)
    return losses

  def _groundtruth_tensors(self, prediction_dict, groundtruth):
    """(boxes f32, classes i32, weights f32, true_image_shape i32)."""
    boxes = tf.cast(groundtruth[InputFields.BOXES], tf.float32)
    classes = tf.cast(groundtruth[InputFields.CLASSES], tf.int32)
    weights = groundtruth.get(InputFields.WEIGHTS)
    if weights is None:
      weights = tf.cast(classes > 0, tf.float32)
    weights = tf.cast(weights, tf.float32)
    true_shapes = groundtruth.get(InputFields.TRUE_IMAGE_SHAPE)
    if true_shapes is None:
      true_shapes = padded_image_shapes(prediction_dict[PREPROCESSED_INPUTS])
    return boxes, classes, weights, tf.cast(true_shapes, tf.int32)

  def _object_center_loss(self, center_predictions, boxes, classes, weights,
                          true_shapes, num_boxes):
    """Focal loss summed over pixels, classes, stages / (stages * boxes)."""
    height, width = spatial_size(center_predictions[0])
    center = self._center_params
    targets = center_net_targets.center_heatmap_targets(
        boxes, classes, weights, self._num_classes, height, width,
        center.min_box_overlap_iou)
    valid = center_net_targets.valid_area_mask(
        true_shapes, self._stride, height, width)[..., tf.newaxis]
    total = 0.0
    for logits in center_predictions:
      total += tf.reduce_sum(
          center_net_losses.penalty_reduced_logistic_focal_loss(
              logits, targets, valid, alpha=center.focal_loss_alpha,
              beta=center.focal_loss_beta))
    return total / (float(len(center_predictions)) * num_boxes)

  def _box_losses(self, scale_predictions, offset_predictions, boxes,
                  weights, num_boxes):
    """L1 at the center cells, summed over stages / (stages * boxes)."""
    height, width = spatial_size(scale_predictions[0])
    indices, scale_targets, offset_targets = center_net_targets.box_targets(
        boxes, height, width)
    scale_total = 0.0
    offset_total = 0.0
    for scale_map, offset_map in zip(scale_predictions, offset_predictions):
      scale = center_net_targets.gather_at_indices(scale_map, indices)
      offset = center_net_targets.gather_at_indices(offset_map, indices)
      scale_total += tf.reduce_sum(
          center_net_losses.l1_loss(scale, scale_targets, weights))
      offset_total += tf.reduce_sum(
          center_net_losses.l1_loss(offset, offset_targets, weights))
    normalizer = float(len(scale_predictions)) * num_boxes
    return scale_total / normalizer, offset_total / normalizer

  def postprocess(self, prediction_dict, true_image_shapes=None) -> dict:
    """Decodes the last stage into top-K detections.

    Scores are sigmoid(center logits) masked to the cells covering the true
    image (cells with index < ceil(true size / stride); the OD API compares
    with the size in input pixels, which masks almost nothing), max-pool
    peak suppression, then the top ``max_box_predictions`` over all cells and
    classes.

    Args:
      prediction_dict: output of ``predict``.
      true_image_shapes: int [B, 3] true (unpadded) input sizes; None = the
        padded input size.

    Returns:
      dict with ``detection_scores`` float32 [B,K], ``detection_classes``
      int32 [B,K] (0-based), ``detection_multiclass_scores`` float32
      [B,K,num_classes], ``num_detections`` int32 [B] (scores > 0) and, with
      detection params, ``detection_boxes_strided`` float32 [B,K,4] (output
      pixels of the padded map, clipped to [0,h] x [0,w]) and
      ``detection_boxes`` float32 [B,K,4] normalized to the true image and
      clipped to [0, 1]. K = ``max_box_predictions``.
    """
    logits = prediction_dict[OBJECT_CENTER][-1]
    if true_image_shapes is None:
      true_image_shapes = padded_image_shapes(
          prediction_dict[PREPROCESSED_INPUTS])
    height, width = spatial_size(logits)
    valid = center_net_targets.valid_area_mask(
        true_image_shapes, self._stride, height, width)
    probs = tf.sigmoid(tf.cast(logits, tf.float32)) * valid[..., tf.newaxis]
    center = self._center_params
    scores, rows, cols, classes = center_net_postprocess.top_k_peaks(
        probs, center.peak_max_pool_kernel_size, center.max_box_predictions)
    indices = tf.stack([rows, cols], axis=-1)
    detections = {
        DETECTION_SCORES: scores,
        DETECTION_CLASSES: classes,
        DETECTION_MULTICLASS_SCORES: tf.gather_nd(probs, indices,
                                                  batch_dims=1),
        NUM_DETECTIONS: tf.reduce_sum(tf.cast(scores > 0, tf.int32), axis=1),
    }
    if BOX_SCALE in prediction_dict:
      strided = center_net_postprocess.boxes_from_predictions(
          rows, cols, prediction_dict[BOX_SCALE][-1],
          prediction_dict[BOX_OFFSET][-1])
      detections[DETECTION_BOXES_STRIDED] = strided
      detections[DETECTION_BOXES] = (
          center_net_postprocess.strided_to_normalized_boxes(
              strided, self._stride, true_image_shapes))
    return detections

  def regularization_losses(self) -> list:
    """CenterNet has no regularization losses."""
    return []

  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Objects to restore a fine-tune checkpoint into (OD API names).

    Args:
      fine_tune_checkpoint_type: 'detection' (backbone only, saved as
        ``model/_feature_extractor``), 'classification' (the extractor's
        ``classification_backbone``, saved as ``feature_extractor``) or
        'full' (the whole model).

    Returns:
      dict for ``tf.train.Checkpoint(**result)``.

    Raises:
      ConfigError: another type, or 'classification' for an extractor
        without a classification backbone.
    """
    if fine_tune_checkpoint_type == 'classification':
      return detection_model.classification_objects(
          self._feature_extractor)
    if fine_tune_checkpoint_type == 'detection':
      return {'model': tf.train.Checkpoint(
          _feature_extractor=self._feature_extractor)}
    if fine_tune_checkpoint_type == 'full':
      return {'model': self}
    raise ConfigError(
        'train_config.fine_tune_checkpoint_type: CenterNet supports '
        f'"detection", "classification" or "full", got '
        f'{fine_tune_checkpoint_type!r}.')

