"""One home for turning the library's Python into TensorFlow graphs: always
without AutoGraph.

The library writes graph control flow explicitly (``tf.cond``,
``tf.while_loop``, ``tf.map_fn``, masks and ``tf.where``) and never branches
in Python on a tensor's value, so AutoGraph's source-to-source conversion of
every function it traces (each Keras layer's ``call``, the input pipeline's
decode / augment / pad functions) is pure start-up cost. Measured on 2 CPU
cores, a 2-step training run of the tiny synthetic pipeline: 54 CPU s with
AutoGraph, 34 without; the first input-pipeline build of a process 10.8 vs
4.8 CPU s (the AST passes were most of it).

Turning AutoGraph off in a ``tf.function`` also turns it off for the Keras
layers it calls (they honour the enclosing function's setting), for
``strategy.run`` and ``tf.map_fn`` bodies. Code that did branch in Python on
a tensor would fail while tracing ("using a tf.Tensor as a Python bool"),
so a mistake shows at the first trace, never silently.

Use :func:`function` wherever the library would write ``tf.function`` and
:func:`dataset_function` for every function given to ``tf.data``
transformations (``map``, ``filter``, ``interleave``, ``scan``).
"""

import functools

import tensorflow as tf


def function(python_function=None, **kwargs):
  """``tf.function`` without AutoGraph; same arguments, usable bare or as
  ``@function(jit_compile=True, ...)``."""
  if 'autograph' in kwargs:
    raise TypeError('graph_functions.function never converts with '
                    'AutoGraph; do not pass autograph=')
  if python_function is None:
    return functools.partial(function, **kwargs)
  return tf.function(python_function, autograph=False, **kwargs)


def dataset_function(python_function):
  """``python_function`` marked so that ``tf.data`` traces it as written
  (no AutoGraph conversion of it or of anything it calls)."""
  return tf.autograph.experimental.do_not_convert(python_function)
