"""The one registry idiom: parts built by a name from the config.

Used for mask heads (``mask_heads.registry``, by ``network_type``), CenterNet
feature extractors and Deep-MARC backbones (``backbones.registry``, by
``feature_extractor.type``). A part registers a factory under its names;
builders look the name up. An unknown name raises an ``ArgumentError``
listing the known names (and the closest one), which the builder maps to its
own config field.
"""

import difflib
import importlib

from deepmac_tf.errors import ArgumentError


class Registry:
  """Names -> factories (with optional metadata) for one kind of part."""

  def __init__(self, kind, argument, builtin_modules=()):
    """Args:
      kind: what is registered, for messages ('mask head').
      argument: the argument that carries the name ('network_type'), named
        by the errors (builders map it to their config field).
      builtin_modules: modules that register on import; imported on first
        lookup, so the names exist whichever module was imported first.
    """
    self._kind = kind
    self._argument = argument
    self._builtin_modules = tuple(builtin_modules)
    self._loaded = not self._builtin_modules
    self._entries = {}  # name -> (factory, metadata, listed)
    self._families = []  # (label, matcher, factory, metadata)

  def register(self, name, factory=None, listed=True, **metadata):
    """Registers ``factory`` under ``name``; without a factory, a decorator.

    Args:
      name: the config value selecting the part.
      factory: callable building it.
      listed: False for aliases (accepted, not listed in messages).
      **metadata: facts about the part (e.g. ``mask_size_divisor=32``).

    Raises:
      ValueError: another factory already has this name.
    """
    def add(fn):
      existing = self._entries.get(name)
      if existing is not None and existing[0] is not fn:
        raise ValueError(f'{self._kind} {name!r} is already registered (by '
                         f'{existing[0].__module__}.'
                         f'{existing[0].__qualname__}).')
      self._entries[name] = (fn, dict(metadata), listed)
      return fn
    return add if factory is None else add(factory)

  def unregister(self, name):
    """Removes ``name`` (tests registering temporary parts)."""
    self._entries.pop(name, None)

  def register_family(self, label, matcher, factory, **metadata):
    """Registers every name for which ``matcher(name)`` is true (e.g.
    'cond_inst<D>'); ``label`` stands for them in the list of names."""
    self._families.append((label, matcher, factory, dict(metadata)))

  def _load(self):
    if not self._loaded:
      self._loaded = True
      for module in self._builtin_modules:
        importlib.import_module(module)

  def names(self):
    """Listed names in registration order, then family labels."""
    self._load()
    return tuple(name for name, (_, _, listed) in self._entries.items()
                 if listed) + tuple(label for label, *_ in self._families)

  def __contains__(self, name):
    return self._lookup(name) is not None

  def _lookup(self, name):
    self._load()
    if not isinstance(name, str):
      return None
    entry = self._entries.get(name)
    if entry is not None:
      return entry[0], entry[1]
    for _, matcher, factory, metadata in self._families:
      if matcher(name):
        return factory, metadata
    return None

  def get(self, name):
    """(factory, metadata) of ``name``.

    Raises:
      ArgumentError: an unknown name, listing the known ones.
    """
    found = self._lookup(name)
    if found is not None:
      return found
    listed = [n for n, (_, _, shown) in self._entries.items() if shown]
    close = difflib.get_close_matches(str(name), listed, n=1, cutoff=0.6)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    raise ArgumentError(f'unknown {self._kind} {name!r}.{hint} Valid names: '
                        f'{", ".join(self.names())}.', self._argument)

  def metadata(self, name):
    return self.get(name)[1]

  def build(self, name, *args, **kwargs):
    """``factory(*args, **kwargs)`` of ``name``."""
    return self.get(name)[0](*args, **kwargs)
