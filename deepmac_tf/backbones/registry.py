"""Registries of backbones by the config's ``feature_extractor.type``.

``FEATURE_EXTRACTORS``: CenterNet feature extractors by the OD API's type
names. A module registers a factory with
``@register_feature_extractor('name')``; the factory takes
``channel_means``, ``channel_stds``, ``bgr_ordering`` and extractor specific
keyword arguments and returns a ``CenterNetFeatureExtractor``.

``DEEPMARC_BACKBONES``: Deep-MARC (Mask R-CNN) backbones + decoders
(``deepmarc_backbones.py``), factories of ``(backbone, decoder or None)``.

Both are ``deepmac_tf.registry.Registry`` objects (the idiom of the mask-head
registry too); their builtin modules are imported on first lookup, so every
name is registered whichever module was imported first. Unknown names raise
``ArgumentError('type')``; the builders name their config field.
"""

from deepmac_tf import registry as registry_lib

FEATURE_EXTRACTORS = registry_lib.Registry(
    'feature extractor', 'type',
    builtin_modules=('deepmac_tf.backbones.hourglass',
                     'deepmac_tf.backbones.mobilenet_v2_fpn',
                     'deepmac_tf.backbones.resnet_fpn',
                     'deepmac_tf.backbones.resnet_v2',
                     'deepmac_tf.backbones.small_conv'))
DEEPMARC_BACKBONES = registry_lib.Registry(
    'Deep-MARC backbone', 'type',
    builtin_modules=('deepmac_tf.backbones.deepmarc_backbones',))


def register_feature_extractor(name, options=()):
  """Decorator registering a feature-extractor factory under `name`.

  ``options``: the ``CenterNetFeatureExtractor`` fields (beyond type and
  the channel statistics) the factory takes as keyword arguments, e.g.
  ``('depth_multiplier', 'use_separable_conv')``; the builder passes those
  and refuses the others when set (``extractor_options``).

  Raises:
    ValueError: if another factory already has this name.
  """
  return FEATURE_EXTRACTORS.register(name, options=tuple(options))


def extractor_options(type_name):
  """The config fields the feature extractor ``type_name`` takes."""
  return FEATURE_EXTRACTORS.metadata(type_name).get('options', ())


def feature_extractor_names():
  """Returns the sorted registered `feature_extractor.type` names."""
  return sorted(FEATURE_EXTRACTORS.names())


def build_feature_extractor(type_name, channel_means=(), channel_stds=(),
                            bgr_ordering=False, **kwargs):
  """Builds the CenterNet feature extractor registered as `type_name`.

  Args:
    type_name: str, e.g. 'hourglass_104'.
    channel_means: 0 or 3 floats (empty: zeros).
    channel_stds: 0 or 3 floats (empty: ones).
    bgr_ordering: bool, reverse RGB to BGR before normalizing.
    **kwargs: extractor-specific options (e.g. use_sync_batch_norm).

  Returns:
    A `CenterNetFeatureExtractor`.

  Raises:
    ArgumentError: an unknown type (listing the known ones) or bad options.
  """
  return FEATURE_EXTRACTORS.build(
      type_name, channel_means=tuple(channel_means),
      channel_stds=tuple(channel_stds), bgr_ordering=bool(bgr_ordering),
      **kwargs)
