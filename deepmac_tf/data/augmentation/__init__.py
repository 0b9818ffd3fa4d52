"""Data augmentation: the OD API preprocessing steps deepmac_tf supports.

Every step works on one image's tensor dict (``fields.InputFields`` keys,
image [height, width, 3] float32 in [0, 255]) and keeps image, boxes, masks
and the other per-instance fields consistent.
"""

from deepmac_tf.data.augmentation.builder import build_augmentation_fn
from deepmac_tf.data.augmentation.color import random_adjust_brightness
from deepmac_tf.data.augmentation.color import random_adjust_contrast
from deepmac_tf.data.augmentation.color import random_adjust_hue
from deepmac_tf.data.augmentation.color import random_adjust_saturation
from deepmac_tf.data.augmentation.crops import (
    random_scale_crop_and_pad_to_square)
from deepmac_tf.data.augmentation.crops import random_square_crop_by_scale
from deepmac_tf.data.augmentation.geometric import jitter_boxes
from deepmac_tf.data.augmentation.geometric import random_absolute_pad_image
from deepmac_tf.data.augmentation.geometric import random_horizontal_flip
from deepmac_tf.data.augmentation.geometric import random_image_scale
from deepmac_tf.data.augmentation.geometric import random_jitter_boxes
from deepmac_tf.data.augmentation.geometric import random_rotation90
from deepmac_tf.data.augmentation.geometric import random_vertical_flip
from deepmac_tf.data.augmentation.instances import PER_INSTANCE_KEYS

__all__ = [
    'PER_INSTANCE_KEYS',
    'build_augmentation_fn',
    'jitter_boxes',
    'random_absolute_pad_image',
    'random_adjust_brightness',
    'random_adjust_contrast',
    'random_adjust_hue',
    'random_adjust_saturation',
    'random_horizontal_flip',
    'random_image_scale',
    'random_jitter_boxes',
    'random_rotation90',
    'random_scale_crop_and_pad_to_square',
    'random_square_crop_by_scale',
    'random_vertical_flip',
]
