r"""Benchmarks a pipeline config: prints ONE JSON object of figures.

Figures (median milliseconds after --warmup_steps calls, over --steps calls):
  * ``train_step``: the training loop's own ``DistributedTrainStep`` (one
    global batch of --batch_size, a fixed batch so input time is excluded);
  * ``inference_checkpoint``: preprocess -> predict -> postprocess of the
    in-memory model restored from a checkpoint (``tf.function``, batch 1);
  * ``inference_saved_model``: ``serving_default`` of the SavedModel that
    ``deepmac_tf.export`` writes from that checkpoint (uint8 [1, H, W, 3]);
  * ``input_pipeline``: images/s of ``build_from_pipeline(configs, 'train')``
    when the config's input paths resolve (else skipped, with the reason;
    random inputs at the model size are used for everything else);
  * ``memory``: peak RSS of the process and its growth over the benchmark;
  * Deep-MAC (``center_net`` with ``deepmac_mask_estimation``) configs, unless
    --nomask_branch: ``mask_branch_overhead`` (inference with
    --masks_per_image detections passing ``mask_detection_score_threshold``
    over the detection-only build of the same config, minus 1; and
    ``mask_branch_overhead_all_slots`` with every slot masked) and
    ``train_step_valid_only_over_all_slots`` (the train step with the mask
    head on the weighted instances over the same step on every groundtruth
    slot), each pair timed in turn (``benchmarks/mask_branch.py``); and
    ``mask_branch_flops``: the inference pair in FLOPs (traced, exact,
    machine-independent: detection-only, the mask branch's fixed part, the
    mask head per instance, ``mask_branch_overhead_flops`` at
    --masks_per_image), the bound any FLOP-limited machine's timing follows;
  * ``class_specific_masks`` (class-specific Mask R-CNN / MaskX configs):
    the logits of each instance's class channel, as the model computes them,
    vs projecting to every class then picking, gradient included, timed in
    turn at the config's sizes (classes, mask size, instances per step), and
    the size of each one's logits tensor;
  * with ``--reference=model_garden`` (Deep-MARC / ``faster_rcnn`` configs):
    Model Garden's deepmac_maskrcnn model with the same settings and our
    backbone / FPN / RPN / box-head weights (both keep the same detections:
    ``same_num_detections``, ``detections_matched_within_1px``), timed in
    turn with ours (a, b, a, b: load drift hits both) on the same inputs,
    and ``ratio_infer`` / ``ratio_train_step`` (ours / theirs) plus both
    parameter counts. Random groundtruth is padded to
    ``train_config.max_number_of_boxes`` as both input pipelines pad it
    (--nopad_groundtruth: real instances only). Inference runs on the
    initial weights unless --checkpoint_dir names trained ones.
Machine facts and the settings used are recorded too. Figures only: it never
fails on speed.

  python scripts/benchmark.py --pipeline_config_path configs/X.config \
      --image_size 512 --batch_size 2 --steps 3 --reference=model_garden \
      --output_json bench.json
"""

import json
import os
import platform
import tempfile
import time

from absl import flags
from absl import logging

from deepmac_tf import cli
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DeepMacError

# TensorFlow is imported lazily (in main) so that --help answers at once.

_PIPELINE = flags.DEFINE_string('pipeline_config_path', None,
                                'Path to the pipeline config (required).')
_CONFIG_OVERRIDE = flags.DEFINE_string(
    'config_override', None, 'Text-format fragment merged over the config.')
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', None, 'Training batch (default: train_config.batch_size).')
_IMAGE_SIZE = flags.DEFINE_integer(
    'image_size', None, 'Square model input size (default: the config '
    "image resizer's).")
_WARMUP_STEPS = flags.DEFINE_integer(
    'warmup_steps', 2, 'Untimed calls first (the first one traces).')
_STEPS = flags.DEFINE_integer('steps', 5, 'Timed calls per figure.')
_NUM_INSTANCES = flags.DEFINE_integer(
    'num_instances', 8, 'Groundtruth instances per random image (capped '
    'at train_config.max_number_of_boxes).')
_PAD_GROUNDTRUTH = flags.DEFINE_bool(
    'pad_groundtruth', True, 'Zero-pad the random instances to '
    'train_config.max_number_of_boxes, as the input pipelines of both this '
    "library and Model Garden (its parser's max_num_instances) do; "
    '--nopad_groundtruth gives the models only the real instances.')
_INPUT_BATCHES = flags.DEFINE_integer(
    'input_batches', 10, 'Batches read for the input-pipeline figure.')
_REFERENCE = flags.DEFINE_enum(
    'reference', None, ['model_garden'], 'Also time the reference model '
    '(Mask R-CNN configs only).')
_SAVED_MODEL = flags.DEFINE_bool(
    'saved_model', True, 'Export and time the SavedModel (--nosaved_model '
    'skips the figure, e.g. for a quick reference comparison).')
_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', None, 'Time inference (and the export) with this '
    'trained checkpoint (a model_dir of model_main_tf2.py, or a checkpoint '
    'prefix) instead of the initial weights; with --reference=model_garden '
    'Model Garden gets its detection weights too.')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'Random seed of the initial weights and inputs (the number of '
    'real detections of initial weights depends on it).')
_MASK_BRANCH = flags.DEFINE_bool(
    'mask_branch', True, 'Deep-MAC configs: also time the mask branch '
    '(mask_branch_overhead, train_step_valid_only_over_all_slots); '
    '--nomask_branch skips it.')
_MASKS_PER_IMAGE = flags.DEFINE_integer(
    'masks_per_image', 20, 'Deep-MAC mask_branch_overhead: detections (of '
    'max_box_predictions) whose score passes the mask score threshold.')
_OUTPUT_JSON = flags.DEFINE_string('output_json', None,
                                   'Also write the JSON to this file.')


def _load_pipeline():
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  if not _PIPELINE.value:
    raise ConfigError('--pipeline_config_path: must be set.')
  pipeline = config_lib.get_pipeline_config_from_file(
      _PIPELINE.value, _CONFIG_OVERRIDE.value)
  arch, model = config_lib.get_model_message(pipeline.model)
  if _BATCH_SIZE.value is not None:
    if _BATCH_SIZE.value < 1:
      raise ConfigError(f'--batch_size: must be >= 1, got {_BATCH_SIZE.value}.')
    pipeline.train_config.batch_size = _BATCH_SIZE.value
  if _IMAGE_SIZE.value is not None:
    size = _IMAGE_SIZE.value
    if size < 1:
      raise ConfigError(f'--image_size: must be >= 1, got {size}.')
    resizer = model.image_resizer
    kind = resizer.WhichOneof('image_resizer_oneof')
    if kind == 'fixed_shape_resizer':
      resizer.fixed_shape_resizer.height = size
      resizer.fixed_shape_resizer.width = size
    else:
      resizer.keep_aspect_ratio_resizer.min_dimension = size
      resizer.keep_aspect_ratio_resizer.max_dimension = size
      resizer.keep_aspect_ratio_resizer.pad_to_max_dimension = True
  if _REFERENCE.value == 'model_garden' and arch != 'faster_rcnn':
    raise ConfigError(
        f'--reference=model_garden: the config is a {arch} model; Model '
        'Garden has no reference for CenterNet / Deep-MAC (only for Mask '
        'R-CNN / Deep-MARC, model { faster_rcnn { ... } }).')
  return pipeline, arch


def _machine(tf, tf_keras):
  return {
      'cpu_count': os.cpu_count(),
      'cpu_affinity': (len(os.sched_getaffinity(0))
                       if hasattr(os, 'sched_getaffinity') else None),
      'platform': platform.platform(),
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'tf_keras': tf_keras.__version__,
      'devices': [d.name for d in tf.config.list_logical_devices()],
      'precision_policy': tf_keras.mixed_precision.global_policy().name,
      'intra_op_threads':
          tf.config.threading.get_intra_op_parallelism_threads(),
      'inter_op_threads':
          tf.config.threading.get_inter_op_parallelism_threads(),
  }


def _input_pipeline(tf, configs, batches):
  """(figure dict, first batch or None)."""
  from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  try:
    dataset = dataset_builder.build_from_pipeline(configs, 'train')
  except DeepMacError as e:
    return {'skipped': True, 'reason': str(e)}, None
  iterator = iter(dataset)
  first = next(iterator)  # Fills the pipeline's buffers; not timed.
  images = 0
  start = time.perf_counter()
  for _ in range(batches):
    batch = next(iterator)
    images += int(tf.shape(batch['image'])[0])
  elapsed = time.perf_counter() - start
  return {'skipped': False, 'batches': batches, 'images': images,
          'seconds': round(elapsed, 3),
          'images_per_s': round(images / max(elapsed, 1e-9), 2)}, first


def _random_batch(configs, arch, size):
  from deepmac_tf.benchmarks import random_inputs  # pylint: disable=g-import-not-at-top
  from deepmac_tf.config import config_util  # pylint: disable=g-import-not-at-top
  train_config = configs['train_config']
  max_boxes = train_config.max_number_of_boxes or None
  num = max(1, min(_NUM_INSTANCES.value, max_boxes or _NUM_INSTANCES.value))
  return random_inputs.groundtruth_batch(
      train_config.batch_size, size[0], size[1], num,
      config_util.get_number_of_classes(configs['model']),
      seed=_SEED.value,
      pad_to=max_boxes if _PAD_GROUNDTRUTH.value else None), num


def _build_train_step(tf, configs, batch, model_dir=None):
  """Training-loop pieces: model, optimizer, DistributedTrainStep.

  Returns:
    (the call of one step on ``batch``, model, strategy, a factory of more
    step calls on the same model and optimizer, each its own tf.function);
    the initial weights are saved in ``model_dir`` when given.
  """
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import checkpoints
  from deepmac_tf.training import strategy as strategy_lib
  from deepmac_tf.training import train_loop
  from deepmac_tf.training import train_step as train_step_lib
  # pylint: enable=g-import-not-at-top
  train_config = configs['train_config']
  strategy = strategy_lib.select_strategy()
  with strategy.scope():
    model, optimizer, _, trainable = train_loop.build_training_state(
        configs, strategy)
    checkpoint, step = checkpoints.make_training_checkpoint(model, optimizer)
  def make_step():
    run_step = train_step_lib.DistributedTrainStep(
        strategy, model, optimizer, step, trainable_variables=trainable,
        add_regularization_loss=train_config.add_regularization_loss)
    return lambda: run_step(next(iterator))

  if model_dir is not None:
    # Inference is timed with these initial weights (see _inference).
    checkpoints.make_manager(checkpoint, model_dir).save(
        checkpoint_number=int(step.numpy()))
  dataset = tf.data.Dataset.from_tensors(batch).repeat()
  iterator = iter(strategy.experimental_distribute_dataset(dataset))
  return make_step(), model, strategy, make_step


def _train_step(tf, configs, batch, model_dir):
  """The train-step figure; (figure, the timed call)."""
  from deepmac_tf.benchmarks import timing  # pylint: disable=g-import-not-at-top
  train_config = configs['train_config']
  step_fn, model, strategy, make_step = _build_train_step(tf, configs, batch,
                                                         model_dir)
  figure = timing.time_calls(step_fn, _WARMUP_STEPS.value, _STEPS.value)
  figure['ms_per_image'] = round(
      figure['median_ms'] / train_config.batch_size, 3)
  figure['num_replicas'] = strategy.num_replicas_in_sync
  figure['num_params'] = sum(int(tf.size(w)) for w in model.weights)
  return figure, step_fn, make_step


def _inference(tf, pipeline, model_dir, export_dir, image):
  """Checkpointed in-memory model and exported SavedModel, batch 1.

  By default (no --checkpoint_dir) the checkpoint in ``model_dir`` holds the
  initial weights, not those after the few benchmark training steps (which,
  on random inputs, make a detector either like the initial one or one that
  finds nothing). With initial weights a Mask R-CNN keeps
  every detection slot (softmax scores spread around 1 / num_classes pass
  the 0.05 threshold): the most mask-head work, the worst case for ours,
  which runs the mask head on real detections only. A higher
  ``score_threshold`` (--config_override, applied to both models) gives
  fewer real detections.

  Returns:
    (in-memory figure, SavedModel figure, the timed call, the model).
  """
  # pylint: disable=g-import-not-at-top
  from deepmac_tf import graph_functions
  from deepmac_tf.benchmarks import timing
  from deepmac_tf.export import exporter
  # pylint: enable=g-import-not-at-top
  model, resizer = exporter.build_model_and_resizer(pipeline.model)
  exporter.create_variables(model, resizer)
  checkpoint_path = exporter.find_checkpoint(model_dir, flag='--checkpoint_dir')
  exporter.restore_model(model, checkpoint_path)
  logging.info('benchmark: inference weights from %s', checkpoint_path)
  shapes = tf.constant([[image.shape[1], image.shape[2], 3]], tf.int32)

  @graph_functions.function
  def detect(images):
    predictions = model.predict(model.normalize_images(images), training=False)
    return model.postprocess(predictions, shapes)

  detect_fn = lambda: detect(image)  # pylint: disable=unnecessary-lambda-assignment
  ours = timing.time_calls(detect_fn, _WARMUP_STEPS.value, _STEPS.value,
                           timing.detections_described)
  if not _SAVED_MODEL.value:
    return (ours, {'skipped': True, 'reason': '--nosaved_model'}, detect_fn,
            model)
  start = time.perf_counter()
  exporter.export_inference_graph('image_tensor', pipeline, model_dir,
                                  export_dir)
  export_s = time.perf_counter() - start
  serving = tf.saved_model.load(os.path.join(
      export_dir, exporter.SAVED_MODEL_DIR)).signatures['serving_default']
  uint8 = tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)
  saved = timing.time_calls(lambda: serving(input_tensor=uint8),
                            _WARMUP_STEPS.value, _STEPS.value,
                            timing.detections_described)
  saved['export_seconds'] = round(export_s, 2)
  return ours, saved, detect_fn, model


def _matched_detections(ours, theirs, size, tolerance_px=1.0):
  """(both kept as many detections, how many of ours Model Garden also has).

  Matched as sets (one of their boxes within ``tolerance_px``): float
  round-off of two differently fused graphs (large with random weights,
  whose activations are not normalized yet) moves boxes slightly, swaps
  near-tied detections and may trade the last few near the score cut-off.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  n_ours = np.asarray(ours['num_detections']).reshape(-1)
  n_theirs = np.asarray(theirs['num_detections']).reshape(-1)
  n = int(n_ours[0])
  if not n:
    return bool(np.array_equal(n_ours, n_theirs)), 0
  scale = np.array([size[0], size[1], size[0], size[1]], np.float32)
  mine = np.asarray(ours['detection_boxes'])[0, :n] * scale
  their = np.asarray(theirs['detection_boxes'])[0, :int(n_theirs[0])]
  if not len(their):
    return False, 0
  nearest = np.abs(mine[:, None] - their[None]).max(axis=-1).min(axis=1)
  return (bool(np.array_equal(n_ours, n_theirs)),
          int((nearest < tolerance_px).sum()))


def _reference(tf, pipeline, batch, image, size, our_calls):
  """Model Garden's model, same settings, inputs and detection weights,
  timed in turn with ours (``our_calls``: 'inference' / 'train_step'
  callables and the inference 'model')."""
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.benchmarks import model_garden_reference
  from deepmac_tf.benchmarks import timing
  from deepmac_tf.builders import mask_rcnn_builder
  from deepmac_tf.builders import optimizer_builder
  # pylint: enable=g-import-not-at-top
  params = mask_rcnn_builder.params_from_proto(pipeline.model.faster_rcnn)
  train_config = pipeline.train_config
  optimizer, _ = optimizer_builder.build(
      train_config.optimizer, train_config.gradient_clipping_by_norm)
  reference = model_garden_reference.ReferenceModel(params, size, optimizer)
  reference.infer(image)  # Creates its variables.
  reference.share_detection_weights(our_calls['model'])
  same_count, matched = _matched_detections(our_calls['inference'](),
                                            reference.infer(image), size)
  infer = timing.time_interleaved(
      {'ours': our_calls['inference'],
       'model_garden': lambda: reference.infer(image)},
      _WARMUP_STEPS.value, _STEPS.value, timing.detections_described)
  optimizer.build(reference.model.trainable_variables)
  images = batch['image']
  labels = reference.labels(batch)
  train = timing.time_interleaved(
      {'ours': our_calls['train_step'],
       'model_garden': lambda: reference.train_step(images, labels)},
      _WARMUP_STEPS.value, _STEPS.value)
  for figure in train.values():
    figure['ms_per_image'] = round(figure['median_ms'] / int(images.shape[0]),
                                   3)
  return {'inference': infer['model_garden'],
          'train_step': train['model_garden'],
          'ours_interleaved': {'inference': infer['ours'],
                               'train_step': train['ours']},
          'same_num_detections': same_count,
          'detections_matched_within_1px': matched,
          'num_params': reference.num_params(),
          'nms_version': reference.model.detection_generator.get_config()[
              'nms_version'],
          'convnet_variant': model_garden_reference.convnet_variant(
              params.mask_head.network_type) if params.mask_head else None,
          'notes': 'Model Garden DeepMaskRCNNModel built from the same '
                   'MaskRCNNParams, given our backbone / FPN / RPN / box-head '
                   'weights (so both keep the same detections), timed in '
                   'turn with ours on the same inputs; its train step labels '
                   'RPN anchors inside the step (as ours does in its loss) '
                   'and takes box-cropped masks (its input format), padded '
                   'like the groundtruth (-1, as its parser pads).'}


def _class_specific_masks(configs):
  """{'class_specific_masks': figures} for class-specific Mask R-CNN / MaskX
  configs (``class_channel_benchmark``: each instance's class channel vs
  every class's, with the gradient, at the config's sizes), else {}."""
  model = configs['model']
  if model.WhichOneof('model') != 'faster_rcnn':
    return {}
  frcnn = model.faster_rcnn
  head = frcnn.deepmarc_mask_head
  if frcnn.number_of_stages != 3 or head.class_agnostic:
    return {}
  from deepmac_tf.benchmarks import class_channel_benchmark  # pylint: disable=g-import-not-at-top
  from deepmac_tf.benchmarks import timing  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import faster_rcnn_pb2  # pylint: disable=g-import-not-at-top
  # The model's own peak (train step done), before these figures allocate.
  model_peak = timing.peak_rss_mib()
  train_config = configs['train_config']
  per_image = (train_config.max_number_of_boxes or _NUM_INSTANCES.value
               if head.box_source == faster_rcnn_pb2.DeepMarcMaskHead.GROUNDTRUTH
               else head.num_sampled_masks)
  figures = class_channel_benchmark.class_specific_mask_figures(
      frcnn.num_classes, head.mask_size, head.num_init_channels,
      per_image * train_config.batch_size, _WARMUP_STEPS.value, _STEPS.value,
      seed=_SEED.value)
  figures['peak_rss_after_train_step_mib'] = model_peak
  return {'class_specific_masks': figures}


def _mask_branch(tf, pipeline, configs, batch, model_dir, image, step_fn,
                 make_step, detect_fn):
  """Deep-MAC's mask-branch figures (``benchmarks/mask_branch.py``), {} for
  other configs or with --nomask_branch. Inference restores the checkpoint
  of ``model_dir`` (or the --checkpoint_dir prefix). The config's own train
  step / inference call (``step_fn`` / ``detect_fn``) is reused where it is
  one side of a pair (head on selected slots; every slot masked); with
  ``mask_head_slots: SLOTS_AUTO`` both train steps share its model and
  optimizer (``make_step``), which halves the memory."""
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.benchmarks import mask_branch
  from deepmac_tf.export import exporter
  # pylint: enable=g-import-not-at-top
  if not _MASK_BRANCH.value or not mask_branch.is_deepmac(configs['model']):
    return {}
  if _MASKS_PER_IMAGE.value < 1:
    raise ConfigError('--masks_per_image: must be >= 1, got '
                      f'{_MASKS_PER_IMAGE.value}.')
  figures = {}
  deepmac = configs['model'].center_net.deepmac_mask_estimation
  if mask_branch.is_deepmac_detector(configs['model']):
    logging.info('benchmark: timing the mask branch at inference')
    figures['mask_branch_inference'] = mask_branch.inference_overhead(
        pipeline.model,
        exporter.find_checkpoint(model_dir, flag='--checkpoint_dir'), image,
        _MASKS_PER_IMAGE.value, _WARMUP_STEPS.value, _STEPS.value,
        every_slot=detect_fn if not deepmac.mask_detection_score_threshold
        else None)
    figures['mask_branch_overhead'] = figures['mask_branch_inference'][
        'mask_branch_overhead']
    _log_figure('mask_branch_inference', figures['mask_branch_inference'])
    logging.info('benchmark: counting the mask branch FLOPs at inference')
    figures['mask_branch_flops'] = mask_branch.inference_flops(
        pipeline.model, tuple(image.shape[1:3]), _MASKS_PER_IMAGE.value)
    figures['mask_branch_overhead_flops'] = figures['mask_branch_flops'][
        'mask_branch_overhead_flops']
    _log_figure('mask_branch_flops', figures['mask_branch_flops'])
  logging.info('benchmark: timing the train step, mask head on weighted '
               'instances vs on every slot')
  valid_only, all_slots = mask_branch.train_steps_by_slots(
      configs['model'], step_fn, make_step)
  figures['mask_branch_train_step'] = mask_branch.train_step_ratio(
      lambda variant: _build_train_step(tf, variant, batch)[0], configs,
      _WARMUP_STEPS.value, _STEPS.value, valid_only=valid_only,
      all_slots=all_slots)
  figures['train_step_valid_only_over_all_slots'] = figures[
      'mask_branch_train_step']['train_step_valid_only_over_all_slots']
  _log_figure('mask_branch_train_step', figures['mask_branch_train_step'])
  return figures


def _log_figure(name, figure):
  """Logs one finished figure as JSON, so a long run stopped before its
  end still leaves the figures it timed in its log."""
  logging.info('benchmark figure %s: %s', name,
               json.dumps(figure, sort_keys=True))


def _ratio(ours, theirs):
  return round(ours / theirs, 4) if theirs else None


def main(argv):
  del argv
  from deepmac_tf.benchmarks import timing  # pylint: disable=g-import-not-at-top
  pipeline, arch = _load_pipeline()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  if _REFERENCE.value and pipeline.model.faster_rcnn.HasField(
      'deepmarc_mask_head'):
    from deepmac_tf.benchmarks import model_garden_reference  # pylint: disable=g-import-not-at-top
    # Fails before any work for a head Model Garden lacks.
    model_garden_reference.convnet_variant(
        pipeline.model.faster_rcnn.deepmarc_mask_head.network_type)
  if _STEPS.value < 1 or _WARMUP_STEPS.value < 0:
    raise ConfigError('--steps must be >= 1 and --warmup_steps >= 0.')
  if _CHECKPOINT_DIR.value is not None:
    from deepmac_tf.export import exporter  # pylint: disable=g-import-not-at-top
    exporter.find_checkpoint(_CHECKPOINT_DIR.value, flag='--checkpoint_dir')
  tf_keras.utils.set_random_seed(_SEED.value)
  rss_start, peak_start = timing.current_rss_mib(), timing.peak_rss_mib()
  configs = config_lib.create_configs_from_pipeline_proto(pipeline)
  size = model_variables.input_size_from_configs(configs)

  input_figure, real_batch = _input_pipeline(tf, configs,
                                             _INPUT_BATCHES.value)
  if real_batch is not None and tuple(real_batch['image'].shape[1:3]) == size:
    batch, inputs, num_instances = real_batch, 'input_pipeline_batch', None
  else:
    batch, num_instances = _random_batch(configs, arch, size)
    inputs = 'random'
  image = batch['image'][:1]

  result = {
      'pipeline_config_path': os.path.abspath(_PIPELINE.value),
      'architecture': arch,
      'settings': {
          'config_override': _CONFIG_OVERRIDE.value,
          'batch_size': configs['train_config'].batch_size,
          'image_size': list(size), 'warmup_steps': _WARMUP_STEPS.value,
          'steps': _STEPS.value, 'inputs': inputs,
          'num_instances': (num_instances if num_instances is not None
                            else int(batch['groundtruth_boxes'].shape[1])),
          'groundtruth_slots': int(batch['groundtruth_boxes'].shape[1]),
          'inference_batch_size': 1, 'reference': _REFERENCE.value,
          'seed': _SEED.value,
          'inference_weights': (os.path.abspath(_CHECKPOINT_DIR.value)
                                if _CHECKPOINT_DIR.value else 'initial'),
      },
      'machine': _machine(tf, tf_keras),
      'input_pipeline': input_figure,
  }
  with tempfile.TemporaryDirectory(prefix='deepmac_benchmark_') as tmp:
    model_dir = os.path.join(tmp, 'train')
    logging.info('benchmark: timing the train step')
    result['train_step'], step_fn, make_step = _train_step(
        tf, configs, batch, model_dir)
    _log_figure('train_step', result['train_step'])
    result.update(_class_specific_masks(configs))
    logging.info('benchmark: timing inference')
    ours, saved, detect_fn, model = _inference(
        tf, pipeline, _CHECKPOINT_DIR.value or model_dir,
        os.path.join(tmp, 'export'), image)
    _log_figure('inference_checkpoint', ours)
    if _REFERENCE.value is None:
      model = None  # Memory for the next models.
      result.update(_mask_branch(tf, pipeline, configs, batch,
                                 _CHECKPOINT_DIR.value or model_dir, image,
                                 step_fn, make_step, detect_fn))
  result['inference_checkpoint'] = dict(ours, ms_per_image=ours['median_ms'])
  result['inference_saved_model'] = (
      dict(saved, ms_per_image=saved['median_ms']) if 'median_ms' in saved
      else saved)
  if _REFERENCE.value == 'model_garden':
    logging.info('benchmark: timing the Model Garden reference')
    theirs = _reference(tf, pipeline, batch, image, size,
                        {'inference': detect_fn, 'train_step': step_fn,
                         'model': model})
    result['reference_model_garden'] = theirs
    mine = theirs['ours_interleaved']
    from deepmac_tf.meta_architectures import mask_rcnn  # pylint: disable=g-import-not-at-top
    result['nms_version'] = {
        'ours': 'batched' if mask_rcnn.use_combined_nms(model.params)
                else 'v2',
        'model_garden': theirs['nms_version']}
    result['ratio_infer'] = _ratio(mine['inference']['median_ms'],
                                   theirs['inference']['median_ms'])
    result['ratio_train_step'] = _ratio(mine['train_step']['median_ms'],
                                        theirs['train_step']['median_ms'])
    result['num_params'] = {'ours': result['train_step']['num_params'],
                            'model_garden': theirs['num_params']}
  result['memory'] = {
      'peak_rss_mib': timing.peak_rss_mib(),
      'peak_rss_at_start_mib': peak_start,
      'peak_rss_delta_mib': round(timing.peak_rss_mib() - peak_start, 1),
      'rss_at_start_mib': rss_start, 'rss_at_end_mib': timing.current_rss_mib(),
  }
  text = json.dumps(result, indent=2, sort_keys=True)
  if _OUTPUT_JSON.value:
    with open(_OUTPUT_JSON.value, 'w', encoding='utf-8') as f:
      f.write(text + '\n')
    logging.info('Wrote %s', _OUTPUT_JSON.value)
  print(text)


if __name__ == '__main__':
  cli.run(main)
