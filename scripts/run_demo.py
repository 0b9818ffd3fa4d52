"""The main job: the whole data path on the built-in synthetic dataset.

Creates the synthetic partially supervised shapes dataset (seen classes have
masks for training, unseen classes only boxes), writes a ready-to-use pipeline
config for it, inspects the TFRecords against the config, feeds training
batches through the tf.data input pipeline (decode, augment, resize, pad,
partial-supervision mask weights) and draws them. No downloads; about a
minute on 2 CPU cores.

  python scripts/run_demo.py --output_dir demo_output
"""

import json
import os
import time

from absl import flags
import numpy as np

from deepmac_tf import cli
from deepmac_tf import config as config_lib
from deepmac_tf.config import validation

_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'demo_output',
                                  'Where everything is written.')
_NUM_TRAIN = flags.DEFINE_integer('num_train_images', 400,
                                  'Synthetic training images.')
_NUM_VAL = flags.DEFINE_integer('num_val_images', 100,
                                'Synthetic validation images.')
_SEED = flags.DEFINE_integer('seed', 0, 'Dataset seed.')
_NUM_BATCHES = flags.DEFINE_integer('num_batches', 3,
                                    'Training batches to pull and summarize.')
_TEMPLATE = flags.DEFINE_string(
    'pipeline_config_template',
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 'configs', 'center_net_deepmac_synthetic_cpu.config'),
    'Pipeline config whose PATH_TO_BE_CONFIGURED placeholders are filled '
    'with the dataset folder.')


def _step(number, title):
  print(f'\n[{number}/4] {title}', flush=True)


def _create_dataset(data_dir):
  from deepmac_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  summary = synthetic.create_dataset(data_dir, _NUM_TRAIN.value,
                                     _NUM_VAL.value, seed=_SEED.value)
  for split in summary.splits.values():
    print(f'  {split.split}: {split.num_images} images, {split.num_instances} '
          f'instances -> {split.tfrecord_pattern}')
  return summary


def _write_pipeline_config(data_dir, output_dir):
  with open(_TEMPLATE.value, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, data_dir)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=_TEMPLATE.value)
  path = config_lib.save_pipeline_config(pipeline, output_dir)
  return path


def _inspect(configs):
  from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
  reports = inspection.inspect_pipeline(configs, split='all')
  print(inspection.format_reports(list(reports.values())))
  if not all(report.ok for report in reports.values()):
    raise SystemExit('ERROR: the dataset does not match the config (above).')


def _feed_batches(configs, output_dir, data_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import preview  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data.fields import InputFields as F  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  dataset = dataset_builder.build_from_pipeline(configs, split='train')
  category_index = label_map_util.create_category_index(
      os.path.join(data_dir, 'label_map.pbtxt'))
  totals = {'instances': 0, 'supervised': 0}
  start = time.time()
  first = None
  for index, batch in enumerate(dataset.take(_NUM_BATCHES.value)):
    batch = tf.nest.map_structure(lambda t: t.numpy(), batch)
    first = first or batch
    real = batch[F.WEIGHTS] > 0
    totals['instances'] += int(real.sum())
    totals['supervised'] += int((batch[F.MASK_WEIGHTS] > 0).sum())
    if index == 0:
      for key in sorted(batch):
        print(f'  {key:40s} {str(batch[key].shape):22s} {batch[key].dtype}')
  seconds = time.time() - start
  print(f'  {_NUM_BATCHES.value} batches in {seconds:.1f} s; '
        f'{totals["supervised"]} of {totals["instances"]} instances carry '
        'mask supervision (seen classes); the rest train boxes only.')
  picture = preview.draw_batch(first, category_index)
  path = os.path.join(output_dir, 'train_batch_preview.png')
  Image.fromarray(picture).save(path)
  return path, totals


def main(argv):
  del argv
  start = time.time()
  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  data_dir = os.path.join(output_dir, 'synthetic_data')
  os.makedirs(output_dir, exist_ok=True)

  _step(1, f'Creating the synthetic dataset in {data_dir}')
  _create_dataset(data_dir)

  _step(2, 'Writing the pipeline config')
  config_path = _write_pipeline_config(data_dir, output_dir)
  configs = config_lib.get_configs_from_pipeline_file(config_path)
  print(f'  {config_path}')

  _step(3, 'Inspecting the TFRecords against the config')
  _inspect(configs)

  _step(4, 'Feeding training batches through the input pipeline')
  preview_path, totals = _feed_batches(configs, output_dir, data_dir)

  summary = {
      'output_dir': output_dir,
      'dataset_dir': data_dir,
      'pipeline_config': config_path,
      'train_batch_preview': preview_path,
      'instances_in_batches': totals['instances'],
      'mask_supervised_instances': totals['supervised'],
      'seconds': round(time.time() - start, 1),
  }
  with open(os.path.join(output_dir, 'demo_summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print('\nDone in {:.0f} s. Everything is in {}:'.format(
      summary['seconds'], output_dir))
  print(f'  dataset (images, COCO json, TFRecords, label map, class split): '
        f'{data_dir}')
  print(f'  pipeline config:        {config_path}')
  print(f'  input batch preview:    {preview_path}')
  print(f'  summary:                {os.path.join(output_dir, "demo_summary.json")}')
  print('Inspect the data yourself with:\n  python scripts/inspect_dataset.py '
        f'--pipeline_config_path {config_path}')
  return 0


if __name__ == '__main__':
  np.set_printoptions(precision=3)
  cli.run(main)
