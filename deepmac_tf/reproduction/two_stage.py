"""The two-stage pseudo-label recipe (Deep-MAC paper, appendix B.2) as a
reproduction variant.

Stage 1 is another variant's finished run of the same seed (a partially
supervised model, e.g. ``deepmac_hg20``). This module turns it into the
training data of stage 2, with the library's own commands' code:

1. export the stage-1 checkpoint box-prompted (``exporter_main_v2.py
   --input_type image_and_boxes_tensor``);
2. pseudo masks for the unseen classes' groundtruth boxes of the training
   json (``pseudo_label.py --classes unseen``);
3. TFRecords with every mask (``create_coco_tf_record.py --include_masks``).

Stage 2 then trains fully supervised (``allowed_masked_classes_ids``
cleared: every class trains masks, the unseen ones on pseudo masks) and is
evaluated like every run, with the stage-1 seen / unseen split (the
evaluation config keeps it). Each step's output lives in the stage-2 run
folder and is reused when the run resumes.
"""

import json
import os

from deepmac_tf import config as config_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.reproduction import run_config

EXPORT_DIR = 'stage1_export'
PSEUDO_JSON = 'instances_train_pseudo.json'
RECORD_PREFIX = os.path.join('pseudo_records', 'synthetic_train.record')
_RECORDS_DONE = os.path.join('pseudo_records', 'DONE')


def prepare(stage1_path, data_dir, path):
  """Export, pseudo labels and TFRecords from a finished stage-1 run.

  Args:
    stage1_path: the stage-1 run folder (``runner.run_dir``).
    data_dir: the experiment's synthetic dataset folder.
    path: the stage-2 run folder.

  Returns:
    (the training TFRecord pattern, the ``PseudoLabelStats`` summary or
    None when reused).

  Raises:
    ConfigError: stage 1 has not finished.
  """
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import coco_conversion
  from deepmac_tf.data import tf_example_encoder
  from deepmac_tf.export import exporter
  from deepmac_tf.inference import pseudo_labels
  # pylint: enable=g-import-not-at-top
  record_path = os.path.join(stage1_path, 'run.json')
  if not os.path.exists(record_path):
    raise ConfigError(
        f'{stage1_path}: the stage-1 run has not finished (no run.json); '
        'run its variant first (e.g. --heads deepmac_hg20,two_stage_deepmac).')
  with open(record_path, encoding='utf-8') as f:
    checkpoint = os.path.join(stage1_path, json.load(f)['checkpoint'])
  export_dir = os.path.join(path, EXPORT_DIR)
  if not os.path.isdir(os.path.join(export_dir, 'saved_model')):
    exporter.export_inference_graph(
        'image_and_boxes_tensor', config_lib.get_pipeline_config_from_file(
            os.path.join(stage1_path, 'pipeline.config')),
        checkpoint, export_dir)
  images = os.path.join(data_dir, 'images', 'train')
  pseudo_json = os.path.join(path, PSEUDO_JSON)
  summary = None
  if not os.path.exists(pseudo_json):
    stats = pseudo_labels.pseudo_label(
        export_dir, os.path.join(data_dir, 'annotations',
                                 'instances_train.json'),
        images, pseudo_json, classes=pseudo_labels.UNSEEN,
        show_progress=False)
    summary = stats.summary()
  prefix = os.path.join(path, RECORD_PREFIX)
  if not os.path.exists(os.path.join(path, _RECORDS_DONE)):
    coco_conversion.convert_coco_split(pseudo_json, images, prefix,
                                       include_masks=True,
                                       show_progress=False)
    open(os.path.join(path, _RECORDS_DONE), 'w').close()
  return tf_example_encoder.sharded_record_pattern(prefix, 1), summary


def stage_two_pipelines(pipeline, record_pattern):
  """(training, evaluation) pipelines of stage 2 from the variant's one.

  Training reads the pseudo-labelled records and trains masks of every
  class; evaluation is the variant's pipeline unchanged (its seen / unseen
  split names the classes stage 1 had masks of).
  """
  train = type(pipeline)()
  train.CopyFrom(pipeline)
  reader = train.train_input_reader.tf_record_input_reader
  del reader.input_path[:]
  reader.input_path.append(record_pattern)
  del run_config.mask_block(train).allowed_masked_classes_ids[:]
  return train, pipeline
