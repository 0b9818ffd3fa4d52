"""Second stage of single-level Faster R-CNN backbones: the backbone's tail
runs on each ROI crop, then class and box predictions (the OD API's Keras
``mask_rcnn_box_predictor`` on a ResNet conv5 / Inception-ResNet-v2 tail).

    roi crops [B, R, S, S, C] -> max pool (kernel, stride; 'valid')
    -> box classifier (backbone tail) -> spatial mean -> dropout
    -> Dense(K + 1) class logits, Dense(4 (K + 1)) box encodings
       (Dense(4) tiled to every class with share_box_across_classes)

The outputs have the layout of Model Garden's ``DetectionHead`` (class 0 =
background), so losses and post-processing are shared with the FPN path.
"""

import tensorflow as tf
import tf_keras


class BoxClassifierHead(tf_keras.layers.Layer):
  """[B, R, S, S, C] ROI crops -> ([B, R, K + 1], [B, R, 4 (K + 1)])."""

  def __init__(self, box_classifier, num_classes, maxpool_kernel=1,
               maxpool_stride=1, share_box_across_classes=False,
               dropout_keep_probability=1.0, hyperparams=None, **kwargs):
    """Args:
      box_classifier: Keras model [N, s, s, C] -> [N, s', s', C'].
      num_classes: K object classes.
      maxpool_kernel / maxpool_stride: max pooling of the crops first (1 /
        1: none).
      share_box_across_classes: one box encoding for all classes.
      dropout_keep_probability: < 1 adds dropout before the predictions.
      hyperparams: ``LayerHyperparams`` of the two Dense layers (the OD
        API's ``fc_hyperparams``: initializer) or None.
    """
    super().__init__(**kwargs)
    self.box_classifier = box_classifier
    self._num_classes = int(num_classes)
    self._share_box = bool(share_box_across_classes)
    self._pool = None
    if maxpool_kernel > 1 or maxpool_stride > 1:
      self._pool = tf_keras.layers.MaxPooling2D(
          maxpool_kernel, strides=maxpool_stride, padding='valid',
          name='crop_pool')
    self._dropout = None
    if dropout_keep_probability < 1.0:
      self._dropout = tf_keras.layers.Dropout(1.0 - dropout_keep_probability)
    def dense_kwargs():  # a fresh initializer per layer
      return hyperparams.conv_kwargs() if hyperparams is not None else {}
    self.class_predictor = tf_keras.layers.Dense(
        self._num_classes + 1, name='class_predictor', **dense_kwargs())
    self.box_predictor = tf_keras.layers.Dense(
        4 if self._share_box else 4 * (self._num_classes + 1),
        name='box_predictor', **dense_kwargs())

  def call(self, roi_features, training=None):
    shape = tf.shape(roi_features)
    batch, rois = shape[0], shape[1]
    crops = tf.reshape(roi_features, tf.concat([[-1], shape[2:]], 0))
    crops.set_shape([None] + roi_features.shape[2:].as_list())
    if self._pool is not None:
      crops = self._pool(crops)
    features = self.box_classifier(crops, training=training)
    features = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
    if self._dropout is not None:
      features = self._dropout(features, training=training)
    class_outputs = self.class_predictor(features)
    box_outputs = self.box_predictor(features)
    if self._share_box:
      box_outputs = tf.tile(box_outputs, [1, self._num_classes + 1])
    return (tf.reshape(class_outputs, [batch, rois, self._num_classes + 1]),
            tf.reshape(box_outputs, [batch, rois, 4 * (self._num_classes + 1)]))
