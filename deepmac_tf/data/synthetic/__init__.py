"""Synthetic partially supervised instance segmentation dataset.

Ten shape classes: five seen ones (convex, box-filling: circle, ellipse,
square, triangle, hexagon) whose masks may train the mask head, and five
unseen ones (star, cross, ring, crescent, l_shape) whose masks must be
predicted without training masks. Objects and backgrounds share one texture
pool. See ``scripts/create_synthetic_dataset.py`` and spec/reproduction.md.

Rendering (``render_scene``) is numpy only; writing TFRecords (``writer``)
imports TensorFlow lazily.
"""

from deepmac_tf.data.synthetic.classes import CLASS_ID_BY_NAME
from deepmac_tf.data.synthetic.classes import CLASS_NAMES
from deepmac_tf.data.synthetic.classes import CLASSES
from deepmac_tf.data.synthetic.classes import class_split
from deepmac_tf.data.synthetic.classes import coco_categories
from deepmac_tf.data.synthetic.classes import NUM_CLASSES
from deepmac_tf.data.synthetic.classes import SEEN_CLASS_IDS
from deepmac_tf.data.synthetic.classes import SEEN_CLASS_NAMES
from deepmac_tf.data.synthetic.classes import ShapeClass
from deepmac_tf.data.synthetic.classes import UNSEEN_CLASS_IDS
from deepmac_tf.data.synthetic.classes import UNSEEN_CLASS_NAMES
from deepmac_tf.data.synthetic.scene import Instance
from deepmac_tf.data.synthetic.scene import render_scene
from deepmac_tf.data.synthetic.scene import Scene
from deepmac_tf.data.synthetic.scene import scene_rng
from deepmac_tf.data.synthetic.scene import SceneConfig
from deepmac_tf.data.synthetic.writer import create_dataset
from deepmac_tf.data.synthetic.writer import DatasetSummary
from deepmac_tf.data.synthetic.writer import SplitSummary
