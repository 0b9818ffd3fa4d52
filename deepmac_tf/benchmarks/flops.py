"""Floating-point operation counts of traced graphs: costs that do not move
with machine load.

Timings on a shared CPU move by 2x; a graph's FLOP count is exact and the
same on every machine. ``function_flops`` traces a function (no run) and sums
TensorFlow's registered per-op FLOP statistics (the ones
``tf.compat.v1.profiler`` reports: convolutions, matrix products, element-wise
arithmetic) over the ops the outputs depend on: ops a ``tf.function`` prunes
at run time (e.g. heads of earlier backbone stages whose outputs inference
does not use) are not counted. Ops with a shape unknown at trace time (a
batch gathered by value) count 0, so compare graphs whose counted parts have
static shapes.
"""

from tensorflow.python.framework import ops as tf_ops  # pylint: disable=g-direct-tensorflow-import

from deepmac_tf import graph_functions


def _ops_reaching(outputs):
  """Every op the ``outputs`` tensors depend on (data and control edges)."""
  seen, stack = set(), [t.op for t in outputs]
  while stack:
    op = stack.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return seen


def graph_flops(concrete_function):
  """FLOPs of one call of a traced ``ConcreteFunction`` (see module doc)."""
  graph = concrete_function.graph
  total = 0
  for name in _ops_reaching(concrete_function.outputs):
    op = graph.get_operation_by_name(name)
    try:
      stats = tf_ops.get_stats_for_node_def(graph, op.node_def, 'flops')
    except ValueError:  # A shape the statistic needs is unknown.
      continue
    total += stats.value or 0
  return int(total)


def function_flops(fn, *input_signature):
  """FLOPs of ``fn`` traced (never run) on ``input_signature``.

  Args:
    fn: a Python function of tensors returning a tensor or a nest of them.
    *input_signature: ``tf.TensorSpec`` of each argument (static shapes for
      an exact count).

  Returns:
    int: floating-point operations of one call.
  """
  traced = graph_functions.function(fn)
  return graph_flops(traced.get_concrete_function(*input_signature))
