"""What a configured model is, read once from its ``model`` block.

``ModelSpec`` answers "which classes are seen (train masks) / does this model
predict masks / is it detector-free" for everything that holds a pipeline
config: the input pipeline (mask weights), dataset inspection, evaluation
(seen / unseen metrics), training pre-flight checks and the pseudo-labelling
of an export. A built model answers the same questions for itself
(``meta_architectures.capabilities``, used where only the model is at hand,
e.g. when serving).

| architecture | masks                           | seen class ids (field)      |
|--------------|---------------------------------|-----------------------------|
| center_net   | deepmac_mask_estimation is set  | deepmac_mask_estimation.    |
|              |                                 | allowed_masked_classes_ids  |
| faster_rcnn  | number_of_stages: 3             | deepmarc_mask_head.         |
|              |                                 | allowed_masked_classes_ids  |

Empty seen ids mean every class trains masks (no seen / unseen split).
"""

import dataclasses

from deepmac_tf.errors import ConfigError

_ALLOWED = 'allowed_masked_classes_ids'
# architecture -> the sub-message holding the mask settings.
_MASK_BLOCKS = {
    'center_net': 'deepmac_mask_estimation',
    'faster_rcnn': 'deepmarc_mask_head',
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """The model's kind, read from a ``DetectionModel`` message.

  Attributes:
    architecture: 'center_net' or 'faster_rcnn' ('' when none is set).
    num_classes: ``model.<architecture>.num_classes`` (0 when unset).
    seen_class_ids: 1-based ids whose masks train the model (the config's
      ``allowed_masked_classes_ids``); empty = every class.
    predicts_masks: the model outputs instance masks.
    detector_free: Deep-MAC without detection heads (masks of given boxes).
    mask_field: dotted path of the mask settings block, e.g.
      ``model.center_net.deepmac_mask_estimation`` (None without masks).
  """
  architecture: str = ''
  num_classes: int = 0
  seen_class_ids: tuple = ()
  predicts_masks: bool = False
  detector_free: bool = False
  mask_field: str | None = None

  @property
  def seen_class_ids_field(self):
    """Dotted path of ``allowed_masked_classes_ids`` (None without masks)."""
    return f'{self.mask_field}.{_ALLOWED}' if self.mask_field else None

  @property
  def is_partially_supervised(self):
    """Some classes train no masks (a seen / unseen split exists)."""
    seen = set(self.seen_class_ids)
    return bool(seen) and (self.num_classes == 0 or not
                           set(range(1, self.num_classes + 1)) <= seen)

  def mask_weight_class_ids(self, is_training):
    """Class ids the input pipeline gives mask weight 1 (empty = all):
    the seen classes in training, every class in evaluation."""
    return self.seen_class_ids if is_training else ()


def from_model_config(model_config):
  """``ModelSpec`` of a ``DetectionModel`` message (None: an empty spec)."""
  name = model_config.WhichOneof('model') if model_config is not None else None
  if name is None:
    return ModelSpec()
  arch = getattr(model_config, name)
  block_name = _MASK_BLOCKS.get(name)
  if name == 'center_net':
    predicts_masks = arch.HasField(block_name)
  elif name == 'faster_rcnn':
    predicts_masks = arch.number_of_stages == 3
  else:
    raise ConfigError(f'model.{name}: no model spec for this architecture.')
  block = getattr(arch, block_name) if arch.HasField(block_name) else None
  seen = tuple(int(i) for i in getattr(block, _ALLOWED, ()))
  return ModelSpec(
      architecture=name,
      num_classes=int(getattr(arch, 'num_classes', 0) or 0),
      seen_class_ids=seen if predicts_masks else (),
      predicts_masks=predicts_masks,
      detector_free=bool(name == 'center_net' and block is not None and
                         block.detector_free),
      mask_field=f'model.{name}.{block_name}' if predicts_masks else None)


def from_configs(configs):
  """``ModelSpec`` of ``get_configs_from_pipeline_file``'s dict."""
  return from_model_config(configs.get('model') if configs else None)
