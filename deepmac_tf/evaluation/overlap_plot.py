"""The overlap-analysis figure written beside the metrics JSON: mask AP and
box-prompted mask IoU per overlap bin, and where false-positive pixels land
(matplotlib, Agg backend; only panels with numbers are drawn)."""

import os

from deepmac_tf.evaluation import box_prompted_overlap
from deepmac_tf.evaluation import overlap_analysis

_GROUPS = (overlap_analysis.UNSEEN_GROUP, overlap_analysis.SEEN_GROUP,
           overlap_analysis.ALL_GROUP)


def _per_bin(metrics, group, stat, labels):
  values = [metrics.get(f'{overlap_analysis.PREFIX}/{group}/{stat} ({label})')
            for label in labels]
  if all(v is None for v in values):
    return None
  return [float('nan') if v is None or v < 0 else 100.0 * v for v in values]


def write_overlap_plot(metrics, path, title='Overlap analysis'):
  """Draws the figure to ``path`` (PNG); returns the path, or None when the
  metrics hold no overlap-analysis number."""
  labels = [label for label, _, _ in overlap_analysis.bins()]
  panels = []
  for stat, axis_name in (('mAP', 'mask AP (detections)'),
                          ('mIoU', 'mask IoU at groundtruth boxes')):
    lines = {g: _per_bin(metrics, g, stat, labels) for g in _GROUPS}
    lines = {g: v for g, v in lines.items() if v is not None}
    if lines:
      panels.append(('line', axis_name, lines))
  fp = {}
  for group in _GROUPS:
    shares = [metrics.get(f'{box_prompted_overlap.FP_PREFIX}/{group}/'
                          f'{kind}_fraction')
              for kind in box_prompted_overlap.KINDS]
    if all(s is not None and s >= 0 for s in shares):
      fp[group] = [100.0 * s for s in shares]
  if fp:
    panels.append(('bars', 'false-positive pixels (%)', fp))
  if not panels:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axes = plt.subplots(1, len(panels),
                              figsize=(6 * len(panels), 4.2), squeeze=False)
  for axis, (kind, name, series) in zip(axes[0], panels):
    if kind == 'line':
      for group, values in series.items():
        axis.plot(range(len(labels)), values, marker='o', label=group)
      axis.set_xticks(range(len(labels)))
      axis.set_xticklabels([l.replace('overlap ', '') for l in labels],
                           rotation=45, ha='right', fontsize=8)
      axis.set_xlabel('overlap O = max_j area(box ∩ mask_j) / area(box)')
    else:
      bottoms = [0.0] * len(series)
      for k, kind_name in enumerate(box_prompted_overlap.KINDS):
        heights = [shares[k] for shares in series.values()]
        axis.bar(list(series), heights, bottom=bottoms, label=kind_name)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axis.set_ylabel(name)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
  figure.suptitle(title)
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, dpi=90)
  plt.close(figure)
  return path
