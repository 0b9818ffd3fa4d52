"""Per-box mask logits of the Mask R-CNN mask branch: class-agnostic,
class-specific (learned per-class projection), MaskX R-CNN weight transfer
(projection predicted from the class's box-head weights), each optionally
fused with the class-agnostic MLP branch.

Class-specific heads compute only the channel of each box's class
(``ops.class_channel``): the head's last features [n, M, M, D] are projected
with the weights of that class, never to all C channels.

MaskX ("Learning to Segment Every Thing", Hu et al.): w_det(c) is read from
Model Garden's ``DetectionHead``, whose last layers are a classifier Dense
(kernel [F, K + 1], column c = class c, 0 = background) and a class-specific
box regressor Dense (kernel [F, 4 (K + 1)], columns 4c..4c+3 = class c).
"""

import functools

import tensorflow as tf

from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.ops import class_channel

RANDOM_EMBEDDING_SEED = 20180101


def _classifier_kernel(detection_head):
  return detection_head._classifier.kernel  # pylint: disable=protected-access


def _box_regressor_kernel(detection_head):
  return detection_head._box_regressor.kernel  # pylint: disable=protected-access


def embedding_dim(transfer_input, box_head_fc_dims):
  """D_in of w_det(c) for a transfer input (random: as cls+box)."""
  return {params_lib.TRANSFER_CLS: 1,
          params_lib.TRANSFER_BOX: 4}.get(transfer_input, 5) * box_head_fc_dims


def box_head_class_embeddings(detection_head, transfer_input, classes):
  """w_det of each box's class, gathered from the box head's last layers.

  Args:
    detection_head: a built Model Garden ``DetectionHead`` (class-specific
      box regression).
    transfer_input: TRANSFER_CLS, TRANSFER_BOX or TRANSFER_CLS_AND_BOX.
    classes: int [n] 1-based classes.

  Returns:
    [n, D_in] float32: the classifier column (F), the 4 box-regression
    columns (4F, coordinate-major), or both concatenated (5F).
  """
  classes = tf.cast(classes, tf.int32)
  parts = []
  if transfer_input in (params_lib.TRANSFER_CLS,
                        params_lib.TRANSFER_CLS_AND_BOX):
    kernel = _classifier_kernel(detection_head)  # [F, K + 1]
    parts.append(tf.transpose(tf.gather(kernel, classes, axis=1)))
  if transfer_input in (params_lib.TRANSFER_BOX,
                        params_lib.TRANSFER_CLS_AND_BOX):
    kernel = _box_regressor_kernel(detection_head)  # [F, 4 (K + 1)]
    fc_dim = kernel.shape[0]
    per_class = tf.reshape(kernel, [fc_dim, -1, 4])
    boxes = tf.gather(per_class, classes, axis=1)  # [F, n, 4]
    parts.append(tf.reshape(tf.transpose(boxes, [1, 2, 0]),
                            [-1, 4 * fc_dim]))
  return tf.cast(tf.concat(parts, axis=-1), tf.float32)


def transferred_projection(weight_transfer, embeddings_fn, stop_gradient,
                           classes):
  """MaskX projection of each box's class: T(stop_gradient(w_det(c))).

  Args:
    weight_transfer: ``WeightTransferFunction``.
    embeddings_fn: int [n] 1-based classes -> [n, D_in] w_det.
    stop_gradient: cut the gradient from T into w_det.
    classes: int [n] 1-based.

  Returns:
    ([n, D] weights, [n] biases).
  """
  embeddings = embeddings_fn(classes)
  if stop_gradient:
    embeddings = tf.stop_gradient(embeddings)
  return weight_transfer(embeddings)


def learned_projection(mask_head, classes):
  """The head's own per-class 1x1 projection, rows of each box's class."""
  weights, biases = mask_head.class_projection()
  index = tf.maximum(tf.cast(classes, tf.int32) - 1, 0)
  return (class_channel.gather_class_rows(weights, index),
          class_channel.gather_class_rows(biases, index))


def mask_row_logits(mask_head, crops, classes, training=None,
                    projection_fn=None, mlp_branch=None):
  """Mask logits of n boxes from their ROI crops.

  Args:
    mask_head: ``UpsamplingMaskHead``.
    crops: [n, S, S, C] mask ROI crops.
    classes: int [n] 1-based class of each box.
    training: Keras training flag.
    projection_fn: None for a class-agnostic head; else int [n] 1-based
      classes -> ([n, D] weights, [n] biases) of each box's class channel
      (``learned_projection`` / ``transferred_projection``).
    mlp_branch: optional ``MlpMaskBranch``, its logits added.

  Returns:
    [n, M, M] float32 logits.
  """
  if projection_fn is None:
    logits = mask_head(crops, training=training)[..., 0]
  else:
    features = mask_head(crops, training=training, project=False)
    weights, biases = projection_fn(classes)
    logits = class_channel.per_instance_projection(features, weights, biases)
  if mlp_branch is not None:
    logits = logits + mlp_branch(crops, training=training)
  return logits


def row_logits_fn(mask_head, params, detection_head=None,
                  weight_transfer=None, random_embeddings=None,
                  mlp_branch=None, training=None):
  """``(crops [n, S, S, C], classes [n]) -> [n, M, M]`` for a mask branch.

  Args:
    mask_head: ``UpsamplingMaskHead``.
    params: ``MaskHeadParams``.
    detection_head: the box head (MaskX with a box-head input).
    weight_transfer: ``WeightTransferFunction`` (MaskX) or None.
    random_embeddings: [K, D_in] variable (MaskX ``random`` input).
    mlp_branch: ``MlpMaskBranch`` or None.
    training: Keras training flag.
  """
  projection_fn = None
  if params.weight_transfer is not None:
    transfer = params.weight_transfer
    if transfer.input == params_lib.TRANSFER_RANDOM:
      embeddings_fn = lambda c: class_channel.gather_class_rows(
          random_embeddings, tf.maximum(tf.cast(c, tf.int32) - 1, 0))
    else:
      embeddings_fn = functools.partial(box_head_class_embeddings,
                                        detection_head, transfer.input)
    projection_fn = functools.partial(
        transferred_projection, weight_transfer, embeddings_fn,
        transfer.stop_gradient)
  elif not params.class_agnostic:
    projection_fn = functools.partial(learned_projection, mask_head)
  return functools.partial(_call_rows, mask_head, projection_fn, mlp_branch,
                           training)


def head_row_logits_fn(mask_head, training=None):
  """``row_logits_fn`` of the head alone (its own class channel if any)."""
  projection_fn = (None if mask_head.num_outputs == 1 else
                   functools.partial(learned_projection, mask_head))
  return functools.partial(_call_rows, mask_head, projection_fn, None,
                           training)


def _call_rows(mask_head, projection_fn, mlp_branch, training, crops,
               classes):
  return mask_row_logits(mask_head, crops, classes, training=training,
                         projection_fn=projection_fn, mlp_branch=mlp_branch)


def random_class_embeddings(num_classes, dim):
  """MaskX's ``random`` input: a fixed N(0, 1/dim) vector per class, as a
  non-trainable variable (so checkpoints and exports carry it).

  Returns:
    [num_classes, dim] float32 ``tf.Variable`` (row = 0-based class).
  """
  initial = tf.random.stateless_normal(
      [num_classes, dim], [RANDOM_EMBEDDING_SEED, 0], stddev=dim ** -0.5)
  return tf.Variable(initial, trainable=False, name='random_class_embeddings')


def build_maskx_parts(params, name_prefix=''):
  """T, the MLP branch and the random class embeddings a mask branch needs.

  Args:
    params: ``MaskRCNNParams`` with a mask head.
    name_prefix: prefix of the layer names.

  Returns:
    (``WeightTransferFunction`` or None, ``MlpMaskBranch`` or None, [K, D_in]
    non-trainable ``tf.Variable`` of fixed Gaussian class embeddings (the
    ``random`` input) or None).
  """
  # Imported here: mask_heads must not be a cost of box-only models.
  from deepmac_tf.mask_heads import mlp_mask_branch  # pylint: disable=g-import-not-at-top
  from deepmac_tf.mask_heads import weight_transfer as transfer_lib  # pylint: disable=g-import-not-at-top
  m = params.mask_head
  transfer = mlp = random_embeddings = None
  if m.weight_transfer is not None:
    t = m.weight_transfer
    transfer = transfer_lib.WeightTransferFunction(
        m.num_init_channels, num_layers=t.num_layers,
        hidden_dim=t.hidden_dim, activation=t.activation,
        name=f'{name_prefix}weight_transfer')
    if t.input == params_lib.TRANSFER_RANDOM:
      random_embeddings = random_class_embeddings(
          params.num_classes, embedding_dim(t.input, params.box_head_fc_dims))
  if m.mlp_mask_branch is not None:
    mlp = mlp_mask_branch.MlpMaskBranch(
        m.mask_size, num_fc_layers=m.mlp_mask_branch.num_fc_layers,
        fc_dim=m.mlp_mask_branch.fc_dim, name=f'{name_prefix}mlp_mask_branch')
  return transfer, mlp, random_embeddings


def mask_head_num_outputs(params):
  """Channels of the head's own projection: 1 class-agnostic, K
  class-specific, 0 MaskX (T predicts the projection)."""
  m = params.mask_head
  if m.class_agnostic:
    return 1
  return 0 if m.weight_transfer is not None else params.num_classes
