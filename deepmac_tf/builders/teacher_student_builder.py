"""``teacher_student { ... }`` -> ``TeacherStudentParams`` (checked), for
``faster_rcnn.deepmarc_mask_head`` (``params_from_proto``: the block's head is
the student) and ``center_net.deepmac_mask_estimation``
(``deepmac_params_from_proto``: the block's head is the teacher). Every bad
setting is one ``ConfigError`` naming the field."""

from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import config_field_errors
from deepmac_tf.mask_heads import registry as mask_head_registry
from deepmac_tf.meta_architectures import teacher_student_params
from deepmac_tf.ops import pseudo_masks
from deepmac_tf.protos import teacher_student_pb2

_RULES = {
    teacher_student_pb2.TeacherStudent.THRESHOLD: pseudo_masks.THRESHOLD,
    teacher_student_pb2.TeacherStudent.INTERACTION: pseudo_masks.INTERACTION,
}


def _check_head(prefix, fields, name, num_init_channels, crop_size):
  """Checks one head's arguments; ``fields`` maps argument names
  (network_type, num_init_channels, mask_size) to fields under prefix."""
  with config_field_errors(prefix, fields):
    mask_head_registry.check_arguments(name, num_init_channels,
                                       mask_size=crop_size)
  if mask_head_registry.is_parameter_free(name):
    raise ConfigError(f'{prefix}.{fields["network_type"]}: {name!r} is '
                      'parameter-free; the teacher and the student need heads '
                      'with weights.')


def params_from_proto(block, block_field, crop_size):
  """The ``teacher_student`` of a mask-head block, or None when unset.

  Args:
    block: the message holding ``teacher_student`` (``DeepMarcMaskHead``).
    block_field: its dotted config path, for errors.
    crop_size: the crop the heads see (checked against each head).

  Returns:
    ``TeacherStudentParams`` or None.

  Raises:
    ConfigError: unknown heads, bad widths or weights; MaskX options or
      ``class_agnostic: true`` set beside it; a ``network_type`` that
      contradicts ``student_network_type``.
  """
  if not block.HasField('teacher_student'):
    return None
  field = f'{block_field}.teacher_student'
  t = block.teacher_student
  for other in ('weight_transfer', 'mlp_mask_branch'):
    if other in block.DESCRIPTOR.fields_by_name and block.HasField(other):
      raise ConfigError(f'{block_field}.{other}: cannot be combined with '
                        'teacher_student (the student is a plain '
                        'class-specific head).')
  if 'class_agnostic' in block.DESCRIPTOR.fields_by_name and (
      block.HasField('class_agnostic') and block.class_agnostic):
    raise ConfigError(f'{block_field}.class_agnostic: the teacher-student '
                      'student is class-specific; remove the field or set '
                      'it false.')
  student = student_network_type(block)
  if (block.HasField('network_type') and t.HasField('student_network_type')
      and block.network_type != t.student_network_type):
    raise ConfigError(
        f'{field}.student_network_type: "{t.student_network_type}" '
        f'contradicts {block_field}.network_type "{block.network_type}"; '
        'set one of them.')
  _check_head(block_field,
              {'network_type': 'teacher_student.teacher_network_type',
               'num_init_channels': 'teacher_student.teacher_num_init_channels',
               'mask_size': 'crop_size'},
              t.teacher_network_type, t.teacher_num_init_channels, crop_size)
  _check_head(block_field,
              {'network_type': 'teacher_student.student_network_type',
               'mask_size': 'crop_size'},
              student, block.num_init_channels, crop_size)
  return _params(t, field, t.teacher_network_type,
                 t.teacher_num_init_channels, student)


def _params(t, field, teacher, teacher_num_init_channels, student):
  """The checked loss weights and the params of a ``TeacherStudent``."""
  for name in ('teacher_loss_weight', 'student_loss_weight'):
    if getattr(t, name) < 0:
      raise ConfigError(f'{field}.{name}: must be >= 0, got '
                        f'{getattr(t, name)}.')
  return teacher_student_params.TeacherStudentParams(
      teacher_network_type=teacher,
      teacher_num_init_channels=teacher_num_init_channels,
      student_network_type=student,
      pseudo_mask_rule=_RULES[t.pseudo_mask_rule],
      teacher_loss_weight=t.teacher_loss_weight,
      student_loss_weight=t.student_loss_weight)


def _agreeing(block, block_field, t, own_name, teacher_name):
  """The Deep-MAC head's ``own_name`` value, from ``teacher_student.
  teacher_name`` when only that is set; ConfigError when both are set and
  differ."""
  own = getattr(block, own_name)
  if not t.HasField(teacher_name):
    return own
  given = getattr(t, teacher_name)
  if block.HasField(own_name) and given != own:
    raise ConfigError(
        f'{block_field}.teacher_student.{teacher_name}: {given!r} '
        f'contradicts {block_field}.{own_name} {own!r} (on Deep-MAC the '
        'teacher is the Deep-MAC head); set one of them.')
  return given


def deepmac_params_from_proto(block, block_field):
  """The ``teacher_student`` of ``deepmac_mask_estimation``, or None.

  The Deep-MAC head is the teacher: ``teacher_network_type`` /
  ``teacher_num_init_channels`` stand for ``network_type`` /
  ``num_init_channels`` (either may be set; both set must agree). The
  student is a class-specific catalogue head of the same width on the
  same inputs, at ``mask_size``; ``deepmac_builder.validate_deepmac_params``
  checks it (``check_deepmac_student``) with the Deep-MAC head.

  Args:
    block: a ``CenterNet.DeepMACMaskEstimation`` message.
    block_field: its dotted config path, for errors.

  Returns:
    ``TeacherStudentParams`` (teacher_* = the Deep-MAC head) or None.

  Raises:
    ConfigError: contradicting teacher fields or negative loss weights.
  """
  if not block.HasField('teacher_student'):
    return None
  field = f'{block_field}.teacher_student'
  t = block.teacher_student
  teacher = _agreeing(block, block_field, t, 'network_type',
                      'teacher_network_type')
  width = _agreeing(block, block_field, t, 'num_init_channels',
                    'teacher_num_init_channels')
  return _params(t, field, teacher, width, t.student_network_type)


def check_deepmac_student(block_field, params):
  """Checks the student of Deep-MAC ``params`` (``DeepMACParams`` with
  ``teacher_student``): a catalogue head with weights at ``mask_size``,
  crop-mode masks."""
  if params.predict_full_resolution_masks:
    raise ConfigError(
        f'{block_field}.predict_full_resolution_masks: teacher_student needs '
        'crop-mode masks (the pseudo-mask rules run in the crop frame); set '
        'it false or remove teacher_student.')
  _check_head(block_field,
              {'network_type': 'teacher_student.student_network_type',
               'num_init_channels': 'num_init_channels',
               'mask_size': 'mask_size'},
              params.teacher_student.student_network_type,
              params.num_init_channels, params.mask_size)


def student_network_type(block):
  """The mask head the block builds: ``teacher_student.
  student_network_type`` when set, else the block's ``network_type``."""
  if block.HasField('teacher_student') and (
      block.teacher_student.HasField('student_network_type')):
    return block.teacher_student.student_network_type
  return block.network_type
