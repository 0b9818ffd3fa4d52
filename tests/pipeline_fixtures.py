"""A tiny synthetic dataset and pipeline config for end-to-end tests.

``tiny_pipeline(tmp_path)`` renders a few 64x64 synthetic images (seen
classes 1-5 with masks, unseen 6-10 boxes only), fills
``tests/fixtures/tiny_deepmac.config`` with their paths, applies optional
text-format overrides, and returns the path of the written
``pipeline.config``. Datasets are cached per (num_train, num_val, seed) in
one pytest-session folder so the many end-to-end tests render each once.
"""

import os

from deepmac_tf import config as config_lib
from deepmac_tf.config import validation

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'fixtures')
TINY_CONFIG = os.path.join(FIXTURES, 'tiny_deepmac.config')

_DATASETS = {}


def tiny_dataset(root, num_train=8, num_val=4, seed=0):
  """Renders (once per arguments) and returns the dataset directory."""
  key = (str(root), num_train, num_val, seed)
  if key not in _DATASETS:
    from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
    data_dir = os.path.join(str(root), f'synthetic_{num_train}_{num_val}_{seed}')
    if not os.path.exists(os.path.join(data_dir, 'label_map.pbtxt')):
      synthetic.create_dataset(data_dir, num_train, num_val, seed=seed,
                               show_progress=False)
    _DATASETS[key] = data_dir
  return _DATASETS[key]


def tiny_pipeline(tmp_path, config_override='', num_train=8, num_val=4,
                  seed=0, data_root=None, template=TINY_CONFIG):
  """Writes ``tmp_path/pipeline.config`` for the tiny synthetic setting.

  Args:
    tmp_path: folder for the config (and the dataset, unless data_root).
    config_override: text-format fragment merged into the template.
    num_train / num_val / seed: synthetic dataset size and seed.
    data_root: where datasets are cached (default: tmp_path).
    template: pipeline config with PATH_TO_BE_CONFIGURED placeholders.

  Returns:
    Path of the written pipeline config.
  """
  data_dir = tiny_dataset(data_root or tmp_path, num_train, num_val, seed)
  with open(template, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, data_dir)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=template, config_override=config_override or None)
  out_dir = os.path.join(str(tmp_path), 'config')
  os.makedirs(out_dir, exist_ok=True)
  return config_lib.save_pipeline_config(pipeline, out_dir)


def export_initial_weights(root, config_override, template, num_train=1,
                           num_val=1, seed=5):
  """Exports a model's seeded initial weights and restores them into a
  fresh reference model (for "the export equals the checkpoint" tests).

  Returns:
    {'saved_model': export path, 'model': the restored reference model,
     'resizer': its image resizer}.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from deepmac_tf.export import exporter
  # pylint: enable=g-import-not-at-top
  pipeline_path = tiny_pipeline(root, config_override=config_override,
                                template=template, num_train=num_train,
                                num_val=num_val)
  with open(pipeline_path, encoding='utf-8') as f:
    pipeline = config_lib.get_pipeline_config_from_text(f.read())
  configs = config_lib.get_configs_from_pipeline_file(pipeline_path)
  tf.random.set_seed(seed)
  model, resizer = exporter.build_model_and_resizer(configs['model'])
  exporter.create_variables(model, resizer)
  model_dir = os.path.join(str(root), 'model')
  tf.train.Checkpoint(model=model).save(os.path.join(model_dir, 'ckpt'))
  paths = exporter.export_inference_graph(
      'image_tensor', pipeline, model_dir, os.path.join(str(root), 'exported'))
  reference, _ = exporter.build_model_and_resizer(configs['model'])
  exporter.create_variables(reference, resizer)
  exporter.restore_model(reference, tf.train.latest_checkpoint(model_dir))
  return {'saved_model': paths['saved_model'], 'model': reference,
          'resizer': resizer}
