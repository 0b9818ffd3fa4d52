"""What scripts/run_demo.py and scripts/train_demo_detector.py share.

The demo's dataset (``ensure_dataset``: rendered once per size and seed) and
its shipped detector: where it lives, how it is written and read.

``scripts/run_demo.py`` does not train its CenterNet detector from scratch:
a few CPU minutes reach box AP ~20 at best (WORKSPACE_NOTES.md, issue 12
item 4). It starts from a detector the project trains once with
``scripts/train_demo_detector.py`` (``configs/center_net_synthetic_demo_
detector.config``: the demo's backbone and box heads, no mask head) and ships
in this package::

  deepmac_tf/reproduction/demo_detector/
    ckpt-0.index, ckpt-0.data-00000-of-00001   tf.train.Checkpoint(model=...)
    provenance.json     command, steps, seed, data, measured box AP, CPU time

The checkpoint holds the model's variables only (no optimizer, no step), the
layout of ``exporter``'s ``checkpoint/ckpt-0``; the demo restores it with
``fine_tune_checkpoint_type: "full"``, which fills every variable whose name
and shape match (backbone and box heads) and leaves the mask head fresh.

The detector trains on the ``train`` split of the synthetic dataset of the
same seed as the demo; the demo evaluates on the ``val`` split, whose images
are drawn from their own generators (``scene.scene_rng(seed, 'val', i)``),
so the detector never saw them.
"""

import hashlib
import json
import os

from deepmac_tf.errors import ConfigError

ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'demo_detector')
CHECKPOINT_PREFIX = os.path.join(ASSET_DIR, 'ckpt-0')
PROVENANCE_PATH = os.path.join(ASSET_DIR, 'provenance.json')
# Replaced by the detector checkpoint's prefix in the demo's template.
PLACEHOLDER = 'DEMO_DETECTOR_CHECKPOINT'
CHECKPOINT_NAME = 'ckpt-0'
PROVENANCE_NAME = 'provenance.json'


DATASET_KEY_FILE = 'demo_dataset.json'


def ensure_dataset(data_dir, num_train_images, num_val_images, seed):
  """Renders the synthetic dataset into ``data_dir`` unless it is there.

  A dataset rendered by this function with the same sizes and seed is
  reused (``demo_dataset.json`` records them).

  Returns:
    True when it was rendered, False when reused.
  """
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  key = {'num_train_images': num_train_images,
         'num_val_images': num_val_images, 'seed': seed}
  key_path = os.path.join(data_dir, DATASET_KEY_FILE)
  if os.path.exists(key_path):
    with open(key_path, encoding='utf-8') as f:
      if json.load(f) == key:
        print(f'  reusing {data_dir} (same size and seed)')
        return False
  summary = synthetic.create_dataset(data_dir, num_train_images,
                                     num_val_images, seed=seed)
  for split in summary.splits.values():
    print(f'  {split.split}: {split.num_images} images, {split.num_instances} '
          f'instances -> {split.tfrecord_pattern}')
  with open(key_path, 'w', encoding='utf-8') as f:
    json.dump(key, f)
  return True


def val_split_fingerprint(data_dir):
  """sha256 (16 hex digits) of a synthetic dataset's val annotations.

  The shipped detector's provenance records it: a change to the default
  synthetic data (shapes, sizes, placement) changes it, and the demo's
  detector must then be retrained (tests/test_demo_detector.py).
  """
  path = os.path.join(data_dir, 'annotations', 'instances_val.json')
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


def _exists(path):
  # TensorFlow only when a path is checked (scripts' --help stays fast).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile.exists(path)


def shipped_checkpoint():
  """The shipped checkpoint's prefix, or None when it is not there."""
  if _exists(CHECKPOINT_PREFIX + '.index'):
    return CHECKPOINT_PREFIX
  return None


def read_provenance(directory=ASSET_DIR):
  """The ``provenance.json`` of a detector directory ({} when absent)."""
  path = os.path.join(directory, PROVENANCE_NAME)
  if not os.path.exists(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def fill_template(text, checkpoint_prefix):
  """Puts ``checkpoint_prefix`` where the template says PLACEHOLDER.

  Raises:
    ConfigError: the template needs a detector and none is given or the
      given one does not exist.
  """
  if PLACEHOLDER not in text:
    return text
  if not checkpoint_prefix:
    raise ConfigError(
        f'the pipeline config template starts from a trained detector '
        f'({PLACEHOLDER}) but none is given: pass --detector_checkpoint, or '
        f'train one with scripts/train_demo_detector.py.')
  if not _exists(checkpoint_prefix + '.index'):
    raise ConfigError(
        f'--detector_checkpoint: {checkpoint_prefix!r} is not a checkpoint '
        f'(no {checkpoint_prefix}.index); train one with '
        'scripts/train_demo_detector.py.')
  return text.replace(PLACEHOLDER, checkpoint_prefix)


def write_model_checkpoint(model_config, training_checkpoint, directory,
                           provenance):
  """Writes the model variables of a training checkpoint, and provenance.

  Args:
    model_config: the ``model`` message the checkpoint was trained with.
    training_checkpoint: a ``ckpt-N`` prefix written by training.
    directory: output folder (created); ``ckpt-0.*`` and
      ``provenance.json`` in it are replaced.
    provenance: dict written as ``provenance.json``.

  Returns:
    The written checkpoint's prefix.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  model, resizer = exporter.build_model_and_resizer(model_config)
  exporter.create_variables(model, resizer)
  exporter.restore_model(model, training_checkpoint)
  os.makedirs(directory, exist_ok=True)
  prefix = os.path.join(directory, CHECKPOINT_NAME)
  for name in tf.io.gfile.glob(prefix + '.*'):
    tf.io.gfile.remove(name)
  written = tf.train.Checkpoint(model=model).write(prefix)
  with open(os.path.join(directory, PROVENANCE_NAME), 'w',
            encoding='utf-8') as f:
    json.dump(provenance, f, indent=2)
    f.write('\n')
  return written
