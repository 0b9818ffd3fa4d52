"""Bad-input corpus, part 5: SavedModel folders given to the inference API
and ``segment.py`` (``--saved_model_dir``): missing, damaged, truncated, or
not an object-detection export. Each is one DataError naming the folder.
The SavedModels here are tiny ``tf.Module``s (no detection model is built).
"""

import os
import shutil

import pytest
import tensorflow as tf

from deepmac_tf.errors import DataError
from deepmac_tf.inference import DeepMacPredictor


class _Doubler(tf.Module):
  """A SavedModel that is not an object-detection export."""

  def __init__(self):
    super().__init__()
    self.scale = tf.Variable(tf.fill([1024], 2.0))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name='x')],
               autograph=False)
  def double(self, x):
    return {'y': x * self.scale[0]}


@pytest.fixture(scope='module')
def other_model(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('other') / 'saved_model')
  module = _Doubler()
  tf.saved_model.save(module, path, signatures={'serving_default':
                                                module.double})
  return path


def test_folder_without_saved_model_pb(tmp_path):
  with pytest.raises(DataError) as raised:
    DeepMacPredictor(str(tmp_path))
  assert str(raised.value) == (
      f"--saved_model_dir: no saved_model.pb in {tmp_path} (pass the "
      "exporter's output_directory/saved_model).")


def test_not_an_object_detection_export(other_model):
  with pytest.raises(DataError, match='no signature takes "input_tensor"') as (
      raised):
    DeepMacPredictor(other_model)
  assert str(raised.value).startswith(other_model)


def test_damaged_saved_model_pb(tmp_path):
  (tmp_path / 'saved_model.pb').write_bytes(b'not a protobuf at all')
  with pytest.raises(DataError, match=r'--saved_model_dir: cannot load .* as '
                     r'a SavedModel \(') as raised:
    DeepMacPredictor(str(tmp_path))
  assert str(tmp_path) in str(raised.value)


def test_truncated_variables(tmp_path, other_model):
  copy = str(tmp_path / 'saved_model')
  shutil.copytree(other_model, copy)
  data = [name for name in os.listdir(os.path.join(copy, 'variables'))
          if '.data-' in name][0]
  path = os.path.join(copy, 'variables', data)
  with open(path, 'rb') as f:
    head = f.read(100)
  with open(path, 'wb') as f:
    f.write(head)
  with pytest.raises(DataError, match=r'--saved_model_dir: cannot load .* as '
                     r'a SavedModel \(') as raised:
    DeepMacPredictor(copy)
  assert copy in str(raised.value)
