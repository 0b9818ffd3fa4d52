r"""Segments one image with an exported SavedModel and draws the result.

Detection (the model finds the objects)::

  python scripts/segment.py --saved_model_dir=exported/saved_model \
    --image=photo.jpg --output=overlay.png [--min_score_threshold=0.5]

Box-prompted segmentation (one mask per box, any class, even unseen ones)::

  python scripts/segment.py --saved_model_dir=exported/saved_model \
    --image=photo.jpg --boxes="0.1,0.2,0.6,0.7;0.3,0.3,0.9,0.8" \
    --output=overlay.png

``--boxes`` takes ymin,xmin,ymax,xmax normalized to the image, boxes
separated by ";", or a JSON file (a list of boxes, or of
``{"box": [...], "category_id": k}``). Writes the overlay PNG (masks, boxes,
class names, scores) and COCO-format results with RLE masks to
``--output_json`` (default: the overlay path with ``.json``).
"""

import os

from absl import flags

from deepmac_tf import cli
from deepmac_tf import file_checks

flags.DEFINE_string('saved_model_dir', None,
                    'The exporter\'s output_directory/saved_model.')
flags.DEFINE_string('image', None, 'Image file (PNG, JPEG, ...).')
flags.DEFINE_string('boxes', None,
                    'Box prompts: "ymin,xmin,ymax,xmax;..." normalized to the '
                    'image, or a JSON file. Without it, the model detects.')
flags.DEFINE_string('output', None, 'Overlay image to write (PNG).')
flags.DEFINE_string('output_json', None,
                    'COCO-format results (default: --output with .json).')
flags.DEFINE_string('label_map_path', None,
                    'Label map for class names (default: the one stored in '
                    'the export).')
flags.DEFINE_float('min_score_threshold', 0.5,
                   'Detections with a lower score are dropped.')
flags.DEFINE_float('mask_threshold', 0.5,
                   'Mask probability above which a pixel is foreground.')
flags.DEFINE_integer('max_detections', 100, 'At most this many detections.')
flags.DEFINE_integer('image_id', 0, 'image_id written in the COCO results.')
flags.DEFINE_integer('overlay_min_size', 256,
                     'Upscale small images so the overlay\'s shorter side is '
                     'at least this (readable labels); 0 keeps the size.')

FLAGS = flags.FLAGS


def main(argv):
  del argv
  from deepmac_tf.errors import DataError  # pylint: disable=g-import-not-at-top
  for name in ('saved_model_dir', 'image', 'output'):
    if not getattr(FLAGS, name):
      raise DataError(f'--{name}: required.')
  json_path = FLAGS.output_json or os.path.splitext(FLAGS.output)[0] + '.json'
  # Up front, before the model loads: where the results go is writable.
  for flag, path in (('--output', FLAGS.output), ('--output_json', json_path)):
    file_checks.check_writable_dir(os.path.dirname(os.path.abspath(path)),
                                   flag)
  # The image and the boxes are checked before TensorFlow loads (with the
  # predictor), so their mistakes answer in a second.
  from deepmac_tf import inference  # pylint: disable=g-import-not-at-top
  image = inference.load_image(FLAGS.image, name='--image')
  boxes = classes = None
  if FLAGS.boxes:
    boxes, classes = inference.parse_boxes(FLAGS.boxes)
  model = inference.DeepMacPredictor(FLAGS.saved_model_dir,
                                     label_map_path=FLAGS.label_map_path)
  if boxes is not None:
    found = model.segment(image, boxes, classes=classes,
                          mask_threshold=FLAGS.mask_threshold)
  else:
    found = model.detect(image, min_score_threshold=FLAGS.min_score_threshold,
                         mask_threshold=FLAGS.mask_threshold,
                         max_detections=FLAGS.max_detections)
  overlay = inference.draw_overlay(image, found,
                                   min_size=FLAGS.overlay_min_size,
                                   prompted=boxes is not None)
  inference.save_overlay(FLAGS.output, overlay)
  inference.write_coco_results(
      inference.to_coco_results(found, image_id=FLAGS.image_id), json_path)
  kind = 'given boxes' if boxes is not None else 'detections'
  print(f'{len(found)} {kind} in {FLAGS.image} '
        f'({image.shape[1]}x{image.shape[0]}):')
  for index in range(len(found)):
    box = ', '.join(f'{v:.3f}' for v in found.boxes[index])
    pixels = int(found.masks[index].sum()) if found.masks is not None else 0
    name = found.class_names[index] or '-'
    print(f'  {index + 1}. {name} score {found.scores[index]:.3f} '
          f'box [{box}] mask {pixels} px')
  print(f'Overlay: {FLAGS.output}')
  print(f'COCO results: {json_path}')


if __name__ == '__main__':
  cli.run(main)
