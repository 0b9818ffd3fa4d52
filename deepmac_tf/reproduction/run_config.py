"""The pipeline config of one reproduction run.

A run's config is its variant's template from ``configs/`` with the data
paths filled in, text-format overrides merged (experiment, variant, user, in
that order) and four settings applied in Python, because text merging
appends to repeated fields and cannot replace them:

* the number of training steps, and the cosine schedule's length with it;
* the model input size (the image resizer), when the experiment sets one;
* a random seen / unseen class split (``seen_classes`` experiment);
* nothing else: every other choice is in the template or an override.
"""

import numpy as np

from deepmac_tf import config as config_lib
from deepmac_tf.config import validation
from deepmac_tf.data import synthetic
from deepmac_tf.errors import ConfigError

_MASK_BLOCKS = {'center_net': 'deepmac_mask_estimation',
                'faster_rcnn': 'deepmarc_mask_head'}


def random_seen_split(num_seen, seed):
  """``num_seen`` class ids (sorted) drawn for ``seed``: the same for every
  variant of the run, different per seed."""
  if not 0 < num_seen < synthetic.NUM_CLASSES:
    raise ConfigError(f'num_seen_classes = {num_seen}: expected 1..'
                      f'{synthetic.NUM_CLASSES - 1}.')
  rng = np.random.default_rng([int(num_seen), int(seed), 12])
  ids = rng.choice(np.arange(1, synthetic.NUM_CLASSES + 1), size=num_seen,
                   replace=False)
  return sorted(int(i) for i in ids)


def _set_steps(train_config, steps):
  train_config.num_steps = steps
  optimizer = getattr(train_config.optimizer,
                      train_config.optimizer.WhichOneof('optimizer'))
  rate = optimizer.learning_rate
  if rate.WhichOneof('learning_rate') == 'cosine_decay_learning_rate':
    cosine = rate.cosine_decay_learning_rate
    cosine.total_steps = steps
    cosine.warmup_steps = min(cosine.warmup_steps, steps // 10)
    cosine.hold_base_rate_steps = min(cosine.hold_base_rate_steps,
                                      steps - cosine.warmup_steps)


def _set_input_size(model_message, size, arch):
  resizer = model_message.image_resizer
  kind = resizer.WhichOneof('image_resizer_oneof')
  if kind == 'keep_aspect_ratio_resizer':
    resizer.keep_aspect_ratio_resizer.min_dimension = size
    resizer.keep_aspect_ratio_resizer.max_dimension = size
  elif kind == 'fixed_shape_resizer':
    resizer.fixed_shape_resizer.height = size
    resizer.fixed_shape_resizer.width = size
  else:
    raise ConfigError(f'model.{arch}.image_resizer: {kind} has no size to set '
                      f'to {size}.')


def _set_seen_classes(pipeline, model_message, arch, seen_ids):
  block_name = _MASK_BLOCKS.get(arch)
  if block_name is None or not model_message.HasField(block_name):
    raise ConfigError(f'model.{arch}: no mask block ({block_name}) to set '
                      'allowed_masked_classes_ids in.')
  block = getattr(model_message, block_name)
  del block.allowed_masked_classes_ids[:]
  block.allowed_masked_classes_ids.extend(seen_ids)
  names = {c.id: c.name for c in synthetic.CLASSES}
  groups = {'seen': [names[i] for i in seen_ids],
            'unseen': [names[i] for i in sorted(names) if i not in seen_ids]}
  super_categories = pipeline.eval_config.super_categories
  for key in list(super_categories):
    del super_categories[key]
  for key, members in groups.items():
    super_categories[key] = ','.join(members)


def build_pipeline(template_path, data_dir, overrides, steps, input_size=None,
                   seen_class_ids=None):
  """The run's ``TrainEvalPipelineConfig``.

  Args:
    template_path: a config from ``configs/`` with PATH_TO_BE_CONFIGURED.
    data_dir: the synthetic dataset folder.
    overrides: text-format fragments merged in order (empty ones skipped).
    steps: training steps (also the cosine schedule's total_steps).
    input_size: square model input size, or None to keep the template's.
    seen_class_ids: replace ``allowed_masked_classes_ids`` (and the eval
      ``seen`` / ``unseen`` super-categories), or None to keep them.

  Returns:
    The pipeline config proto.

  Raises:
    ConfigError: a bad template or override (naming file, line and field).
  """
  with open(template_path, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, data_dir)
  override = '\n'.join(o for o in overrides if o)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=template_path, config_override=override or None)
  arch, model_message = config_lib.get_model_message(pipeline.model)
  _set_steps(pipeline.train_config, int(steps))
  if input_size:
    _set_input_size(model_message, int(input_size), arch)
  if seen_class_ids is not None:
    _set_seen_classes(pipeline, model_message, arch, list(seen_class_ids))
  return pipeline


def mask_block(pipeline):
  """The model's mask block (``deepmac_mask_estimation`` /
  ``deepmarc_mask_head``) of a pipeline, or ConfigError without one."""
  arch, model_message = config_lib.get_model_message(pipeline.model)
  name = _MASK_BLOCKS.get(arch)
  if name is None or not model_message.HasField(name):
    raise ConfigError(f'model.{arch}: no mask block ({name}).')
  return getattr(model_message, name)


def seen_class_ids(pipeline):
  """The run's seen classes (``allowed_masked_classes_ids``)."""
  arch, model_message = config_lib.get_model_message(pipeline.model)
  block = getattr(model_message, _MASK_BLOCKS.get(arch, ''), None)
  ids = list(block.allowed_masked_classes_ids) if block is not None else []
  return [int(i) for i in ids] or [c.id for c in synthetic.CLASSES]
