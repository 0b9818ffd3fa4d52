"""Settings of the teacher-student mask heads (Zhao et al., "Rethinking Mask
Heads for Partially Supervised Instance Segmentation"; spec ``paper.md``
section 3), as plain data, for every meta-architecture that offers them.
The builders fill it from a ``TeacherStudent`` message."""

import dataclasses

from deepmac_tf.ops import pseudo_masks


@dataclasses.dataclass(frozen=True)
class TeacherStudentParams:
  """A class-agnostic teacher beside the class-specific student.

  Attributes:
    teacher_network_type: catalogue head of the teacher (trained on the
      seen classes' masks; never run at inference, never exported).
    teacher_num_init_channels: the teacher's width.
    student_network_type: catalogue head of the student (class-specific,
      trained on every instance; the deployed mask head).
    pseudo_mask_rule: ``pseudo_masks.THRESHOLD`` or ``INTERACTION``.
    teacher_loss_weight: weight of the teacher's mask loss.
    student_loss_weight: weight of the student's mask loss.
  """
  teacher_network_type: str = 'mask_rcnn_fcn'
  teacher_num_init_channels: int = 256
  student_network_type: str = 'mask_rcnn_fcn'
  pseudo_mask_rule: str = pseudo_masks.THRESHOLD
  teacher_loss_weight: float = 1.0
  student_loss_weight: float = 1.0

  def __post_init__(self):
    object.__setattr__(self, 'pseudo_mask_rule',
                       pseudo_masks.check_rule(self.pseudo_mask_rule))
    if self.teacher_num_init_channels < 1:
      raise ValueError('teacher_num_init_channels must be positive, got '
                       f'{self.teacher_num_init_channels}.')
    if self.teacher_loss_weight < 0 or self.student_loss_weight < 0:
      raise ValueError('loss weights must be >= 0.')
