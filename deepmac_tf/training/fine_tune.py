"""Restores ``train_config.fine_tune_checkpoint`` into a new model.

``fine_tune_checkpoint_type`` picks the objects (OD API semantics):
'detection' -> ``model.restore_from_objects('detection')`` (the feature
extractor, saved as ``model/_feature_extractor``); 'full' -> the whole model;
'classification' -> the backbone's classification network, as the OD API
saves it (``feature_extractor/layer_with_weights-<i>/...``, e.g. an ImageNet
tf_keras.applications ResNet / MobileNetV2): every variable of it must be in
the checkpoint with its shape, else one ConfigError. Only variables whose
checkpoint key exists with the same shape are restored; what was restored,
what the checkpoint lacks and what mismatched is logged (counts and a few
names). Not applied when a run resumes from its own checkpoint.
"""

import collections

from absl import logging
import tensorflow as tf

from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.errors import ConfigError

FIELD = 'train_config.fine_tune_checkpoint'
TYPE_FIELD = 'train_config.fine_tune_checkpoint_type'
_VARIABLE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
VARIABLE_SUFFIX = _VARIABLE_SUFFIX  # Public: checkpoints.py reads keys too.
_EXAMPLES = 5

FineTuneReport = collections.namedtuple(
    'FineTuneReport', ['restored', 'missing', 'shape_mismatch', 'unused'])


def _escape(name):
  # tf.train.Checkpoint's escaping of object names in keys.
  return name.replace('.', '..').replace('/', '.S')


def variables_by_checkpoint_key(root):
  """{checkpoint key: variable} for every variable reachable from ``root``.

  Breadth-first, first path wins, as TF names objects in a checkpoint.
  """
  view = tf.train.TrackableView(root)
  keys = {}
  seen = {id(root)}
  queue = collections.deque([(root, '')])
  while queue:
    obj, path = queue.popleft()
    for name, child in view.children(obj).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = f'{path}/{_escape(name)}' if path else _escape(name)
      if isinstance(child, tf.Variable):
        keys[child_path + _VARIABLE_SUFFIX] = child
      else:
        queue.append((child, child_path))
  return keys


def resolve_checkpoint_path(path):
  """A checkpoint prefix for ``path`` (a prefix or a directory)."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest:
      return latest
    raise ConfigError(f'{FIELD}: directory {path!r} holds no checkpoint.')
  if not tf.io.gfile.exists(path + '.index'):
    raise ConfigError(f'{FIELD}: {path!r} is not a checkpoint (no '
                      f'{path}.index). Give the prefix, e.g. .../ckpt-51.')
  return path


def starting_checkpoint(model_dir, train_config):
  """The checkpoint a training run starts from: ``model_dir``'s latest
  (resume), else ``fine_tune_checkpoint`` (resolved), else None."""
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    return latest
  if train_config.fine_tune_checkpoint:
    return resolve_checkpoint_path(train_config.fine_tune_checkpoint)
  return None


def _fine_tune_objects(model, checkpoint_type):
  if checkpoint_type not in ('detection', 'classification', 'full'):
    raise ConfigError(f'{TYPE_FIELD}: expected "detection", "classification" '
                      f'or "full", got {checkpoint_type!r}.')
  return model.restore_from_objects(checkpoint_type)


def checkpoint_type_of(train_config):
  """The configured type; OD API default when empty."""
  if train_config.fine_tune_checkpoint_type:
    return train_config.fine_tune_checkpoint_type
  return ('detection' if train_config.from_detection_checkpoint
          else 'classification')


def _examples(names):
  names = sorted(names)
  more = f', ... (+{len(names) - _EXAMPLES})' if len(names) > _EXAMPLES else ''
  return ', '.join(n.replace(_VARIABLE_SUFFIX, '') for n in
                   names[:_EXAMPLES]) + more


def restore_fine_tune_checkpoint(model, train_config):
  """Restores what matches of the fine-tune checkpoint into ``model``.

  The model's variables must exist (``model_variables.build_model_variables``).

  Returns:
    A ``FineTuneReport`` of key lists, or None when no checkpoint is set.

  Raises:
    ConfigError: missing checkpoint, unknown type, or nothing matched.
  """
  if not train_config.fine_tune_checkpoint:
    return None
  checkpoint_type = checkpoint_type_of(train_config)
  path = resolve_checkpoint_path(train_config.fine_tune_checkpoint)
  objects = _fine_tune_objects(model, checkpoint_type)
  ours = variables_by_checkpoint_key(tf.train.Checkpoint(**objects))
  saved_shapes = dict(tf.train.list_variables(path))
  roots = tuple(f'{_escape(name)}/' for name in objects)
  reader = tf.train.load_checkpoint(path)
  restored, missing, mismatched = [], [], []
  for key, variable in ours.items():
    if key not in saved_shapes:
      missing.append(key)
    elif list(saved_shapes[key]) != variable.shape.as_list():
      mismatched.append(f'{key} {saved_shapes[key]} vs '
                        f'{variable.shape.as_list()}')
    else:
      restored.append(key)
  if checkpoint_type == 'classification' and (missing or mismatched):
    raise ConfigError(
        f'{FIELD}: {path!r} is not a classification checkpoint of this '
        f'backbone ({len(missing)} of its {len(ours)} variables missing, '
        f'{len(mismatched)} with another shape, e.g. '
        f'{_examples(missing + mismatched)}).')
  for key in restored:
    ours[key].assign(reader.get_tensor(key))
  ignored = set(checkpoint_layout.log_ignored_odapi_objects(path))
  unused = [key for key in saved_shapes
            if key.startswith(roots) and key.endswith(_VARIABLE_SUFFIX)
            and key not in ours and key not in ignored]
  if not restored:
    raise ConfigError(
        f'{FIELD}: no variable of {path!r} matches the model for '
        f'{TYPE_FIELD}={checkpoint_type!r} (model expects e.g. '
        f'{_examples(ours)}; the checkpoint has e.g. '
        f'{_examples(k for k in saved_shapes if k.endswith(_VARIABLE_SUFFIX))}'
        ').')
  logging.info('Fine-tune checkpoint %s (type %s): restored %d of %d '
               'variables.', path, checkpoint_type, len(restored), len(ours))
  if missing:
    logging.warning('Fine-tune: %d variable(s) not in the checkpoint (kept '
                    'at their initial values): %s', len(missing),
                    _examples(missing))
  if mismatched:
    logging.warning('Fine-tune: %d variable(s) with a different shape (not '
                    'restored): %s', len(mismatched), _examples(mismatched))
  if unused:
    logging.info('Fine-tune: %d checkpoint variable(s) under %s not used: %s',
                 len(unused), ', '.join(objects), _examples(unused))
  return FineTuneReport(restored, missing, mismatched, unused)
