r"""Exports a trained Deep-MAC / CenterNet checkpoint as a SavedModel.

Same flags as the OD API's ``exporter_main_v2.py``::

  python scripts/exporter_main_v2.py \
    --input_type=image_tensor \
    --pipeline_config_path=model_dir/pipeline.config \
    --trained_checkpoint_dir=model_dir \
    --output_directory=exported \
    [--add_reframed_masks] [--config_override='model { ... }']

writes ``exported/{checkpoint/, saved_model/, pipeline.config}`` atomically
(a failure leaves the folder as it was). ``serving_default`` takes
``input_tensor`` and returns the OD API outputs as float32
(``detection_boxes``, ``detection_scores``, ``detection_classes`` 1-based,
``num_detections``, ``detection_multiclass_scores``, ``detection_masks``
box-relative [1, K, S, S]); with ``--add_reframed_masks`` also
``detection_masks_reframed``: uint8 0/1 masks [1, K, H, W] at the input
image size. ``--input_type=image_and_boxes_tensor`` takes ``input_tensor``
and ``boxes`` [1, N, 4] (normalized to the image) and returns one mask per
box. A Deep-MAC export also carries the other kind of signature
(``image_and_boxes_tensor`` or ``image_tensor``).
"""

import os

from absl import flags

from deepmac_tf import cli
from deepmac_tf import config as config_lib
from deepmac_tf import odapi_flags
from deepmac_tf.export import INPUT_TYPES
from deepmac_tf.export import atomic_dir

flags.DEFINE_enum('input_type', 'image_tensor', list(INPUT_TYPES),
                  'Type of input node of serving_default.')
flags.DEFINE_string('pipeline_config_path', None,
                    'Path to a pipeline_pb2.TrainEvalPipelineConfig config '
                    'file.')
flags.DEFINE_string('trained_checkpoint_dir', None,
                    'Training model_dir: its latest checkpoint is exported.')
flags.DEFINE_string('output_directory', None, 'Path to write outputs to.')
flags.DEFINE_string('config_override', '',
                    'pipeline_pb2.TrainEvalPipelineConfig text proto merged '
                    'over the pipeline config.')
flags.DEFINE_boolean('add_reframed_masks', False,
                     'Also output detection_masks_reframed: uint8 0/1 masks '
                     'pasted into image space [1, K, H, W].')
odapi_flags.define_side_input_flags(flags)

FLAGS = flags.FLAGS


def main(argv):
  del argv
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  for name in ('pipeline_config_path', 'trained_checkpoint_dir',
               'output_directory'):
    if not getattr(FLAGS, name):
      raise ConfigError(f'--{name}: required.')
  odapi_flags.check_side_input_flags(FLAGS)
  # Before TensorFlow loads (seconds): the config, the output folder, and
  # that the checkpoint folder exists.
  pipeline_config = config_lib.get_pipeline_config_from_file(
      FLAGS.pipeline_config_path, config_override=FLAGS.config_override or None)
  atomic_dir.prepare(FLAGS.output_directory)
  checkpoints = FLAGS.trained_checkpoint_dir
  if '://' not in checkpoints and not (
      os.path.exists(checkpoints) or os.path.exists(checkpoints + '.index')):
    raise ConfigError(f'--trained_checkpoint_dir: {checkpoints} does not '
                      'exist.')
  # TensorFlow is imported after flag parsing, so --help stays fast.
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  result = exporter.export_inference_graph(
      FLAGS.input_type, pipeline_config, FLAGS.trained_checkpoint_dir,
      FLAGS.output_directory, add_reframed_masks=FLAGS.add_reframed_masks)
  print(f'Exported checkpoint step {result["checkpoint_step"]} '
        f'({FLAGS.input_type}) to {FLAGS.output_directory}:')
  for key in ('saved_model', 'checkpoint', 'pipeline_config'):
    print(f'  {key}: {result[key]}')


if __name__ == '__main__':
  cli.run(main)
