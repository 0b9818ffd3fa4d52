"""Tests of the small stride-1 / stride-2 conv feature extractors (the CPU
reproduction backbone) and of the embedding heads' filter count."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import errors
from deepmac_tf.backbones import registry
from deepmac_tf.backbones import small_conv
from deepmac_tf.builders import deepmac_builder
from deepmac_tf.protos import center_net_pb2


@pytest.mark.parametrize('type_name,stride', [('small_conv_stride1', 1),
                                              ('small_conv_stride1_b1', 1),
                                              ('small_conv_stride2', 2)])
def test_output_shape_and_stride(type_name, stride):
  assert type_name in registry.feature_extractor_names()
  extractor = registry.build_feature_extractor(
      type_name, channel_means=(127.5,) * 3, channel_stds=(64.0,) * 3)
  images = extractor.preprocess(tf.fill([2, 16, 24, 3], 200.0))
  features = extractor(images, training=True)
  assert extractor.out_stride == stride
  assert extractor.num_feature_outputs == len(features) == 1
  channels = small_conv.SMALL_CONV_TYPES[type_name][1]
  assert features[0].shape == (2, 16 // stride, 24 // stride, channels)
  assert np.all(np.isfinite(features[0].numpy()))
  # One serialized config rebuilds the same architecture.
  rebuilt = small_conv.SmallConvFeatureExtractor.from_config(
      extractor.get_config())
  assert rebuilt(images)[0].shape == features[0].shape


def test_bad_arguments_are_named():
  with pytest.raises(errors.ArgumentError, match='use_depthwise'):
    registry.build_feature_extractor('small_conv_stride2', use_depthwise=True)
  with pytest.raises(errors.ArgumentError) as info:
    small_conv.SmallConvFeatureExtractor(stride=4)
  assert info.value.argument == 'stride'


def test_embedding_head_num_filters_reaches_the_heads():
  proto = center_net_pb2.CenterNet.DeepMACMaskEstimation()
  assert proto.embedding_head_num_filters == 256  # the OD API's width
  proto.classification_loss.weighted_sigmoid.SetInParent()
  proto.embedding_head_num_filters = 8
  params = deepmac_builder.deepmac_params_from_proto(proto)
  assert params.embedding_head_num_filters == 8
  proto.embedding_head_num_filters = 0
  with pytest.raises(errors.ConfigError,
                     match='embedding_head_num_filters: must be positive'):
    deepmac_builder.deepmac_params_from_proto(proto)
