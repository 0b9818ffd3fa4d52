"""What a built meta-architecture can do, asked the same way everywhere
(variable creation, export, serving)."""


def is_detector_free(model):
  """Whether the model segments given boxes only (Deep-MAC detector-free)."""
  params = getattr(model, 'deepmac_params', None)
  return bool(params is not None and params.detector_free)


def has_masks(model):
  """Whether the model predicts masks: its own ``has_masks`` when it has
  one (Mask R-CNN may be boxes-only), else whether it can segment boxes."""
  own = getattr(model, 'has_masks', None)
  if own is not None:
    return bool(own)
  return hasattr(model, 'predict_masks_from_boxes')


def needs_box_classes(model):
  """Whether box-prompted masks need the class of each box (class-specific
  masks: Mask R-CNN with class_agnostic: false, MaskX R-CNN)."""
  return bool(getattr(model, 'class_specific_masks', False))
