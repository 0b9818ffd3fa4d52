"""Run a mask head only on the box slots that need a mask.

Meta-architectures keep boxes in padded slots, [B, M, ...]: groundtruth
padded to ``max_number_of_boxes``, ``max_detections`` detection slots. The
mask head is the costly part of Deep-MAC and Deep-MARC (HG-52 costs about
2 GMAC per crop), and most slots need no mask: padding, instances whose class
may not train masks (mask weight 0), detections below the score threshold.
``apply_to_selected_slots`` is the ONE mechanism every meta-architecture uses
to skip them:

1. gather the rows of the selected slots, [B, M, ...] -> [n, ...]
   (row-major: image by image, slot by slot);
2. run the head on the n rows (n may be 0: mask heads are empty-batch safe,
   ``layers.empty_batch``; with one replica an empty selection skips the
   head altogether, so batch-norm statistics never see a stand-in row);
3. scatter the n results back into their slots, zeros elsewhere.

The static-shape fallback (``all_slots=True``: what TPUs need, since the
gather makes n dynamic) runs the head on all B * M slots and zeroes the
unselected ones. Both forms return the same values at the selected slots
and zeros at the others, except that a head with batch norm in training
mode normalizes over the rows it sees (the selected ones, or every slot in
the fallback). ``all_slots=None`` picks the fallback when a TPU is visible
(``static_shapes_by_default``).

Example (Deep-MARC, one class-agnostic mask per detection)::

  logits = apply_to_selected_slots(
      lambda crops: head(crops, training=False)[..., 0],
      selected=tf.sequence_mask(num_detections, max_detections),
      slot_inputs=crops)                    # [B, K, S, S, C] -> [B, K, S', S']
"""

import contextlib

import tensorflow as tf

_FORCED_DEFAULTS = []


def static_shapes_by_default():
  """True when a TPU is visible: it needs the all-slots (static) form.

  Read at trace time, like ``mask_rcnn.use_combined_nms``; configs can
  force either form (Deep-MAC's ``mask_head_slots``), and
  ``default_static_shapes`` overrides the device rule in a scope.
  """
  if _FORCED_DEFAULTS:
    return _FORCED_DEFAULTS[-1]
  return bool(tf.config.list_logical_devices('TPU'))


@contextlib.contextmanager
def default_static_shapes(all_slots):
  """Within the scope, ``all_slots=None`` callers take ``all_slots``.

  Counts while a function is traced (e.g. to time the TPU form of a model
  on CPU: trace its step inside the scope, then call it anywhere).
  """
  _FORCED_DEFAULTS.append(bool(all_slots))
  try:
    yield
  finally:
    _FORCED_DEFAULTS.pop()


def _single_replica():
  """True outside ``tf.distribute`` or with one replica in sync.

  With several replicas the head must run on every replica (synchronized
  batch norm all-reduces inside it), so an empty selection is not skipped.
  """
  context = tf.distribute.get_replica_context()
  return context is None or context.num_replicas_in_sync == 1


def _run_head_skipping_empty(head_fn, rows, num_rows, skip_if_empty):
  """head_fn(*rows), or zeros without calling it when num_rows == 0.

  Only a run-time-empty selection in a graph is skipped (``tf.cond``); a
  statically empty one (eager) goes to the head, whose empty-batch path
  keeps batch-norm statistics put.
  """
  static_rows = rows[0].shape[0] if rows else None
  if (not skip_if_empty or static_rows is not None or
      not _single_replica()):
    return head_fn(*rows)
  traced = []

  def run():
    traced.append(head_fn(*rows))
    return traced[0]

  def skip():
    # tf.cond traces the true branch first: same structure, dtypes and
    # trailing dims as the head's output, zero rows.
    def empty_like(t):
      if not t.shape[1:].is_fully_defined():
        raise ValueError(
            'apply_to_selected_slots: skip_if_empty needs head outputs with '
            f'static trailing dims, got {t.shape}; pass skip_if_empty=False.')
      return tf.zeros([0] + t.shape[1:].as_list(), t.dtype)
    return tf.nest.map_structure(empty_like, traced[0])

  outputs = tf.cond(num_rows > 0, run, skip)
  for output, head_output in zip(tf.nest.flatten(outputs),
                                 tf.nest.flatten(traced[0])):
    output.set_shape([None] + head_output.shape[1:])
  return outputs


def apply_to_selected_slots(head_fn, selected, slot_inputs, all_slots=None,
                            skip_if_empty=True):
  """Runs ``head_fn`` on the selected slots only; zeros at the others.

  Args:
    head_fn: callable taking one [n, ...] tensor per leaf of
      ``slot_inputs`` (same order as ``tf.nest.flatten``) and returning a
      tensor or a nest of tensors, each [n, ...]. n may be 0. It must not
      depend on rows other than its own except through batch statistics.
    selected: bool [B, M]: which slots need the head (e.g. mask weight > 0,
      a real detection, a detection score above a threshold).
    slot_inputs: a tensor or a nest of tensors, each [B, M, ...] (crops,
      embeddings, boxes, classes, image indices, ...).
    all_slots: True = static-shape fallback (the head on all B * M slots,
      unselected ones zeroed afterwards); False = gather / scatter; None =
      ``static_shapes_by_default()`` (all slots when a TPU is visible).
    skip_if_empty: in a graph with one replica, do not call the head at all
      when no slot is selected at run time (``tf.cond``). Needs head outputs
      with static trailing dims; pass False otherwise.

  Returns:
    head_fn's structure, each tensor [B, M, ...]: the head's output at the
    selected slots, zeros at the others (their gradient is zero too).
  """
  if all_slots is None:
    all_slots = static_shapes_by_default()
  selected = tf.convert_to_tensor(selected, tf.bool)
  leaves = tf.nest.flatten(slot_inputs)
  batch_slots = tf.shape(selected)

  if all_slots:
    rows = [tf.reshape(t, tf.concat([[-1], tf.shape(t)[2:]], 0))
            for t in leaves]
    rows = [_keep_static_tail(r, t) for r, t in zip(rows, leaves)]
    outputs = head_fn(*rows)

    def to_slots(output):
      tail = output.shape[1:]
      output = _with_slots(tf.reshape(output, tf.concat(
          [batch_slots, tf.shape(output)[1:]], 0)), selected, tail)
      keep = tf.reshape(selected, tf.concat(
          [batch_slots, tf.ones([tail.rank], tf.int32)], 0))
      return tf.where(keep, output, tf.zeros_like(output))

    return tf.nest.map_structure(to_slots, outputs)

  index = tf.where(selected)  # [n, 2] (image, slot), row-major.
  rows = [_keep_static_tail(tf.gather_nd(t, index), t) for t in leaves]
  outputs = _run_head_skipping_empty(head_fn, rows, tf.shape(index)[0],
                                     skip_if_empty)

  def scatter(output):
    shape = tf.concat([batch_slots, tf.shape(output)[1:]], 0)
    return _with_slots(tf.scatter_nd(index, output, tf.cast(shape, tf.int64)),
                       selected, output.shape[1:])

  return tf.nest.map_structure(scatter, outputs)


def _keep_static_tail(rows, slot_tensor):
  """Restores the static trailing dims of [B, M, ...] on [n, ...] rows."""
  rows.set_shape([None] + slot_tensor.shape[2:])
  return rows


def _with_slots(output, selected, tail):
  """Sets the static shape [B, M] + tail of a slot output where known."""
  output.set_shape(selected.shape[:2].concatenate(tail))
  return output
