"""The eval driver: one pass over the eval input, COCO metrics or mIoU.

``evaluate(model, configs, ...)`` builds the eval dataset
(``dataset_builder.build_from_pipeline(configs, 'eval')``, each example
read once), runs the model batch by batch in a ``tf.function``
(``preprocess -> predict(training=False) -> postprocess``), converts each
example to the original image frame (``image_frames``: why that frame),
and scores it:

* detection models: COCO box metrics and, for mask models, mask metrics
  with the seen / unseen split (``coco_metrics``);
* detector-free Deep-MAC (``deepmac_mask_estimation.detector_free``): masks
  predicted at the groundtruth boxes (``predict_masks_from_boxes``), mean
  IoU (``miou``).

Metrics are returned as a flat ``{name: float}``, logged as a table,
written to ``output_dir/metrics_step_<N>.json`` and, with a summary writer,
as scalars plus ``eval_side_by_side_<i>`` images (detections | groundtruth)
for the first ``eval_config.num_visualizations`` examples (when no detection
reaches ``eval_config.min_score_threshold``, the top few are drawn:
``visualization.detections_to_draw``).

Detection models also report their losses on the eval data, as the OD API
does: ``model.loss`` in the same pass as the detections
(``detection_model.loss_dict``, training=False), averaged over the examples,
logged and written as ``Loss/*`` scalars beside the metrics (not in the
returned metrics). The eval input keeps every class's masks, so the mask
loss there covers unseen classes too.
"""

import json
import os
import time
import weakref

import numpy as np
import tensorflow as tf
from absl import logging

from deepmac_tf import graph_functions
from deepmac_tf.builders import dataset_builder
from deepmac_tf.config import model_spec
from deepmac_tf.data.fields import InputFields as F
from deepmac_tf.evaluation import box_prompted_overlap
from deepmac_tf.evaluation import coco_metrics
from deepmac_tf.evaluation import eval_setup
from deepmac_tf.evaluation import image_frames
from deepmac_tf.evaluation import miou
from deepmac_tf.evaluation import overlap_analysis
from deepmac_tf.evaluation import overlap_plot
from deepmac_tf.evaluation import visualization
from deepmac_tf.meta_architectures import capabilities
from deepmac_tf.meta_architectures import detection_model

default_best_metric = eval_setup.default_best_metric

# One traced function per (model, kind), reused by every evaluation of the
# run (a training run evaluating every N steps would otherwise retrace).
_FUNCTIONS = weakref.WeakKeyDictionary()

_DETECTION_KEYS = ('detection_boxes', 'detection_scores', 'detection_classes',
                   'num_detections', 'detection_masks')
LOSSES = 'losses'


def _eval_configs(configs, sample_1_of_n, eval_input_index):
  """A copy of ``configs`` whose eval reader reads each example once."""
  configs = dict(configs)
  inputs = list(configs.get('eval_input_configs') or [])
  if eval_input_index < len(inputs):
    reader = type(inputs[eval_input_index])()
    reader.CopyFrom(inputs[eval_input_index])
    if reader.num_epochs != 1:
      # 0 (the proto default) would repeat forever.
      reader.num_epochs = 1
    if sample_1_of_n and sample_1_of_n > 1:
      reader.sample_1_of_n_examples = int(sample_1_of_n)
    inputs[eval_input_index] = reader
  configs['eval_input_configs'] = inputs
  return configs


def _progress_bar(configs, eval_input_index, sample_1_of_n, max_examples,
                  step):
  """Console progress of the pass: a line every 10 s with images/s and ETA
  (``evaluation.progress.EvalProgress``; the total counts the records)."""
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import record_errors
  from deepmac_tf.evaluation import progress
  # pylint: enable=g-import-not-at-top
  total = None
  inputs = configs.get('eval_input_configs') or []
  if eval_input_index < len(inputs):
    reader = inputs[eval_input_index]
    files = sorted({f for pattern in reader.tf_record_input_reader.input_path
                    for f in tf.io.gfile.glob(pattern)})
    every = max(int(sample_1_of_n or 1), reader.sample_1_of_n_examples, 1)
    total = -(-record_errors.count_records(files) // every)
    if max_examples is not None:
      total = min(total, int(max_examples))
  title = f'Eval at step {step}' if step is not None else 'Eval'
  return progress.EvalProgress(total=total, title=title)


def _cached(model, kind, make):
  """``make(model_ref)``, once per model; the function holds only a weak
  reference, so the cache never keeps a model alive."""
  functions = _FUNCTIONS.setdefault(model, {})
  if kind not in functions:
    functions[kind] = make(weakref.ref(model))
  return functions[kind]


BOX_PROMPTED_MASKS = 'box_prompted_masks'


def _eval_losses(model, predictions, groundtruth):
  return detection_model.loss_dict(model, predictions, groundtruth,
                                   training=False)


def _numeric_groundtruth(batch):
  """The batch's numeric fields (the losses' groundtruth) as tensors."""
  return {k: tf.convert_to_tensor(v) for k, v in batch.items()
          if v.dtype.kind in 'biuf'}


def _detection_fn(model_ref):
  """tf.function: (images [B,H,W,3], true shapes [B,3], groundtruth
  dict) -> detections and ``LOSSES``."""

  @graph_functions.function(reduce_retracing=True)
  def detect(images, true_image_shapes, groundtruth):
    model = model_ref()
    preprocessed = model.normalize_images(images)
    predictions = model.predict(preprocessed, training=False)
    detections = model.postprocess(predictions, true_image_shapes)
    outputs = {k: detections[k] for k in _DETECTION_KEYS if k in detections}
    outputs[LOSSES] = _eval_losses(model, predictions, groundtruth)
    return outputs

  return detect


def _detection_and_box_masks_fn(model_ref):
  """tf.function: (images, true shapes, groundtruth boxes [B,N,4] normalized
  to the true image, their classes, groundtruth dict) -> detections,
  ``LOSSES`` and ``box_prompted_masks`` [B,N,S,S], from one backbone
  pass."""

  @graph_functions.function(reduce_retracing=True)
  def detect_and_prompt(images, true_image_shapes, boxes, classes,
                        groundtruth):
    model = model_ref()
    preprocessed = model.normalize_images(images)
    predictions = model.predict(preprocessed, training=False)
    detections = model.postprocess(predictions, true_image_shapes)
    outputs = {k: detections[k] for k in _DETECTION_KEYS if k in detections}
    outputs[LOSSES] = _eval_losses(model, predictions, groundtruth)
    outputs[BOX_PROMPTED_MASKS] = model.predict_masks_from_boxes(
        predictions, boxes, true_image_shapes,
        **_box_class_kwargs(model, classes))['detection_masks']
    return outputs

  return detect_and_prompt


def _box_class_kwargs(model, classes):
  """Class-specific masks (``capabilities.needs_box_classes``): the channel
  of each groundtruth box's class (``classes`` 1-based -> 0-based)."""
  if not capabilities.needs_box_classes(model):
    return {}
  return {'classes': tf.maximum(tf.cast(classes, tf.int32) - 1, 0)}


def _box_masks_fn(model_ref):
  """tf.function: (images, true shapes, boxes [B,N,4] normalized to the
  true image, classes [B, N] 1-based) -> [B, N, S, S] box-relative mask
  probabilities."""

  @graph_functions.function(reduce_retracing=True)
  def masks_at_boxes(images, true_image_shapes, boxes, classes):
    model = model_ref()
    preprocessed = model.normalize_images(images)
    predictions = model.predict(preprocessed, training=False)
    return model.predict_masks_from_boxes(
        predictions, boxes, true_image_shapes,
        **_box_class_kwargs(model, classes))['detection_masks']

  return masks_at_boxes


def _true_frame_boxes(batch):
  """[B, N, 4] groundtruth boxes renormalized from the padded input to the
  true image (``predict_masks_from_boxes`` takes true-image boxes)."""
  padded = np.asarray(batch[F.IMAGE].shape[1:3], np.float32)
  true = np.asarray(batch[F.TRUE_IMAGE_SHAPE][:, :2], np.float32)
  ratio = padded[None] / true
  scale = np.concatenate([ratio, ratio], axis=1)[:, None, :]
  return (np.asarray(batch[F.BOXES], np.float32) * scale).astype(np.float32)


class _Visualizer:
  """Collects side-by-side images of the first ``count`` examples."""

  def __init__(self, eval_config, category_index):
    self.count = int(eval_config.num_visualizations) if eval_config else 0
    self._min_score = (float(eval_config.min_score_threshold)
                       if eval_config else 0.5)
    self._max_boxes = (int(eval_config.max_num_boxes_to_visualize)
                       if eval_config else 20)
    self._category_index = category_index
    self.images = []

  def wants_more(self):
    return len(self.images) < self.count

  def add(self, batch, index, gt, boxes, classes, scores, box_masks):
    """Draws one example in the true frame (masks pasted at that size)."""
    th, tw = gt['true_shape']
    image = np.asarray(batch[F.IMAGE][index][:th, :tw])
    masks = None
    if box_masks is not None:
      masks = image_frames.paste_masks(box_masks, boxes, th, tw)
    picture = visualization.side_by_side(
        image, {'boxes': boxes, 'classes': classes, 'scores': scores,
                'masks': masks},
        {'boxes': gt['boxes'], 'classes': gt['classes'],
         'masks': gt['true_masks']},
        self._category_index, self._min_score, self._max_boxes)
    self.images.append(picture)


def _score_detection_batch(outputs, batch, evaluator, visualizer, with_masks,
                           next_id):
  """Feeds one batch's detections (numpy dict) to the COCO evaluator."""
  with_masks = with_masks and 'detection_masks' in outputs
  for i in range(batch[F.IMAGE].shape[0]):
    gt = image_frames.groundtruth(batch, i)
    image_id = image_frames.image_id(batch, i, f'image_{next_id()}')
    if not evaluator.add_groundtruth(
        image_id, gt['absolute_boxes'], gt['classes'],
        gt['masks'] if with_masks else None, gt['is_crowd'], gt['area'],
        gt['original_shape']):
      logging.warning('Eval: source_id %r seen twice; counted once.',
                      image_id)
      continue
    det = image_frames.detections(outputs, i, gt['original_shape'],
                                  with_masks)
    evaluator.add_detections(image_id, det['absolute_boxes'], det['scores'],
                             det['classes'], det['masks'])
    if visualizer.wants_more():
      count = int(outputs['num_detections'][i])
      box_masks = (outputs['detection_masks'][i][:count] if with_masks
                   else None)
      visualizer.add(batch, i, gt, det['boxes'], det['classes'],
                     det['scores'], box_masks)


def _score_box_masks_batch(box_masks, batch, accumulators, visualizer):
  """Feeds masks predicted at the groundtruth boxes ([B, N, S, S] numpy)
  to the accumulators (mIoU, overlap analysis: same ``add`` arguments)."""
  for i in range(batch[F.IMAGE].shape[0]):
    gt = image_frames.groundtruth(batch, i)
    if gt['masks'] is None:
      continue
    valid = np.asarray(batch[F.CLASSES][i]) > 0
    if F.NUM_BOXES in batch:
      valid &= np.arange(len(valid)) < int(batch[F.NUM_BOXES][i])
    oh, ow = gt['original_shape']
    predicted = image_frames.paste_masks(box_masks[i][valid], gt['boxes'],
                                         oh, ow)
    for accumulator in accumulators:
      accumulator.add(predicted, gt['masks'], gt['boxes'], gt['classes'],
                      gt['is_crowd'])
    if visualizer is not None and visualizer.wants_more():
      count = len(gt['classes'])
      visualizer.add(batch, i, gt, gt['boxes'], gt['classes'],
                     np.ones([count]), box_masks[i][valid])


def _step_value(global_step):
  if global_step is None:
    return None
  if hasattr(global_step, 'numpy'):
    global_step = global_step.numpy()
  return int(global_step)


def write_metrics_json(metrics, output_dir, global_step=None):
  """Writes ``output_dir/metrics_step_<N>.json`` (N = step or 'latest')
  atomically; returns its path."""
  os.makedirs(output_dir, exist_ok=True)
  step = 'latest' if global_step is None else str(global_step)
  path = os.path.join(output_dir, f'metrics_step_{step}.json')
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump({k: float(v) for k, v in sorted(metrics.items())}, f, indent=2)
    f.write('\n')
  os.replace(tmp, path)
  return path


def write_summaries(summary_writer, metrics, images, global_step=None,
                    losses=None):
  """Scalars for every metric (and every eval loss: ``Loss/*``) and
  ``eval_side_by_side_<i>`` images."""
  step = 0 if global_step is None else global_step
  with summary_writer.as_default():
    for name, value in sorted({**(losses or {}), **metrics}.items()):
      tf.summary.scalar(name, float(value), step=step)
    for i, picture in enumerate(images):
      tf.summary.image(f'eval_side_by_side_{i}', picture[None], step=step)
  summary_writer.flush()


def evaluate(model, configs, *, global_step=None, output_dir=None,
             summary_writer=None, sample_1_of_n=1, max_examples=None,
             eval_input_index=0):
  """Evaluates ``model`` on one eval input of the pipeline config.

  Args:
    model: a built meta-architecture (``preprocess / predict /
      postprocess``, and ``predict_masks_from_boxes`` if detector-free),
      with its weights restored.
    configs: dict of ``config_util.get_configs_from_pipeline_file``.
    global_step: int (or variable) of the evaluated checkpoint, for the JSON
      name and the summary step.
    output_dir: where ``metrics_step_<N>.json`` goes (N = global_step or
      'latest'); None writes nothing.
    summary_writer: optional ``tf.summary`` writer for scalars and images.
    sample_1_of_n: keep 1 of every n eval examples.
    max_examples: stop after this many examples (None: all).
    eval_input_index: which ``eval_input_reader``.

  Returns:
    dict ``{metric name: float}``: COCO ``DetectionBoxes_*`` /
    ``DetectionMasks_*`` metrics (incl. the seen / unseen split) plus, for
    a model that segments given boxes, ``BoxPromptedMasks/mIoU``
    (``_seen`` / ``_unseen``): masks at the groundtruth boxes; or
    ``DetectorFreeMasks/*`` for a detector-free model.

  Raises:
    ConfigError: bad eval config (unknown metrics_set, super-category names,
      label map, input paths).
  """
  start = time.time()
  step = _step_value(global_step)
  eval_config = configs.get('eval_config')
  categories = eval_setup.categories(configs, eval_input_index)
  category_index = {c['id']: c for c in categories}
  seen = model_spec.from_configs(configs).seen_class_ids
  per_category = bool(eval_config and eval_config.include_metrics_per_category)
  detector_free = capabilities.is_detector_free(model)
  box_prompted = None
  with_masks = False
  # Overlap analysis (Zhao et al.): masks at the groundtruth boxes per
  # overlap bin and false-positive pixels, for every model with masks.
  overlap = (bool(eval_config and eval_config.include_overlap_analysis) and
             capabilities.has_masks(model))
  box_overlap = (box_prompted_overlap.BoxPromptedOverlapAccumulator(
      categories, seen) if overlap else None)
  if detector_free:
    scorer = miou.MIoUAccumulator(categories, seen, per_category)
    run_batch = _cached(model, 'masks_at_boxes', _box_masks_fn)
  else:
    sets = eval_setup.metrics_sets(configs)
    scorer = coco_metrics.CocoEvaluator(
        categories, sets, per_category, eval_setup.super_categories(configs),
        seen, all_metrics_per_category=bool(
            eval_config and eval_config.all_metrics_per_category))
    run_batch = _cached(model, 'detect', _detection_fn)
    with_masks = coco_metrics.MASK_METRICS in sets
    if not with_masks:
      box_overlap = None
    # Box-prompted mIoU: the mask branch at the groundtruth boxes, the
    # paper's detector-free protocol, independent of detection quality.
    if with_masks and capabilities.has_masks(model):
      box_prompted = miou.MIoUAccumulator(
          categories, seen, per_category, prefix=miou.BOX_PROMPTED_PREFIX)
      run_batch = _cached(model, 'detect_and_prompt',
                          _detection_and_box_masks_fn)
  visualizer = _Visualizer(eval_config, category_index)
  dataset = dataset_builder.build_from_pipeline(
      _eval_configs(configs, sample_1_of_n, eval_input_index), 'eval',
      eval_input_index=eval_input_index)
  counter = iter(range(1, 1 << 62))
  seen_examples = 0
  loss_sums = {}
  bar = _progress_bar(configs, eval_input_index, sample_1_of_n, max_examples,
                      step)
  for batch in dataset:
    batch = {k: v.numpy() for k, v in batch.items()}
    size = batch[F.IMAGE].shape[0]
    if max_examples is not None and seen_examples + size > max_examples:
      keep = max(int(max_examples) - seen_examples, 0)
      batch = {k: v[:keep] for k, v in batch.items()}
      size = keep
    if size == 0:
      break
    images = tf.convert_to_tensor(batch[F.IMAGE])
    true_shapes = tf.convert_to_tensor(batch[F.TRUE_IMAGE_SHAPE])
    if detector_free:
      box_masks = run_batch(images, true_shapes,
                            tf.convert_to_tensor(_true_frame_boxes(batch)),
                            tf.convert_to_tensor(batch[F.CLASSES]))
      _score_box_masks_batch(box_masks.numpy(), batch,
                             [a for a in (scorer, box_overlap) if a],
                             visualizer)
    else:
      groundtruth = _numeric_groundtruth(batch)
      if box_prompted is not None:
        outputs = run_batch(images, true_shapes,
                            tf.convert_to_tensor(_true_frame_boxes(batch)),
                            tf.convert_to_tensor(batch[F.CLASSES]),
                            groundtruth)
      else:
        outputs = run_batch(images, true_shapes, groundtruth)
      for name, value in outputs.pop(LOSSES).items():
        loss_sums[name] = loss_sums.get(name, 0.0) + float(value) * size
      outputs = {k: v.numpy() for k, v in outputs.items()}
      _score_detection_batch(outputs, batch, scorer, visualizer, with_masks,
                             lambda: next(counter))
      if box_prompted is not None:
        _score_box_masks_batch(outputs[BOX_PROMPTED_MASKS], batch,
                               [a for a in (box_prompted, box_overlap) if a],
                               None)
    seen_examples += size
    bar.update(seen_examples)
    if max_examples is not None and seen_examples >= max_examples:
      break
  metrics = scorer.evaluate()
  if box_prompted is not None:
    metrics.update(box_prompted.evaluate())
  if overlap and not detector_free and with_masks:
    metrics.update(overlap_analysis.coco_evaluator_metrics(scorer, seen))
  if box_overlap is not None:
    metrics.update(box_overlap.evaluate())
  seconds = time.time() - start
  title = (f'Eval at step {step}' if step is not None else 'Eval') + (
      f' ({seen_examples} examples, {seconds:.1f} s)')
  logging.info('%s', coco_metrics.format_summary(metrics, title))
  losses = {name: total / max(seen_examples, 1)
            for name, total in sorted(loss_sums.items())}
  if losses:
    logging.info('Eval losses: %s', ' | '.join(
        f'{name} {value:.4f}' for name, value in losses.items()))
  if output_dir:
    path = write_metrics_json(metrics, output_dir, step)
    logging.info('Eval metrics written to %s', path)
    if overlap:
      plot = overlap_plot.write_overlap_plot(
          metrics, os.path.splitext(path)[0].replace(
              'metrics_step_', 'overlap_analysis_step_') + '.png',
          title=title)
      if plot:
        logging.info('Overlap analysis plot written to %s', plot)
  if summary_writer is not None:
    write_summaries(summary_writer, metrics, visualizer.images, step,
                    losses)
  return metrics
