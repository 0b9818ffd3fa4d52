"""CenterNet hourglass feature extractors (OD API `hourglass_*` types).

Like the OD API's `CenterNetHourglassFeatureExtractor`, the network is stored
under `_network`, so an OD API checkpoint's `model/_feature_extractor/_network`
restores into it object by object. hg = number of stacked hourglasses (= feature
outputs).

| type          | stem | widths per level             | blocks per level | hg |
|---------------|------|------------------------------|------------------|----|
| hourglass_104 | 128  | 256, 256, 384, 384, 384, 512 | 2, 2, 2, 2, 2, 4 | 2  |
| hourglass_10  | 32   | 64, 64                       | 1, 1             | 1  |
| hourglass_20  | 48   | 96, 96, 144                  | 1, 2, 2          | 1  |
| hourglass_32  | 48   | 96, 96, 144, 144             | 2, 2, 2, 2       | 1  |
| hourglass_52  | 64   | 128, 128, 192, 192, 192, 256 | 2, 2, 2, 2, 2, 4 | 1  |

All have a stride-4 stem; input height and width must be multiples of
4 * 2**levels: 8 (hourglass_10), 16 (hourglass_20), 32 (hourglass_32), 128
(hourglass_52, hourglass_104).
"""

import tf_keras

from deepmac_tf import errors
from deepmac_tf.backbones import base
from deepmac_tf.backbones import registry
from deepmac_tf.layers import hourglass_network

# OD API feature-extractor type -> nc of the single-stack hourglass_<depth>.
SMALL_HOURGLASS_CHANNELS = {
    'hourglass_10': (10, 32),
    'hourglass_20': (20, 48),
    'hourglass_32': (32, 48),
    'hourglass_52': (52, 64),
}


@tf_keras.utils.register_keras_serializable(package='deepmac_tf')
class CenterNetHourglassFeatureExtractor(base.CenterNetFeatureExtractor):
  """Hourglass backbone: images -> one [batch, H/4, W/4, C] map per stack."""

  def __init__(self, network, channel_means=base.DEFAULT_CHANNEL_MEANS,
               channel_stds=base.DEFAULT_CHANNEL_STDS, bgr_ordering=False,
               **kwargs):
    """Initializes the extractor.

    Args:
      network: a `HourglassNetwork` with initial_downsample=True returning a
        list, or its serialized config (from `get_config`).
      channel_means: 3 floats (empty: zeros).
      channel_stds: 3 floats (empty: ones).
      bgr_ordering: bool, reverse RGB to BGR before normalizing.
      **kwargs: keyword arguments of `tf_keras.layers.Layer`.
    """
    super().__init__(channel_means=channel_means, channel_stds=channel_stds,
                     bgr_ordering=bgr_ordering, **kwargs)
    if isinstance(network, dict):
      network = tf_keras.layers.deserialize(network)
    self._network = network

  def call(self, inputs, training=None):
    """Maps [batch, H, W, 3] preprocessed images to a list of feature maps.

    Returns:
      `num_feature_outputs` tensors [batch, H / 4, W / 4, channels].
    """
    return list(self._network(inputs, training=training))

  @property
  def num_feature_outputs(self):
    return self._network.num_feature_outputs

  @property
  def out_stride(self):
    return self._network.out_stride

  def get_config(self):
    config = super().get_config()
    config['network'] = tf_keras.layers.serialize(self._network)
    return config


def _check_no_extra_options(type_name, kwargs):
  if kwargs:
    raise errors.ArgumentError(
        f'option(s) {", ".join(sorted(kwargs))} are not supported by '
        f'{type_name!r} (supported: use_sync_batch_norm).',
        sorted(kwargs)[0])


def _build(type_name, network_fn, channel_means, channel_stds, bgr_ordering,
           use_sync_batch_norm, kwargs):
  _check_no_extra_options(type_name, kwargs)
  network = network_fn(use_sync_batch_norm=use_sync_batch_norm)
  return CenterNetHourglassFeatureExtractor(
      network, channel_means=channel_means, channel_stds=channel_stds,
      bgr_ordering=bgr_ordering, name=type_name)


@registry.register_feature_extractor('hourglass_104')
def hourglass_104(channel_means=(), channel_stds=(), bgr_ordering=False,
                  use_sync_batch_norm=False, **kwargs):
  """The two-stack Hourglass-104 extractor (2 feature outputs, stride 4)."""
  return _build('hourglass_104', hourglass_network.hourglass_104,
                channel_means, channel_stds, bgr_ordering, use_sync_batch_norm,
                kwargs)


def _register_small(type_name, depth, num_channels):
  """Registers the single-stack `type_name` = hourglass_<depth>(nc)."""

  def network_fn(use_sync_batch_norm):
    return hourglass_network.hourglass_by_depth(
        depth, num_channels, initial_downsample=True,
        use_sync_batch_norm=use_sync_batch_norm)

  def factory(channel_means=(), channel_stds=(), bgr_ordering=False,
              use_sync_batch_norm=False, **kwargs):
    return _build(type_name, network_fn, channel_means, channel_stds,
                  bgr_ordering, use_sync_batch_norm, kwargs)

  factory.__name__ = factory.__qualname__ = type_name
  factory.__doc__ = (f'Single-stack hourglass_{depth} extractor with '
                     f'{num_channels} stem channels (stride 4).')
  registry.register_feature_extractor(type_name)(factory)
  return factory


hourglass_10 = _register_small('hourglass_10', *SMALL_HOURGLASS_CHANNELS[
    'hourglass_10'])
hourglass_20 = _register_small('hourglass_20', *SMALL_HOURGLASS_CHANNELS[
    'hourglass_20'])
hourglass_32 = _register_small('hourglass_32', *SMALL_HOURGLASS_CHANNELS[
    'hourglass_32'])
hourglass_52 = _register_small('hourglass_52', *SMALL_HOURGLASS_CHANNELS[
    'hourglass_52'])
