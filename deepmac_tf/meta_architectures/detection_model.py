"""The OD API ``DetectionModel`` lifecycle, as a thin layer over ours.

OD API code drives a model like this (its eager few-shot tutorial)::

  images, shapes = model.preprocess(raw_images)
  model.provide_groundtruth(groundtruth_boxes_list=boxes,
                            groundtruth_classes_list=one_hot_classes)
  prediction_dict = model.predict(images, shapes)
  losses = model.loss(prediction_dict, shapes)
  detections = model.postprocess(prediction_dict, shapes)

Our core passes groundtruth explicitly: ``normalize_images(images)`` (images
already at the model's input size) -> ``predict`` -> ``loss(prediction_dict,
groundtruth_dict)``. ``DetectionModelLifecycle`` adds the OD API's methods on
top: ``preprocess`` resizes with the config's image resizer and returns the
true image shapes; ``provide_groundtruth`` turns the OD API's per-image lists
into our ``InputFields`` batch dict and keeps it for the next ``loss`` (and,
for Mask R-CNN, the training ``predict``); ``loss(prediction_dict,
true_image_shapes)`` uses it. A dict as ``loss``'s second argument is the
explicit core call, unchanged.
"""

from collections.abc import Mapping

import tensorflow as tf

from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError

# provide_groundtruth arguments of the OD API signature that these models'
# losses do not read (the OD API's CenterNet / Faster R-CNN ignore them too).
_UNUSED_BY_LOSS = (
    'groundtruth_confidences_list', 'groundtruth_is_crowd_list',
    'groundtruth_group_of_list', 'groundtruth_area_list', 'is_annotated_list',
    'groundtruth_labeled_classes', 'groundtruth_verified_neg_classes',
    'groundtruth_not_exhaustive_classes', 'groundtruth_image_classes',
    'training_step')
# Arguments for tasks these models do not have (keypoints, DensePose,
# tracking): given, they raise instead of being dropped.
_UNSUPPORTED = (
    'groundtruth_keypoints_list', 'groundtruth_keypoint_visibilities_list',
    'groundtruth_dp_num_points_list', 'groundtruth_dp_part_ids_list',
    'groundtruth_dp_surface_coords_list', 'groundtruth_track_ids_list',
    'groundtruth_temporal_offsets_list', 'groundtruth_track_match_flags_list',
    'groundtruth_keypoint_depths_list',
    'groundtruth_keypoint_depth_weights_list')


class _ProvidedGroundtruth:
  """Holds the last ``provide_groundtruth`` (a plain object: not tracked by
  Keras, so it never enters a checkpoint or SavedModel)."""

  def __init__(self, batch, lists):
    self.batch = batch    # InputFields dict
    self.lists = lists    # OD API field name -> list, as given


def _pad_stack(tensors, num_instances, dtype):
  """Stacks per-image [n_i, ...] tensors into [B, num_instances, ...]."""
  padded = []
  for tensor in tensors:
    tensor = tf.cast(tensor, dtype)
    pad = [[0, num_instances - tf.shape(tensor)[0]]] + [
        [0, 0]] * (len(tensor.shape) - 1)
    padded.append(tf.pad(tensor, pad))
  return tf.stack(padded, axis=0)


def class_ids_from_one_hot(one_hot):
  """OD API k-hot classes [n, num_classes] -> 1-based ids [n] (0 = none).

  The OD API's classes exclude background: column 0 is label-map id 1. A row
  with several ones takes its first (our models have one class per box).
  """
  one_hot = tf.cast(one_hot, tf.float32)
  ids = tf.argmax(one_hot, axis=-1, output_type=tf.int32) + 1
  return tf.where(tf.reduce_max(one_hot, axis=-1) > 0, ids, 0)


def groundtruth_batch_from_lists(groundtruth_boxes_list,
                                 groundtruth_classes_list,
                                 groundtruth_masks_list=None,
                                 groundtruth_mask_weights_list=None,
                                 groundtruth_weights_list=None):
  """OD API per-image groundtruth lists -> our ``InputFields`` batch dict.

  Args:
    groundtruth_boxes_list: B tensors [n_i, 4], normalized ymin, xmin, ymax,
      xmax (to the preprocessed, padded image, as the OD API's inputs give).
    groundtruth_classes_list: B one-hot / k-hot tensors [n_i, num_classes]
      (no background column).
    groundtruth_masks_list: optional B tensors [n_i, H, W] (0/1).
    groundtruth_mask_weights_list: optional B tensors [n_i].
    groundtruth_weights_list: optional B tensors [n_i] (default 1).

  Returns:
    dict: ``groundtruth_boxes`` [B, N, 4], ``groundtruth_classes`` [B, N]
    int32 1-based, ``groundtruth_weights`` [B, N] (0 on padding and on
    class-less rows), ``num_groundtruth_boxes`` [B], and with masks
    ``groundtruth_instance_masks`` [B, N, H, W] and (when given)
    ``groundtruth_instance_mask_weights`` [B, N]. N = the largest n_i.
  """
  boxes_list = list(groundtruth_boxes_list)
  if len(boxes_list) != len(groundtruth_classes_list):
    raise ValueError(
        f'provide_groundtruth: {len(boxes_list)} box tensors but '
        f'{len(groundtruth_classes_list)} class tensors (one per image).')
  counts = tf.stack([tf.shape(b)[0] for b in boxes_list])
  num_instances = tf.reduce_max(counts)
  classes = [class_ids_from_one_hot(c) for c in groundtruth_classes_list]
  if groundtruth_weights_list is None:
    weights = [tf.ones(tf.shape(b)[:1], tf.float32) for b in boxes_list]
  else:
    weights = list(groundtruth_weights_list)
  weights = [tf.cast(w, tf.float32) * tf.cast(c > 0, tf.float32)
             for w, c in zip(weights, classes)]
  batch = {
      InputFields.BOXES: _pad_stack(boxes_list, num_instances, tf.float32),
      InputFields.CLASSES: _pad_stack(classes, num_instances, tf.int32),
      InputFields.WEIGHTS: _pad_stack(weights, num_instances, tf.float32),
      InputFields.NUM_BOXES: counts,
  }
  if groundtruth_masks_list is not None:
    batch[InputFields.INSTANCE_MASKS] = _pad_stack(
        groundtruth_masks_list, num_instances, tf.float32)
  if groundtruth_mask_weights_list is not None:
    batch[InputFields.MASK_WEIGHTS] = _pad_stack(
        groundtruth_mask_weights_list, num_instances, tf.float32)
  return batch


class DetectionModelLifecycle:
  """Mixin: the OD API ``DetectionModel`` methods for a meta-architecture.

  The class mixing it in provides ``normalize_images(images)``,
  ``predict``, ``loss`` (explicit groundtruth dict), ``postprocess``,
  ``regularization_losses`` and ``restore_from_objects``; its ``loss``
  starts with ``groundtruth, training = self.loss_inputs(groundtruth,
  training)``. ``set_image_resizer`` (the builder calls it) gives
  ``preprocess`` the config's resizer.
  """

  _image_resizer = None
  _odapi_groundtruth = None

  def set_image_resizer(self, resizer):
    """The ``ImageResizer`` ``preprocess`` applies (None: no resizing)."""
    self._image_resizer = resizer

  # -- OD API methods ------------------------------------------------------

  def preprocess(self, inputs):
    """OD API ``preprocess``: resize (the config's image resizer) and
    normalize.

    Args:
      inputs: [B, H, W, 3] images, 0..255 (any real dtype).

    Returns:
      (preprocessed_inputs [B, H', W', 3] float32, true_image_shapes
      [B, 3] int32: the resized size of each image before padding).
    """
    inputs = tf.cast(inputs, tf.float32)
    resizer = self._image_resizer
    if resizer is None:
      shapes = tf.shape(inputs)
      true_shapes = tf.tile(shapes[tf.newaxis, 1:4], [shapes[0], 1])
      return self.normalize_images(inputs), true_shapes
    size = resizer.output_size
    image_spec = tf.TensorSpec(
        list(size) + [3] if size is not None else [None, None, 3], tf.float32)
    resized, true_shapes = tf.map_fn(
        lambda image: resizer(image)[::2], inputs,
        fn_output_signature=(image_spec, tf.TensorSpec([3], tf.int32)))
    return self.normalize_images(resized), true_shapes

  def provide_groundtruth(self, groundtruth_boxes_list,
                          groundtruth_classes_list,
                          groundtruth_masks_list=None,
                          groundtruth_mask_weights_list=None,
                          groundtruth_weights_list=None, **other_lists):
    """OD API ``provide_groundtruth``: keeps groundtruth for ``loss``.

    Args:
      groundtruth_boxes_list / groundtruth_classes_list /
      groundtruth_masks_list / groundtruth_mask_weights_list /
      groundtruth_weights_list: see ``groundtruth_batch_from_lists``.
      **other_lists: the OD API's other arguments. Evaluation-only ones
        (``groundtruth_is_crowd_list``, ``groundtruth_area_list``,
        ``training_step``, ...) are kept and readable with
        ``groundtruth_lists`` (no loss here reads them); keypoint, DensePose
        and tracking groundtruth raise, as these models have no such task.

    Raises:
      ValueError: an argument of a task this model does not have, or one
        the OD API does not know.
    """
    for name, value in other_lists.items():
      if name in _UNSUPPORTED and value is not None:
        raise ValueError(f'provide_groundtruth: {name} is supported by the '
                         'OD API, not by deepmac_tf (no keypoint, DensePose '
                         'or tracking task); remove it.')
      if name not in _UNSUPPORTED and name not in _UNUSED_BY_LOSS:
        raise ValueError(f'provide_groundtruth: unknown argument {name!r}.')
    batch = groundtruth_batch_from_lists(
        groundtruth_boxes_list, groundtruth_classes_list,
        groundtruth_masks_list, groundtruth_mask_weights_list,
        groundtruth_weights_list)
    lists = {'groundtruth_boxes_list': groundtruth_boxes_list,
             'groundtruth_classes_list': groundtruth_classes_list,
             'groundtruth_masks_list': groundtruth_masks_list,
             'groundtruth_mask_weights_list': groundtruth_mask_weights_list,
             'groundtruth_weights_list': groundtruth_weights_list}
    lists.update(other_lists)
    self._odapi_groundtruth = _ProvidedGroundtruth(
        batch, {k: v for k, v in lists.items() if v is not None})

  def groundtruth_has_field(self, field):
    """OD API: whether ``provide_groundtruth`` got ``field`` (e.g.
    'boxes', 'masks', 'is_crowd')."""
    provided = self._odapi_groundtruth
    return provided is not None and (
        _list_name(field) in provided.lists)

  def groundtruth_lists(self, field):
    """OD API: the list given to ``provide_groundtruth`` for ``field``."""
    if not self.groundtruth_has_field(field):
      raise RuntimeError(f'Groundtruth {field!r} was not provided.')
    return self._odapi_groundtruth.lists[_list_name(field)]

  def updates(self):
    """OD API: update ops outside the gradient step (none in TF2)."""
    return []

  # -- helpers for the mixing class ----------------------------------------

  @staticmethod
  def check_predict_inputs(preprocessed_inputs, side_inputs):
    """Raises a clear ValueError for what ``predict`` cannot take."""
    if isinstance(preprocessed_inputs, (tuple, list)):
      raise ValueError(
          'predict: got the (preprocessed_inputs, true_image_shapes) pair '
          'that preprocess returns; unpack it: `images, shapes = '
          'model.preprocess(x); model.predict(images, shapes)` (or use '
          'normalize_images(x) for images already at the input size).')
    if side_inputs:
      raise ValueError(f'predict: side inputs {sorted(side_inputs)} are '
                       'supported by the OD API, not by deepmac_tf.')

  def loss_inputs(self, groundtruth, training):
    """(groundtruth dict, training flag) for ``loss``.

    ``groundtruth`` is our explicit dict (returned as is), or the OD API's
    ``true_image_shapes`` (a [B, 3] tensor or None): then the groundtruth of
    the last ``provide_groundtruth``, with these shapes, and ``training``
    None means the mode the model was built for (``is_training``), as in
    the OD API.

    Raises:
      RuntimeError: an OD API-style call before ``provide_groundtruth``.
    """
    if isinstance(groundtruth, Mapping):
      return groundtruth, training
    provided = self._odapi_groundtruth
    if provided is None:
      raise RuntimeError(
          'loss(prediction_dict, true_image_shapes) needs groundtruth: call '
          'provide_groundtruth(...) first, or pass a groundtruth dict as '
          'loss(prediction_dict, groundtruth).')
    batch = dict(provided.batch)
    if groundtruth is not None:
      batch[InputFields.TRUE_IMAGE_SHAPE] = tf.cast(groundtruth, tf.int32)
    if training is None:
      training = bool(getattr(self, '_is_training', False))
    return batch, training

  def provided_groundtruth(self):
    """The last ``provide_groundtruth`` as an ``InputFields`` dict, or
    None."""
    provided = self._odapi_groundtruth
    return None if provided is None else provided.batch


def _list_name(field):
  if field.endswith('_list') or field.startswith('groundtruth_'):
    return field
  if field == 'masks':
    return 'groundtruth_masks_list'
  return f'groundtruth_{field}_list'


TOTAL_LOSS = 'Loss/total_loss'
REGULARIZATION_LOSS = 'Loss/regularization_loss'


def loss_dict(model, prediction_dict, groundtruth, add_regularization_loss=True,
              training=True):
  """The reported losses of one batch (training and evaluation alike).

  Args:
    model: a meta-architecture.
    prediction_dict: ``model.predict`` of the batch.
    groundtruth: ``InputFields`` dict of the batch.
    add_regularization_loss: add ``model.regularization_losses()`` as
      ``Loss/regularization_loss``.
    training: passed to ``model.loss``.

  Returns:
    {loss name: float32 scalar}: ``model.loss``'s terms, the regularization
    loss and ``Loss/total_loss`` (their sum).
  """
  losses = {name: tf.cast(value, tf.float32)
            for name, value in model.loss(prediction_dict, groundtruth,
                                          training=training).items()}
  if add_regularization_loss:
    regularization = model.regularization_losses()
    if regularization:
      losses[REGULARIZATION_LOSS] = tf.cast(tf.add_n(regularization),
                                            tf.float32)
  losses[TOTAL_LOSS] = tf.add_n(list(losses.values()))
  return losses


def classification_objects(backbone):
  """``{'feature_extractor': backbone.classification_backbone}``: the OD
  API's 'classification' restore objects (CenterNet and Faster R-CNN).

  Raises:
    ConfigError: the backbone has no classification backbone.
  """
  network = getattr(backbone, 'classification_backbone', None)
  if network is None:
    raise ConfigError(
        'train_config.fine_tune_checkpoint_type: "classification" restores a '
        'classification backbone (a tf_keras.applications network, as the OD '
        f'API saves it), which {type(backbone).__name__} does not have; use '
        '"detection" or "full".')
  return {'feature_extractor': network}
