"""MaskX R-CNN's weight transfer on Deep-MAC: class-specific masks whose
last layer is predicted from the class's center-heatmap output weights.

    w_seg(c) = T(stop_gradient(w_det(c))),   w_det(c) = [K[:, c]; b[c]]

K [F, C] and b [C] are the kernel and bias of the last 1x1 conv of the
object-center head (``center_net_heads.make_prediction_net``: the last
layer of the head's ``Sequential``; F = the head's last hidden width), i.e.
the weights that score class c at every pixel: the CenterNet counterpart of
Mask R-CNN's box-head classifier column (``input: CLS``). CenterNet's box
heads (scale, offset) are class-agnostic, so there is no ``BOX`` input.
Each backbone stage has its own center head and its own embeddings; the
mask of stage s uses stage s's center-head weights (T and the mask head are
shared by the stages, as the Deep-MAC head is), inference the last stage.

The mask head (``MaskHeadNetwork(num_outputs=0)``) returns its last
features [n, S, S, D]; each instance's logits are only its class's channel
(``ops.class_channel.per_instance_projection``), and T runs on those n
rows: no [n, C, S, S] tensor exists. Which class: the groundtruth class in
training, the detected class at inference, the caller's class for
box-prompted masks. The mask loss weighs only instances with a mask weight
> 0 (``allowed_masked_classes_ids``), so only those classes train T through
it; T maps every class's heatmap weights, seen or not, at inference. (A
box-consistency loss weighs every box, and so trains T on every class
with a box, as it trains the head.)
"""

import functools

import tensorflow as tf

from deepmac_tf.mask_heads import weight_transfer as transfer_lib
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import mask_rcnn_class_masks
from deepmac_tf.meta_architectures import mask_rcnn_params
from deepmac_tf.ops import class_channel


def heatmap_output_conv(center_head):
  """The last 1x1 conv (kernel [1, 1, F, C], bias [C]) of a center head."""
  return center_head.layers[-1]


def heatmap_class_embeddings(center_head, classes):
  """w_det of each instance's class from a (built) center head.

  Args:
    center_head: one stage's object-center ``Sequential``.
    classes: int [n] 0-based classes.

  Returns:
    [n, F + 1] float32: the class's kernel column, then its bias.
  """
  conv = heatmap_output_conv(center_head)
  kernel = tf.reshape(conv.kernel, [-1, conv.kernel.shape[-1]])  # [F, C]
  classes = tf.cast(classes, tf.int32)
  columns = tf.transpose(tf.gather(kernel, classes, axis=1))
  biases = tf.gather(conv.bias, classes)[:, None]
  return tf.cast(tf.concat([columns, biases], axis=-1), tf.float32)


def embedding_dim(object_center_params):
  """D_in of w_det(c) (and of the RANDOM control vectors): F + 1."""
  filters = (object_center_params.center_head_num_filters or
             center_net_params.DEFAULT_HEAD_NUM_FILTERS)
  return int(filters[-1]) + 1


def mask_head_input_channels(deepmac_params):
  """Channels of the mask head's input: [y, x], pixel embedding, instance
  embedding (``mask_head_inputs`` and ``MaskHeadNetwork``)."""
  p = deepmac_params
  return (p.pixel_embedding_dim + (2 if p.use_xy else 0) +
          (p.dim if p.use_instance_embedding else 0))


def build_transfer_parts(deepmac_params, num_classes, object_center_params,
                         mask_net):
  """T and the RANDOM input's fixed class vectors.

  Args:
    deepmac_params: ``DeepMACParams`` with ``weight_transfer``.
    num_classes: C.
    object_center_params: ``ObjectCenterParams`` (the center head's width).
    mask_net: the ``MaskHeadNetwork(num_outputs=0)``; its feature width D
      is the width of the projection T predicts (builds its ``_net``).

  Returns:
    (``WeightTransferFunction``, [C, F + 1] non-trainable ``tf.Variable``
    for ``input: RANDOM`` else None).
  """
  t = deepmac_params.weight_transfer
  transfer = transfer_lib.WeightTransferFunction(
      mask_net.feature_channels(mask_head_input_channels(deepmac_params)),
      num_layers=t.num_layers, hidden_dim=t.hidden_dim,
      activation=t.activation, name='weight_transfer')
  random_embeddings = None
  if t.input == mask_rcnn_params.TRANSFER_RANDOM:
    random_embeddings = mask_rcnn_class_masks.random_class_embeddings(
        num_classes, embedding_dim(object_center_params))
  return transfer, random_embeddings


def class_embeddings_fn(transfer_input, center_head, random_embeddings=None):
  """int [n] 0-based classes -> [n, D_in] w_det for a transfer input."""
  if transfer_input == mask_rcnn_params.TRANSFER_RANDOM:
    return functools.partial(class_channel.gather_class_rows,
                             random_embeddings)
  return functools.partial(heatmap_class_embeddings, center_head)


def class_channel_head(mask_net, transfer, embeddings_fn, stop_gradient,
                       training=None):
  """``(instance rows [n, D'], pixel crops [n, S, S, E], classes [n]) ->
  [n, S, S]`` logits of each row's (0-based) class channel, with the
  projection T predicts from ``embeddings_fn(classes)``."""

  def head(instance_rows, pixel_rows, class_rows):
    features = mask_net(instance_rows, pixel_rows, training=training,
                        project=False)
    weights, biases = mask_rcnn_class_masks.transferred_projection(
        transfer, embeddings_fn, stop_gradient, class_rows)
    return class_channel.per_instance_projection(features, weights, biases)

  return head
