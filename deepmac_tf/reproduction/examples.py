"""Masks that trained models predict for the same unseen-class instances.

``choose_examples`` picks fixed validation instances of the default unseen
classes (a few per class, in annotation order), so that every head and seed
of an experiment is drawn on the same objects. ``predict_example_masks``
restores a run's checkpoint and asks the model for masks at those
groundtruth boxes (``predict_masks_from_boxes``: the box-prompted path that
evaluation and export use).
"""

import collections
import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf.data import image_resizer
from deepmac_tf.data import synthetic
from deepmac_tf.meta_architectures import capabilities

Example = collections.namedtuple(
    'Example', ['image_path', 'box', 'class_id', 'class_name', 'mask'])


def choose_examples(data_dir, per_class=2, min_area_fraction=0.03,
                    class_ids=synthetic.UNSEEN_CLASS_IDS):
  """Fixed validation instances, ``per_class`` of each class in order.

  Args:
    data_dir: synthetic dataset folder (``annotations/instances_val.json``).
    per_class: instances per class.
    min_area_fraction: skip instances smaller than this part of the image.
    class_ids: classes to draw (default: the unseen ones).

  Returns:
    A list of ``Example``: image path, box [4] normalized (ymin, xmin, ymax,
    xmax), class id and name, groundtruth mask [H, W] bool.
  """
  with open(os.path.join(data_dir, 'annotations', 'instances_val.json'),
            encoding='utf-8') as f:
    coco = json.load(f)
  images = {image['id']: image for image in coco['images']}
  names = {c['id']: c['name'] for c in coco['categories']}
  chosen = {class_id: [] for class_id in class_ids}
  for annotation in coco['annotations']:
    picks = chosen.get(annotation['category_id'])
    image = images[annotation['image_id']]
    height, width = image['height'], image['width']
    if picks is None or len(picks) >= per_class or (
        annotation['area'] < min_area_fraction * height * width):
      continue
    x, y, w, h = annotation['bbox']
    picks.append(Example(
        image_path=os.path.join(data_dir, 'images', 'val', image['file_name']),
        box=np.array([y / height, x / width, (y + h) / height,
                      (x + w) / width], np.float32),
        class_id=annotation['category_id'],
        class_name=names[annotation['category_id']],
        mask=mask_utils.decode(annotation['segmentation']).astype(bool)))
  return [example for class_id in class_ids for example in chosen[class_id]]


def _restored_model(configs, checkpoint_path):
  model = model_builder.build(configs['model'], is_training=False)
  model_variables.build_model_variables(
      model, *model_variables.input_size_from_configs(configs))
  tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial()
  return model


def predict_example_masks(configs, checkpoint_path, examples):
  """Box-relative mask probabilities the checkpoint predicts at each box.

  Args:
    configs: the run's config dict.
    checkpoint_path: a ``ckpt-<step>`` prefix.
    examples: from ``choose_examples``.

  Returns:
    float32 [len(examples), S, S] (S = the model's mask size).
  """
  model = _restored_model(configs, checkpoint_path)
  arch, model_message = config_lib.get_model_message(configs['model'])
  resize = image_resizer.build(model_message.image_resizer,
                               f'model.{arch}.image_resizer')
  class_specific = capabilities.needs_box_classes(model)
  masks = []
  for example in examples:
    image = np.asarray(Image.open(example.image_path).convert('RGB'))
    resized, _, true_shape = resize(tf.constant(image))
    predictions = model.predict(model.normalize_images(resized[None]),
                                training=False)
    kwargs = ({'classes': tf.constant([[example.class_id - 1]], tf.int32)}
              if class_specific else {})
    output = model.predict_masks_from_boxes(
        predictions, tf.constant(example.box[None, None]), true_shape[None],
        **kwargs)
    masks.append(output['detection_masks'][0, 0].numpy())
  return np.stack(masks).astype(np.float32)
