"""graph_functions: the library traces without AutoGraph, everywhere."""

import pathlib
import re

import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import graph_functions

REPO = pathlib.Path(__file__).resolve().parents[1]


def _branches_in_python(x):
  if tf.reduce_sum(x) > 0:  # Needs AutoGraph to become a tf.cond.
    return x
  return -x


def test_function_does_not_convert_python_control_flow():
  with pytest.raises(TypeError, match='Python bool|tf.Tensor'):
    graph_functions.function(_branches_in_python)(tf.ones([2]))
  # tf.function's default would have converted it.
  assert float(tf.function(_branches_in_python)(-tf.ones([2]))[0]) == 1.0


def test_function_takes_tf_function_arguments_bare_or_called():
  square = graph_functions.function(lambda x: x * x,
                                    input_signature=[tf.TensorSpec([2])])
  assert square(tf.constant([2.0, 3.0])).numpy().tolist() == [4.0, 9.0]

  @graph_functions.function(reduce_retracing=True)
  def double(x):
    return 2 * x

  assert double(tf.constant(2)).numpy() == 4
  with pytest.raises(TypeError, match='autograph'):
    graph_functions.function(lambda x: x, autograph=True)


def test_keras_layers_inside_are_not_converted():

  class Branching(tf_keras.layers.Layer):

    def call(self, x):
      return _branches_in_python(x)

  layer = Branching()
  with pytest.raises(TypeError, match='Python bool|tf.Tensor'):
    graph_functions.function(layer)(tf.ones([2]))


def test_dataset_function_is_traced_as_written():
  dataset = tf.data.Dataset.from_tensors(tf.ones([2]))
  with pytest.raises(TypeError, match='Python bool|tf.Tensor'):
    dataset.map(graph_functions.dataset_function(_branches_in_python))
  doubled = dataset.map(graph_functions.dataset_function(lambda x: 2 * x))
  assert next(iter(doubled)).numpy().tolist() == [2.0, 2.0]


def test_library_and_scripts_trace_only_through_graph_functions():
  """Every tf.function the library or a script creates goes through
  graph_functions.function (one home for the AutoGraph choice)."""
  pattern = re.compile(r'(^|[^.\w`])tf\.function\s*\(|@tf\.function\b')
  offenders = []
  for path in sorted(list((REPO / 'deepmac_tf').rglob('*.py')) +
                     list((REPO / 'scripts').glob('*.py'))):
    if path.name in ('graph_functions.py',) or path.name.endswith('_pb2.py'):
      continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
      code = line.split('#', 1)[0]
      if pattern.search(code) and '``' not in code:
        offenders.append(f'{path.relative_to(REPO)}:{number}: {line.strip()}')
  assert not offenders, '\n'.join(offenders)
