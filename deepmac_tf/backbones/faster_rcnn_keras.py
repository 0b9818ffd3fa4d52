"""Single-level Faster R-CNN backbones (the OD API's non-FPN Keras feature
extractors): a first stage that maps images to stride-16 features and a box
classifier that runs the rest of the network on each ROI crop.

``faster_rcnn_resnet{50,101,152}_keras``: ResNet v1 with the layer graph and
layer names of ``tf_keras.applications.ResNet{50,101,152}`` (stride in the
first 1x1 convolution of a block, biases on every convolution, batch-norm
epsilon 1.001e-5), split as the OD API splits it: conv1..conv4 = first
stage, [B, H/16, W/16, 1024]; conv5 (stride 2) = box classifier,
[N, 7, 7, 1024] crops -> [N, 4, 4, 2048].

``faster_rcnn_inception_resnet_v2_keras``: the layer graph of
``tf_keras.applications.InceptionResNetV2`` with 'same' padding up to the
first stage's end (so the features are aligned to stride 16, as the OD
API's ``align_feature_maps``): stem .. mixed_6a + 20 block17 = first stage,
[B, H/16, W/16, 1088]; mixed_7a + 10 block8 + conv_7b = box classifier,
[N, 17, 17, 1088] crops -> [N, 8, 8, 1536] (mixed_7a keeps 'valid').

Written here (no weights are downloaded) so the config's hyperparameters
reach every layer: activation, batch-norm settings, kernel initializer
(``layers.layer_hyperparams.LayerHyperparams``). Registered in
``backbones.registry.DEEPMARC_BACKBONES`` with ``single_level=True``.
"""

import tensorflow as tf
import tf_keras

from deepmac_tf.layers.layer_hyperparams import LayerHyperparams

FEATURE_LEVEL = 4  # stride 16
RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# Keras applications' batch-norm settings, the defaults when the config
# does not override the base network's hyperparameters.
RESNET_DEFAULTS = LayerHyperparams(batch_norm_epsilon=1.001e-5,
                                   batch_norm_momentum=0.99)
INCEPTION_RESNET_DEFAULTS = LayerHyperparams(
    batch_norm_epsilon=1e-3, batch_norm_momentum=0.99,
    batch_norm_scale=False)


class _ResNetV1Graph:
  """Adds ResNet v1 layers (tf_keras.applications names) to a graph."""

  def __init__(self, hyperparams):
    self._hp = hyperparams

  def _conv(self, x, filters, kernel, name, strides=1, padding='valid'):
    return tf_keras.layers.Conv2D(filters, kernel, strides=strides,
                                  padding=padding, name=name,
                                  **self._hp.conv_kwargs())(x)

  def _bn(self, x, name):
    return self._hp.batch_norm_layer(name)(x)

  def stem(self, x):
    x = tf_keras.layers.ZeroPadding2D(3, name='conv1_pad')(x)
    x = self._conv(x, 64, 7, 'conv1_conv', strides=2)
    x = self._bn(x, 'conv1_bn')
    x = self._hp.activation_layer('conv1_relu')(x)
    x = tf_keras.layers.ZeroPadding2D(1, name='pool1_pad')(x)
    return tf_keras.layers.MaxPooling2D(3, strides=2, name='pool1_pool')(x)

  def block(self, x, filters, stride, projection, name):
    if projection:
      shortcut = self._conv(x, 4 * filters, 1, f'{name}_0_conv',
                            strides=stride)
      shortcut = self._bn(shortcut, f'{name}_0_bn')
    else:
      shortcut = x
    x = self._conv(x, filters, 1, f'{name}_1_conv', strides=stride)
    x = self._bn(x, f'{name}_1_bn')
    x = self._hp.activation_layer(f'{name}_1_relu')(x)
    x = self._conv(x, filters, 3, f'{name}_2_conv', padding='same')
    x = self._bn(x, f'{name}_2_bn')
    x = self._hp.activation_layer(f'{name}_2_relu')(x)
    x = self._conv(x, 4 * filters, 1, f'{name}_3_conv')
    x = self._bn(x, f'{name}_3_bn')
    x = tf_keras.layers.Add(name=f'{name}_add')([shortcut, x])
    return self._hp.activation_layer(f'{name}_out')(x)

  def stage(self, x, index, filters, num_blocks, stride):
    x = self.block(x, filters, stride, True, f'conv{index}_block1')
    for i in range(2, num_blocks + 1):
      x = self.block(x, filters, 1, False, f'conv{index}_block{i}')
    return x


def resnet_v1(depth, hyperparams=None):
  """(first_stage, box_classifier) Keras models of ResNet-``depth`` v1.

  first_stage: [B, H, W, 3] -> [B, ceil(H/16), ceil(W/16), 1024].
  box_classifier: [N, h, w, 1024] -> [N, ceil(h/2), ceil(w/2), 2048].
  """
  if depth not in RESNET_BLOCKS:
    raise ValueError(f'ResNet v1 depth must be one of '
                     f'{sorted(RESNET_BLOCKS)}, got {depth}.')
  graph = _ResNetV1Graph(hyperparams or RESNET_DEFAULTS)
  blocks = RESNET_BLOCKS[depth]
  images = tf_keras.Input([None, None, 3], name='images')
  x = graph.stem(images)
  x = graph.stage(x, 2, 64, blocks[0], 1)
  x = graph.stage(x, 3, 128, blocks[1], 2)
  x = graph.stage(x, 4, 256, blocks[2], 2)
  first_stage = tf_keras.Model(images, x, name=f'resnet{depth}_v1_conv1_4')
  crops = tf_keras.Input([None, None, 1024], name='crops')
  box_features = graph.stage(crops, 5, 512, blocks[3], 2)
  box_classifier = tf_keras.Model(crops, box_features,
                                  name=f'resnet{depth}_v1_conv5')
  return first_stage, box_classifier


class _InceptionResNetV2Graph:
  """Adds Inception-ResNet-v2 layers to a graph (numbered names)."""

  def __init__(self, hyperparams):
    self._hp = hyperparams
    self._count = 0

  def conv_bn(self, x, filters, kernel, strides=1, padding='same',
              activation=True):
    self._count += 1
    name = f'conv2d_{self._count}'
    x = tf_keras.layers.Conv2D(filters, kernel, strides=strides,
                               padding=padding, use_bias=self._hp.force_use_bias,
                               name=name, **self._hp.conv_kwargs())(x)
    x = self._hp.batch_norm_layer(f'{name}_bn')(x)
    if activation:
      x = self._hp.activation_layer(f'{name}_ac')(x)
    return x

  def residual(self, x, branches, scale, name, activation=True):
    mixed = tf_keras.layers.Concatenate(name=f'{name}_mixed')(branches)
    up = tf_keras.layers.Conv2D(x.shape[-1], 1, use_bias=True,
                                name=f'{name}_conv',
                                **self._hp.conv_kwargs())(mixed)
    up = tf_keras.layers.Rescaling(scale, name=f'{name}_scale')(up)
    x = tf_keras.layers.Add(name=name)([x, up])
    if activation:
      x = self._hp.activation_layer(f'{name}_ac')(x)
    return x

  def block35(self, x, name):
    b0 = self.conv_bn(x, 32, 1)
    b1 = self.conv_bn(self.conv_bn(x, 32, 1), 32, 3)
    b2 = self.conv_bn(self.conv_bn(self.conv_bn(x, 32, 1), 48, 3), 64, 3)
    return self.residual(x, [b0, b1, b2], 0.17, name)

  def block17(self, x, name):
    b0 = self.conv_bn(x, 192, 1)
    b1 = self.conv_bn(self.conv_bn(self.conv_bn(x, 128, 1), 160, (1, 7)),
                      192, (7, 1))
    return self.residual(x, [b0, b1], 0.1, name)

  def block8(self, x, name, scale=0.2, activation=True):
    b0 = self.conv_bn(x, 192, 1)
    b1 = self.conv_bn(self.conv_bn(self.conv_bn(x, 192, 1), 224, (1, 3)),
                      256, (3, 1))
    return self.residual(x, [b0, b1], scale, name, activation)

  def first_stage(self, images):
    x = self.conv_bn(images, 32, 3, strides=2)
    x = self.conv_bn(x, 32, 3)
    x = self.conv_bn(x, 64, 3)
    x = tf_keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                     name='pool_1')(x)
    x = self.conv_bn(x, 80, 1)
    x = self.conv_bn(x, 192, 3)
    x = tf_keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                     name='pool_2')(x)
    pool = tf_keras.layers.AveragePooling2D(3, strides=1, padding='same',
                                            name='mixed_5b_pool')(x)
    x = tf_keras.layers.Concatenate(name='mixed_5b')([
        self.conv_bn(x, 96, 1),
        self.conv_bn(self.conv_bn(x, 48, 1), 64, 5),
        self.conv_bn(self.conv_bn(self.conv_bn(x, 64, 1), 96, 3), 96, 3),
        self.conv_bn(pool, 64, 1)])
    for i in range(1, 11):
      x = self.block35(x, f'block35_{i}')
    x = tf_keras.layers.Concatenate(name='mixed_6a')([
        self.conv_bn(x, 384, 3, strides=2),
        self.conv_bn(self.conv_bn(self.conv_bn(x, 256, 1), 256, 3), 384, 3,
                     strides=2),
        tf_keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                     name='mixed_6a_pool')(x)])
    for i in range(1, 21):
      x = self.block17(x, f'block17_{i}')
    return x

  def box_classifier(self, crops):
    x = tf_keras.layers.Concatenate(name='mixed_7a')([
        self.conv_bn(self.conv_bn(crops, 256, 1), 384, 3, strides=2,
                     padding='valid'),
        self.conv_bn(self.conv_bn(crops, 256, 1), 288, 3, strides=2,
                     padding='valid'),
        self.conv_bn(self.conv_bn(self.conv_bn(crops, 256, 1), 288, 3), 320,
                     3, strides=2, padding='valid'),
        tf_keras.layers.MaxPooling2D(3, strides=2, padding='valid',
                                     name='mixed_7a_pool')(crops)])
    for i in range(1, 10):
      x = self.block8(x, f'block8_{i}')
    x = self.block8(x, 'block8_10', scale=1.0, activation=False)
    return self.conv_bn(x, 1536, 1)


def inception_resnet_v2(hyperparams=None):
  """(first_stage, box_classifier) Keras models of Inception-ResNet-v2.

  first_stage: [B, H, W, 3] -> [B, ceil(H/16), ceil(W/16), 1088].
  box_classifier: [N, h, w, 1088] -> [N, (h-1)//2, (w-1)//2, 1536].
  """
  graph = _InceptionResNetV2Graph(hyperparams or INCEPTION_RESNET_DEFAULTS)
  images = tf_keras.Input([None, None, 3], name='images')
  first_stage = tf_keras.Model(images, graph.first_stage(images),
                               name='inception_resnet_v2_to_block17')
  crops = tf_keras.Input([None, None, 1088], name='crops')
  box_classifier = tf_keras.Model(crops, graph.box_classifier(crops),
                                  name='inception_resnet_v2_from_mixed_7a')
  return first_stage, box_classifier


class SingleLevelBackbone(tf_keras.layers.Layer):
  """A first stage giving {'4': [B, H/16, W/16, C]} (the dict Deep-MARC's
  heads read) and its box classifier (``box_classifier``)."""

  def __init__(self, first_stage, box_classifier, **kwargs):
    super().__init__(**kwargs)
    self.first_stage = first_stage
    self.box_classifier = box_classifier

  def call(self, images, training=None):
    return {str(FEATURE_LEVEL): self.first_stage(images, training=training)}

  @property
  def classification_backbone(self):
    """The OD API's 'classification' restore target: its
    ``classification_backbone`` is the whole tf_keras.applications network,
    whose checkpoint names the layers with weights ``layer_with_weights-<i>``
    in the network's layer order. The first stage and box classifier hold
    those layers in that order (conv1..conv4, then conv5 / mixed_7a..), so
    this object lists them under the same names."""
    weighted = [layer for net in (self.first_stage, self.box_classifier)
                for layer in net.layers if layer.weights]
    return tf.train.Checkpoint(**{f'layer_with_weights-{i}': layer
                                  for i, layer in enumerate(weighted)})
