"""SavedModel export (the OD API's ``exporter_lib_v2.export_inference_graph``).

``export_inference_graph`` builds the model with ``is_training=False``,
creates its variables with one forward pass, restores
``tf.train.Checkpoint(model=model)`` from the latest checkpoint of the
training directory (optimizer and step are ignored), checks that every model
variable was found, and writes, atomically::

  output_directory/
    checkpoint/ckpt-0.*        tf.train.Checkpoint(model=model)
    saved_model/               signatures (see serving_module)
      assets.extra/export_metadata.json   input type, signatures, sizes
      assets.extra/label_map.pbtxt        when the config's label map exists
    pipeline.config            the config used (overrides applied)

A failure at any step leaves ``output_directory`` as it was.
"""

import json
import os
import shutil

from absl import logging
import tensorflow as tf

from deepmac_tf.builders import checkpoint_layout
from deepmac_tf.builders import model_builder
from deepmac_tf.builders import model_variables
from deepmac_tf import config as config_lib
from deepmac_tf import file_checks
from deepmac_tf.config.config_util import PIPELINE_CONFIG_NAME
from deepmac_tf.data import image_resizer as image_resizer_lib
from deepmac_tf.errors import ConfigError
from deepmac_tf.export import atomic_dir
from deepmac_tf.export import serving_inputs
from deepmac_tf.export import serving_module

METADATA_DIR = 'assets.extra'
METADATA_FILE = 'export_metadata.json'
LABEL_MAP_FILE = 'label_map.pbtxt'
CHECKPOINT_DIR = 'checkpoint'
SAVED_MODEL_DIR = 'saved_model'

_DUMMY_SIZE = 64


def build_model_and_resizer(model_config):
  """Builds the inference model and its image resizer.

  Returns:
    (model, ``ImageResizer``).

  Raises:
    ConfigError: the model or resizer cannot be built (naming the field).
  """
  model = model_builder.build(model_config, is_training=False)
  arch, _ = config_lib.get_model_message(model_config)
  resizer = image_resizer_lib.build(
      config_lib.get_image_resizer_config(model_config),
      f'model.{arch}.image_resizer')
  return model, resizer


def create_variables(model, resizer):
  """One forward pass on a black image, so every variable exists
  (``model_variables.build_model_variables`` at the resizer's size)."""
  size = resizer.output_size or (resizer.min_dimension or _DUMMY_SIZE,) * 2
  model_variables.build_model_variables(model, int(size[0]), int(size[1]))


def find_checkpoint(trained_checkpoint_dir, flag='--trained_checkpoint_dir'):
  """Latest checkpoint prefix of a training directory (or a prefix itself).

  Raises:
    ConfigError: the folder is missing or holds no checkpoint (naming
      ``flag``, the user-facing setting it came from).
  """
  path = os.fspath(trained_checkpoint_dir or '')
  if not path:
    raise ConfigError(f'{flag}: must be set (the training model_dir).')
  if tf.io.gfile.exists(path + '.index'):
    return path
  if not tf.io.gfile.isdir(path):
    raise ConfigError(f'{flag}: {path} does not exist.')
  latest = tf.train.latest_checkpoint(path)
  if latest is None:
    raise ConfigError(f'{flag}: no checkpoint in {path} (expected ckpt-N.index '
                      'files and a "checkpoint" file written by training).')
  return latest


def restore_model(model, checkpoint_path):
  """Restores the model's variables from a training checkpoint.

  Returns:
    The checkpoint's training step, or None when it has none.

  Raises:
    ConfigError: the checkpoint is not one of this model.
  """
  where = f'checkpoint {checkpoint_path}'
  checkpoint_layout.log_ignored_odapi_objects(checkpoint_path)
  try:
    status = tf.train.Checkpoint(model=model).restore(checkpoint_path)
    status.expect_partial()  # The optimizer and step are not exported.
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ''
    raise ConfigError(
        f'{where} does not match the model built from the pipeline config '
        f'(was it written by training with this config?): {first}') from None
  reader = tf.train.load_checkpoint(checkpoint_path)
  key = 'step/.ATTRIBUTES/VARIABLE_VALUE'
  if reader.has_tensor(key):
    return int(reader.get_tensor(key))
  return None


def _label_map_path(pipeline_config):
  readers = list(pipeline_config.eval_input_reader) + [
      pipeline_config.train_input_reader]
  for reader in readers:
    if reader.label_map_path and os.path.isfile(reader.label_map_path):
      return reader.label_map_path
  return None


def _metadata(module, model, resizer, checkpoint_path, step):
  params = getattr(model, 'deepmac_params', None)
  signatures = {}
  for name, input_type in module.signature_input_types().items():
    inputs = {serving_inputs.INPUT_TENSOR: serving_inputs.EXPECTED[input_type]}
    if input_type == serving_inputs.IMAGE_AND_BOXES_TENSOR:
      inputs[serving_inputs.BOXES] = serving_inputs.EXPECTED_BOXES
      if serving_module.needs_box_classes(model):
        inputs[serving_inputs.CLASSES] = serving_inputs.EXPECTED_CLASSES
    signatures[name] = {'input_type': input_type, 'inputs': inputs}
  mask_size = None
  if params is not None:
    mask_size = (params.postprocess_crop_size
                 if params.predict_full_resolution_masks else params.mask_size)
  return {
      'format': 'deepmac_tf export 1',
      'input_type': module.input_type,
      'signatures': signatures,
      'num_classes': int(model.num_classes),
      'label_id_offset': serving_module.LABEL_ID_OFFSET,
      'mask_size': mask_size,
      'detector_free': serving_module.is_detector_free(model),
      'add_reframed_masks': bool(module._add_reframed),  # pylint: disable=protected-access
      'model_input_size': (list(resizer.output_size)
                           if resizer.output_size else None),
      'checkpoint': os.path.abspath(checkpoint_path),
      'checkpoint_step': step,
  }


def export_inference_graph(input_type, pipeline_config, trained_checkpoint_dir,
                           output_directory, add_reframed_masks=False):
  """Exports the latest checkpoint as a SavedModel (see the module doc).

  Args:
    input_type: one of ``serving_inputs.INPUT_TYPES``.
    pipeline_config: ``TrainEvalPipelineConfig`` (overrides applied).
    trained_checkpoint_dir: training model_dir (or a checkpoint prefix).
    output_directory: where to write checkpoint/, saved_model/,
      pipeline.config.
    add_reframed_masks: add ``detection_masks_reframed`` (image-space uint8
      masks) to every signature.

  Returns:
    dict with the written paths (``saved_model``, ``checkpoint``,
    ``pipeline_config``) and ``checkpoint_step``.

  Raises:
    ConfigError: bad input type, config, checkpoint dir or output folder.
  """
  if input_type not in serving_inputs.INPUT_TYPES:
    raise ConfigError(f'--input_type: unknown value {input_type!r}; expected '
                      f'one of {list(serving_inputs.INPUT_TYPES)}.')
  if not output_directory:
    raise ConfigError('--output_directory: must be set.')
  # Up front: an unwritable folder fails before the model is built.
  atomic_dir.prepare(output_directory)
  checkpoint_path = find_checkpoint(trained_checkpoint_dir)
  # The model the checkpoint needs (e.g. the OD API's 1x3 embedding heads).
  model, resizer = build_model_and_resizer(
      checkpoint_layout.model_config_for_checkpoint(pipeline_config.model,
                                                    checkpoint_path))
  # Fails fast (before any forward pass) for an input type the model lacks.
  serving_module.check_input_type(model, input_type)
  create_variables(model, resizer)
  step = restore_model(model, checkpoint_path)
  logging.info('Restored %s (step %s).', checkpoint_path, step)
  module = serving_module.DeepMacServingModule(
      model, resizer, input_type, add_reframed_masks=add_reframed_masks)
  signatures = module.signatures()

  output_directory = os.path.abspath(os.fspath(output_directory))
  # A full disk or lost permission names the target, not the hidden staging
  # folder the files go to first.
  with file_checks.writing_to(output_directory), (
      atomic_dir.staged_directory(output_directory)) as staging:
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model),
        os.path.join(staging, CHECKPOINT_DIR), max_to_keep=1)
    manager.save(checkpoint_number=0)
    saved_model_dir = os.path.join(staging, SAVED_MODEL_DIR)
    tf.saved_model.save(module, saved_model_dir, signatures=signatures)
    extra = os.path.join(saved_model_dir, METADATA_DIR)
    os.makedirs(extra, exist_ok=True)
    metadata = _metadata(module, model, resizer, checkpoint_path, step)
    label_map = _label_map_path(pipeline_config)
    if label_map:
      shutil.copyfile(label_map, os.path.join(extra, LABEL_MAP_FILE))
    else:
      logging.warning('No readable label_map_path in the config: the export '
                      'has no class names (pass --label_map_path to '
                      'inference).')
    metadata['label_map'] = LABEL_MAP_FILE if label_map else None
    with open(os.path.join(extra, METADATA_FILE), 'w', encoding='utf-8') as f:
      json.dump(metadata, f, indent=2, sort_keys=True)
    config_lib.save_pipeline_config(pipeline_config, staging)
  return {
      'saved_model': os.path.join(output_directory, SAVED_MODEL_DIR),
      'checkpoint': os.path.join(output_directory, CHECKPOINT_DIR),
      'pipeline_config': os.path.join(output_directory, PIPELINE_CONFIG_NAME),
      'checkpoint_step': step,
  }
