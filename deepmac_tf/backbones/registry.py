"""Registry of CenterNet feature extractors by the OD API's type names.

A module registers a factory with `@register_feature_extractor('name')`; the
factory takes `channel_means`, `channel_stds`, `bgr_ordering` and extractor
specific keyword arguments and returns a `CenterNetFeatureExtractor`. Builders
call `build_feature_extractor(config.type, ...)`.

The modules listed in `_BUILTIN_MODULES` are imported on first use, so their
names are always registered whichever module imported the registry first.
Register a new family by adding its module there.
"""

import importlib

from deepmac_tf import errors

_TYPE_FIELD = 'model.center_net.feature_extractor.type'

# Imported lazily (they import this module for the decorator).
_BUILTIN_MODULES = (
    'deepmac_tf.backbones.hourglass',
    'deepmac_tf.backbones.resnet_fpn',
)

_REGISTRY = {}
_builtins_loaded = False


def register_feature_extractor(name):
  """Decorator registering a feature-extractor factory under `name`.

  Args:
    name: str, the `feature_extractor.type` value selecting it.

  Returns:
    The decorator; it returns the factory unchanged.

  Raises:
    ValueError: if another factory already has this name.
  """
  def decorator(factory):
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not factory:
      raise ValueError(f'Feature extractor {name!r} is already registered '
                       f'(by {existing.__module__}.{existing.__qualname__}).')
    _REGISTRY[name] = factory
    return factory
  return decorator


def _load_builtins():
  global _builtins_loaded
  if not _builtins_loaded:
    for module in _BUILTIN_MODULES:
      importlib.import_module(module)
    _builtins_loaded = True


def feature_extractor_names():
  """Returns the sorted registered `feature_extractor.type` names."""
  _load_builtins()
  return sorted(_REGISTRY)


def build_feature_extractor(type_name, channel_means=(), channel_stds=(),
                            bgr_ordering=False, **kwargs):
  """Builds the feature extractor registered as `type_name`.

  Args:
    type_name: str, e.g. 'hourglass_104'.
    channel_means: 0 or 3 floats (empty: zeros).
    channel_stds: 0 or 3 floats (empty: ones).
    bgr_ordering: bool, reverse RGB to BGR before normalizing.
    **kwargs: extractor-specific options (e.g. use_sync_batch_norm).

  Returns:
    A `CenterNetFeatureExtractor`.

  Raises:
    ConfigError: on an unknown type (listing the known ones) or bad options.
  """
  _load_builtins()
  factory = _REGISTRY.get(type_name)
  if factory is None:
    raise errors.ConfigError(
        f'{_TYPE_FIELD}: unknown feature extractor {type_name!r}; known: '
        f'{", ".join(sorted(_REGISTRY))}.')
  return factory(channel_means=tuple(channel_means),
                 channel_stds=tuple(channel_stds),
                 bgr_ordering=bool(bgr_ordering), **kwargs)
