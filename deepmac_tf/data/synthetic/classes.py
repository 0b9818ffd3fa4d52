"""Classes of the synthetic shapes dataset and their seen / unseen split.

Seen classes are convex and fill most of their box; unseen classes are not
(they have holes or concavities), so "fill the box" is the wrong prior for
them. This is what lets deep mask heads beat shallow ones on unseen classes at
toy scale (see spec/reproduction.md). Ids are 1-based, as in COCO and the OD
API label maps; seen classes come first so that ``allowed_masked_classes_ids``
is simply ``1..5``.
"""

import collections

ShapeClass = collections.namedtuple('ShapeClass', ['id', 'name', 'seen'])

SEEN_SUPERCATEGORY = 'seen'
UNSEEN_SUPERCATEGORY = 'unseen'

CLASSES = (
    ShapeClass(1, 'circle', True),
    ShapeClass(2, 'ellipse', True),
    ShapeClass(3, 'square', True),
    ShapeClass(4, 'triangle', True),
    ShapeClass(5, 'hexagon', True),
    ShapeClass(6, 'star', False),
    ShapeClass(7, 'cross', False),
    ShapeClass(8, 'ring', False),
    ShapeClass(9, 'crescent', False),
    ShapeClass(10, 'l_shape', False),
)

NUM_CLASSES = len(CLASSES)
CLASS_NAMES = tuple(c.name for c in CLASSES)
SEEN_CLASS_IDS = tuple(c.id for c in CLASSES if c.seen)
UNSEEN_CLASS_IDS = tuple(c.id for c in CLASSES if not c.seen)
SEEN_CLASS_NAMES = tuple(c.name for c in CLASSES if c.seen)
UNSEEN_CLASS_NAMES = tuple(c.name for c in CLASSES if not c.seen)
CLASS_ID_BY_NAME = {c.name: c.id for c in CLASSES}


def supercategory(shape_class):
  """Returns 'seen' or 'unseen' for a ``ShapeClass``."""
  return SEEN_SUPERCATEGORY if shape_class.seen else UNSEEN_SUPERCATEGORY


def coco_categories():
  """COCO ``categories`` entries: id, name, supercategory ('seen'/'unseen')."""
  return [{'id': c.id, 'name': c.name, 'supercategory': supercategory(c)}
          for c in CLASSES]


def label_map_categories():
  """Categories for ``label_map_util.write_label_map`` (id, name, display)."""
  return [{'id': c.id, 'name': c.name,
           'display_name': c.name} for c in CLASSES]


def class_split():
  """The seen / unseen split, in JSON form and as pipeline-config text.

  Returns:
    A dict with ``seen`` / ``unseen`` (each ``ids`` and ``names``),
    ``allowed_masked_classes_ids`` (the seen ids), ``super_categories``
    (``{'seen': 'circle,...', 'unseen': 'star,...'}``) and
    ``pipeline_config_text`` (snippets to paste into a pipeline config).
  """
  super_categories = {
      SEEN_SUPERCATEGORY: ','.join(SEEN_CLASS_NAMES),
      UNSEEN_SUPERCATEGORY: ','.join(UNSEEN_CLASS_NAMES),
  }
  return {
      'seen': {'ids': list(SEEN_CLASS_IDS), 'names': list(SEEN_CLASS_NAMES)},
      'unseen': {'ids': list(UNSEEN_CLASS_IDS),
                 'names': list(UNSEEN_CLASS_NAMES)},
      'allowed_masked_classes_ids': list(SEEN_CLASS_IDS),
      'super_categories': super_categories,
      'pipeline_config_text': {
          'allowed_masked_classes_ids': allowed_masked_classes_text(),
          'super_categories': super_categories_text(),
      },
  }


def allowed_masked_classes_text():
  """``allowed_masked_classes_ids: 1`` ... lines (deepmac_mask_estimation)."""
  return '\n'.join(f'allowed_masked_classes_ids: {i}' for i in SEEN_CLASS_IDS)


def super_categories_text():
  """``super_categories { key: ... value: ... }`` entries (eval_config)."""
  blocks = []
  for key, names in ((SEEN_SUPERCATEGORY, SEEN_CLASS_NAMES),
                     (UNSEEN_SUPERCATEGORY, UNSEEN_CLASS_NAMES)):
    blocks.append('super_categories {\n'
                  f'  key: "{key}"\n'
                  f'  value: "{",".join(names)}"\n'
                  '}')
  return '\n'.join(blocks)


def pipeline_config_snippet():
  """A commented text block to paste into a ``pipeline.config``."""
  return (
      '# Synthetic shapes: seen (masks used in training) = '
      f'{", ".join(SEEN_CLASS_NAMES)}\n'
      f'#                  unseen = {", ".join(UNSEEN_CLASS_NAMES)}\n'
      '\n'
      '# In model { center_net { deepmac_mask_estimation { ... } } }:\n'
      f'{allowed_masked_classes_text()}\n'
      '\n'
      '# In eval_config { ... }:\n'
      f'{super_categories_text()}\n')
