"""The main job: partially supervised Deep-MAC, end to end, on synthetic data.

One command, no downloads, a few minutes on 2 CPU cores:

  1. renders the synthetic shapes dataset: masks for the 5 "seen" classes
     train the mask head, the 5 "unseen" classes only have boxes;
  2. writes a ready-to-use pipeline config for it;
  3. inspects the TFRecords against the config and draws a training batch
     (which instances supervise the mask head);
  4. trains a small Deep-MAC (scripts/model_main_tf2.py's training loop) with
     a checkpoint at the end (rerunning resumes from it), starting from the
     detector the project trained once and ships
     (deepmac_tf/reproduction/demo_detector/, scripts/train_demo_detector.py):
     its backbone stays frozen, the mask head learns from the seen classes;
  5. evaluates: COCO box AP, and mask AP split into seen vs unseen classes;
  6. exports a SavedModel (detection + box-prompted signatures);
  7. segments validation images with the SavedModel, by detection and from
     groundtruth boxes (box prompts, unseen classes included), and writes
     overlay PNGs;
  8. ends with a short table: seen vs unseen classes, masks at the
     groundtruth boxes against a mask drawn from the box alone, mask AP and
     box AP, and what the numbers mean.

  python scripts/run_demo.py --output_dir demo_output

Every artefact is in --output_dir; the last lines say where.
"""

import json
import os
import time

from absl import flags
from absl import logging
import numpy as np

from deepmac_tf import cli
from deepmac_tf import config as config_lib
from deepmac_tf.config import validation
from deepmac_tf.reproduction import demo

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUM_STEPS = 7

_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'demo_output',
                                  'Where everything is written.')
_NUM_TRAIN = flags.DEFINE_integer('num_train_images', 1000,
                                  'Synthetic training images.')
_NUM_VAL = flags.DEFINE_integer('num_val_images', 100,
                                'Synthetic validation images.')
_SEED = flags.DEFINE_integer('seed', 0, 'Dataset seed.')
_TRAIN_STEPS = flags.DEFINE_integer(
    'num_train_steps', None,
    'Training steps (default: the config\'s train_config.num_steps).')
_LOG_EVERY = flags.DEFINE_integer('log_every_n_steps', 50,
                                  'Console progress cadence (steps).')
_NUM_OVERLAYS = flags.DEFINE_integer('num_overlays', 4,
                                     'Validation images drawn.')
_TEMPLATE = flags.DEFINE_string(
    'pipeline_config_template',
    os.path.join(_REPO, 'configs',
                 'center_net_deepmac_synthetic_demo_from_detector.config'),
    'Pipeline config whose PATH_TO_BE_CONFIGURED placeholders are filled '
    f'with the dataset folder and {demo.PLACEHOLDER} with '
    '--detector_checkpoint.')
_DETECTOR = flags.DEFINE_string(
    'detector_checkpoint', demo.CHECKPOINT_PREFIX,
    'The trained detector the template starts from (a checkpoint prefix); '
    'default: the one shipped in the package, written by '
    'scripts/train_demo_detector.py.')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', '',
    'Text-format fragment merged into the pipeline config.')


def _step(number, title):
  print(f'\n[{number}/{_NUM_STEPS}] {title}', flush=True)


def _write_pipeline_config(data_dir, output_dir):
  with open(_TEMPLATE.value, encoding='utf-8') as f:
    text = demo.fill_template(f.read(), _DETECTOR.value)
  text = text.replace(validation.PLACEHOLDER, data_dir)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=_TEMPLATE.value,
      config_override=_CONFIG_OVERRIDE.value or None)
  return config_lib.save_pipeline_config(pipeline, output_dir)


def _inspect(configs):
  from deepmac_tf.data import inspection  # pylint: disable=g-import-not-at-top
  reports = inspection.inspect_pipeline(configs, split='all')
  print(inspection.format_reports(list(reports.values())))
  if not all(report.ok for report in reports.values()):
    raise SystemExit('ERROR: the dataset does not match the config (above).')


def _preview_batch(configs, data_dir, output_dir):
  """Draws one training batch: which instances carry mask supervision.

  The first of up to 10 batches that has both kinds of instance (seen
  classes with masks, unseen ones with boxes only) is drawn, so the
  picture shows the split; with small batches one may hold only one kind.
  """
  from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import preview  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data.fields import InputFields as F  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  dataset = dataset_builder.build_from_pipeline(configs, split='train')
  for batch in dataset.take(10):
    batch = {k: v.numpy() for k, v in batch.items()}
    real = int((batch[F.WEIGHTS] > 0).sum())
    supervised = int((batch[F.MASK_WEIGHTS] > 0).sum())
    if 0 < supervised < real:
      break
  category_index = label_map_util.create_category_index(
      os.path.join(data_dir, 'label_map.pbtxt'))
  path = os.path.join(output_dir, 'train_batch_preview.png')
  Image.fromarray(preview.draw_batch(batch, category_index)).save(path)
  print(f'  one training batch: {supervised} of {real} instances carry mask '
        f'supervision (seen classes), the rest train boxes only -> {path}')
  return path, real, supervised


def _starting_point(train_config):
  """Lines saying what training starts from (and what stays frozen)."""
  path = train_config.fine_tune_checkpoint
  if not path:
    return ['  from scratch (the config has no fine_tune_checkpoint)']
  lines = [f'  starts from the detector {path}']
  provenance = demo.read_provenance(os.path.dirname(path))
  if provenance.get('command'):
    data = provenance.get('dataset', {})
    box_ap = provenance.get('val_metrics', {}).get(
        'DetectionBoxes_Precision/mAP')
    lines.append(
        f'  (trained once by the project: {provenance.get("command")}; '
        f'{provenance.get("train_steps")} steps on '
        f'{data.get("num_train_images")} train images of seed '
        f'{data.get("seed")}; box AP {box_ap} on that seed\'s val split)')
  if train_config.freeze_variables:
    lines.append('  frozen (not trained): variables matching '
                 f'{", ".join(train_config.freeze_variables)}')
  return lines


def _train(configs, model_dir):
  from deepmac_tf.training import train_loop  # pylint: disable=g-import-not-at-top
  steps = _TRAIN_STEPS.value or configs['train_config'].num_steps
  start = time.time()
  result = train_loop.train_loop(
      configs, model_dir, num_train_steps=steps, checkpoint_every_n=steps,
      checkpoint_max_to_keep=2, log_every_n_steps=_LOG_EVERY.value)
  seconds = time.time() - start
  print(f'  trained to step {result.step} in {seconds:.0f} s; checkpoint '
        f'{result.checkpoint}')
  return result, seconds


def _evaluate(configs, model_dir):
  """Evaluates the latest checkpoint as model_main_tf2.py --eval_timeout=0."""
  from deepmac_tf.training import evaluation_driver  # pylint: disable=g-import-not-at-top
  results = evaluation_driver.eval_continuously(configs, model_dir, model_dir,
                                                eval_timeout=0)
  checkpoint_path, metrics = next(iter(results.items()))
  step = checkpoint_path.rsplit('-', 1)[-1]
  return metrics, os.path.join(evaluation_driver.eval_dir(model_dir),
                               f'metrics_step_{step}.json')


def _print_metrics(metrics):
  rows = [('box AP, all classes', 'DetectionBoxes_Precision/mAP'),
          ('box AP@.50, all classes', 'DetectionBoxes_Precision/mAP@.50IOU'),
          ('mask AP, all classes', 'DetectionMasks_Precision/mAP'),
          ('mask AP, seen classes (masks in training)',
           'DetectionMasks_SeenClasses/mAP'),
          ('mask AP, unseen classes (boxes only)',
           'DetectionMasks_UnseenClasses/mAP'),
          ('mask AP@.50, seen classes', 'DetectionMasks_SeenClasses/mAP@.50IOU'),
          ('mask AP@.50, unseen classes',
           'DetectionMasks_UnseenClasses/mAP@.50IOU'),
          ('mask mIoU at groundtruth boxes, seen classes',
           'BoxPromptedMasks/mIoU_seen'),
          ('mask mIoU at groundtruth boxes, unseen classes',
           'BoxPromptedMasks/mIoU_unseen')]
  for label, key in rows:
    if key in metrics:
      print(f'  {label:48s} {100 * metrics[key]:6.1f}')


def _export(configs, model_dir, output_dir):
  from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
  pipeline = config_lib.create_pipeline_proto_from_configs(configs)
  export_dir = os.path.join(output_dir, 'exported_model')
  paths = exporter.export_inference_graph('image_tensor', pipeline, model_dir,
                                          export_dir)
  print(f'  {paths["saved_model"]} (serving_default: image_tensor; '
        'image_and_boxes_tensor: box prompts)')
  return paths['saved_model']


def _val_examples(data_dir, count):
  """[(image path, normalized gt boxes [N,4], class ids [N])] of val images."""
  with open(os.path.join(data_dir, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  by_image = {}
  for annotation in coco['annotations']:
    by_image.setdefault(annotation['image_id'], []).append(annotation)
  examples = []
  for image in coco['images'][:count]:
    height, width = image['height'], image['width']
    annotations = by_image.get(image['id'], [])
    boxes = [[a['bbox'][1] / height, a['bbox'][0] / width,
              (a['bbox'][1] + a['bbox'][3]) / height,
              (a['bbox'][0] + a['bbox'][2]) / width] for a in annotations]
    examples.append((os.path.join(data_dir, 'images', 'val',
                                  image['file_name']),
                     np.array(boxes, np.float32).reshape([-1, 4]),
                     np.array([a['category_id'] for a in annotations],
                              np.int32)))
  return examples


def _overlays(saved_model_dir, data_dir, output_dir):
  from deepmac_tf import inference  # pylint: disable=g-import-not-at-top
  predictor = inference.load(saved_model_dir)
  overlay_dir = os.path.join(output_dir, 'overlays')
  os.makedirs(overlay_dir, exist_ok=True)
  written, results = [], []
  for index, (path, boxes, classes) in enumerate(
      _val_examples(data_dir, _NUM_OVERLAYS.value)):
    image = inference.load_image(path)
    found = predictor.detect(image, min_score_threshold=0.3)
    prompted = predictor.segment(image, boxes, classes=classes)
    left = inference.draw_overlay(image, found, min_size=256)
    right = inference.draw_overlay(image, prompted, min_size=256,
                                   prompted=True)
    gap = np.full([left.shape[0], 8, 3], 255, np.uint8)
    out = os.path.join(overlay_dir, f'val_{index}.png')
    inference.save_overlay(out, np.concatenate([left, gap, right], axis=1))
    written.append(out)
    results.extend(inference.to_coco_results(found, image_id=index))
  results_path = os.path.join(overlay_dir, 'detections_coco.json')
  inference.write_coco_results(results, results_path)
  print(f'  {len(written)} overlays (left: detections with score >= 0.3; '
        f'right: masks for the groundtruth boxes) in {overlay_dir}')
  return written, results_path


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start = time.time()
  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  data_dir = os.path.join(output_dir, 'synthetic_data')
  model_dir = os.path.join(output_dir, 'model_dir')
  os.makedirs(output_dir, exist_ok=True)

  _step(1, f'Creating the synthetic dataset in {data_dir}')
  demo.ensure_dataset(data_dir, _NUM_TRAIN.value, _NUM_VAL.value,
                      _SEED.value)

  _step(2, 'Writing the pipeline config')
  config_path = _write_pipeline_config(data_dir, output_dir)
  configs = config_lib.get_configs_from_pipeline_file(config_path)
  print(f'  {config_path}')

  _step(3, 'Inspecting the TFRecords against the config')
  _inspect(configs)
  preview_path, num_instances, num_supervised = _preview_batch(
      configs, data_dir, output_dir)

  _step(4, 'Training Deep-MAC (masks of the seen classes only)')
  print('\n'.join(_starting_point(configs['train_config'])))
  logging.set_verbosity(logging.INFO)  # the training progress lines
  train_result, train_seconds = _train(configs, model_dir)
  logging.set_verbosity(logging.WARNING)

  _step(5, 'Evaluating on the validation split')
  metrics, metrics_path = _evaluate(configs, model_dir)
  _print_metrics(metrics)

  _step(6, 'Exporting a SavedModel')
  saved_model_dir = _export(configs, model_dir, output_dir)

  _step(7, 'Segmenting validation images with the SavedModel')
  overlays, results_path = _overlays(saved_model_dir, data_dir, output_dir)

  summary = {
      'output_dir': output_dir,
      'dataset_dir': data_dir,
      'pipeline_config': config_path,
      'train_batch_preview': preview_path,
      'instances_in_batch': num_instances,
      'mask_supervised_instances': num_supervised,
      'model_dir': model_dir,
      'detector_checkpoint': (
          configs['train_config'].fine_tune_checkpoint or None),
      'train_steps': train_result.step,
      'train_seconds': round(train_seconds, 1),
      'final_losses': train_result.losses,
      'metrics_json': metrics_path,
      'metrics': {k: v for k, v in metrics.items()
                  if '/' in k and 'PerformanceByCategory' not in k},
      'saved_model': saved_model_dir,
      'overlays': overlays,
      'overlay_detections_coco_json': results_path,
      'seconds': round(time.time() - start, 1),
  }
  summary_path = os.path.join(output_dir, 'demo_summary.json')
  with open(summary_path, 'w') as f:
    json.dump(summary, f, indent=2)
  print('\nDone in {:.0f} s. Everything is in {}:'.format(
      summary['seconds'], output_dir))
  print(f'  dataset (images, COCO json, TFRecords, label map): {data_dir}')
  print(f'  pipeline config:   {config_path}')
  print(f'  checkpoints:       {model_dir}  (TensorBoard: tensorboard '
        f'--logdir {model_dir})')
  print(f'  metrics:           {metrics_path}')
  print(f'  SavedModel:        {saved_model_dir}')
  print(f'  overlays:          {os.path.dirname(overlays[0]) if overlays else "-"}')
  print(f'  summary:           {summary_path}')
  print('Next: python scripts/segment.py --saved_model_dir '
        f'{saved_model_dir} --image <png> --output overlay.png')
  print()
  print('\n'.join(_story(configs, data_dir, metrics, overlays)))
  return 0


def _story(configs, data_dir, metrics, overlays):
  """The closing seen / unseen table (``reproduction.story``)."""
  from deepmac_tf.reproduction import priors  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import run_config  # pylint: disable=g-import-not-at-top
  from deepmac_tf.reproduction import story  # pylint: disable=g-import-not-at-top
  pipeline = config_lib.create_pipeline_proto_from_configs(configs)
  references = priors.box_priors(data_dir,
                                 run_config.seen_class_ids(pipeline))
  return story.story_lines(metrics, references,
                           overlays[0] if overlays else None)


if __name__ == '__main__':
  cli.run(main)
