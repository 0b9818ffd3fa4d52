r"""Pseudo masks for the groundtruth boxes of chosen classes, from an export.

The first stage of the two-stage recipe (Deep-MAC paper, appendix B.2):
a partially supervised model segments the boxes of the classes it never saw
masks of; the json it writes trains a fully supervised model::

  python scripts/pseudo_label.py --saved_model_dir exported/saved_model \
      --input_annotations instances_train.json --image_dir images/train \
      --output_annotations instances_train_pseudo.json \
      [--classes unseen|all|3,7,9] [--rule THRESHOLD]
  python scripts/create_coco_tf_record.py --include_masks \
      --train_annotations_file instances_train_pseudo.json \
      --train_image_dir images/train --output_dir pseudo_records

``--classes unseen`` (default) picks the classes outside the export's
``allowed_masked_classes_ids`` (read from the ``pipeline.config`` the
exporter writes beside ``saved_model/``). Each chosen, non-crowd annotation
gets the model's mask for its box, through the pseudo-mask rules (p >= 0.5;
pixels of other seen-class instances' masks and outside the box become
background), as compressed RLE; everything else of the json is unchanged.
Unreadable images and bad boxes are named, counted and left unchanged.

Partial results live in ``OUTPUT.partial/`` while the job runs: rerun the
same command after an interruption and it continues where it stopped.
"""

from absl import flags

from deepmac_tf import cli

flags.DEFINE_string('saved_model_dir', None,
                    'Export with a box-prompted signature (the exporter\'s '
                    'output_directory or its saved_model/).')
flags.DEFINE_string('input_annotations', None,
                    'COCO json with the groundtruth boxes (e.g. '
                    'instances_train.json).')
flags.DEFINE_string('image_dir', None,
                    'Folder of the json\'s image file_name entries.')
flags.DEFINE_string('output_annotations', None, 'COCO json to write.')
flags.DEFINE_string('classes', 'unseen',
                    '"unseen" (classes without masks in the model\'s '
                    'training), "all", or comma-separated class ids.')
flags.DEFINE_string('rule', 'THRESHOLD',
                    'Pseudo-mask rule: THRESHOLD (probability >= 0.5).')

FLAGS = flags.FLAGS


def main(argv):
  del argv
  from deepmac_tf.errors import DataError  # pylint: disable=g-import-not-at-top
  for name in ('saved_model_dir', 'input_annotations', 'image_dir',
               'output_annotations'):
    if not getattr(FLAGS, name):
      raise DataError(f'--{name}: required.')
  # TensorFlow is imported after flag parsing, so --help stays fast.
  from deepmac_tf.inference import pseudo_labels  # pylint: disable=g-import-not-at-top
  stats = pseudo_labels.pseudo_label(
      FLAGS.saved_model_dir, FLAGS.input_annotations, FLAGS.image_dir,
      FLAGS.output_annotations, classes=FLAGS.classes, rule=FLAGS.rule)
  print(stats.summary())
  print(f'Wrote {FLAGS.output_annotations}')


if __name__ == '__main__':
  cli.run(main)
