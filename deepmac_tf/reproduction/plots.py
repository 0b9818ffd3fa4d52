"""The PNG figures of a reproduction experiment (matplotlib, Agg backend).

* ``seen_unseen.png``: per variant, seen and unseen bars (mean over seeds),
  error bars (std) and one dot per seed; dashed lines: the inscribed-ellipse
  prior (``priors``), when the experiment scores mIoU;
* ``examples.png``: the same unseen-class instances (columns) segmented by
  every variant (rows, first seed), under the groundtruth row; each cell is
  the groundtruth box's crop with the mask (threshold 0.5) tinted over it;
* ``per_class.png``: mean per class and variant, unseen classes shaded.
"""

import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # pylint: disable=g-import-not-at-top,wrong-import-position

SEEN_UNSEEN_PNG = 'seen_unseen.png'
EXAMPLES_PNG = 'examples.png'
PER_CLASS_PNG = 'per_class.png'
_SEEN_COLOUR = '#4c72b0'
_UNSEEN_COLOUR = '#dd8452'
_CELL = 64


def seen_unseen_bars(path, results):
  """Bars with seed spread, seen vs unseen, one group per variant."""
  rows = results['summary']
  labels = results['labels']
  fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 1.5) + 2.6,
                                  3.8))
  x = np.arange(len(rows))
  width = 0.38
  for offset, key, colour, title in ((-width / 2, 'seen', _SEEN_COLOUR,
                                      'seen classes'),
                                     (width / 2, 'unseen', _UNSEEN_COLOUR,
                                      'unseen classes')):
    means = [r[f'{key}_mean'] or 0.0 for r in rows]
    stds = [r[f'{key}_std'] or 0.0 for r in rows]
    ax.bar(x + offset, means, width, yerr=stds, capsize=3, color=colour,
           label=title, alpha=0.85)
    for i, row in enumerate(rows):
      values = [r[key] for r in results['runs']
                if r['name'] == row['name'] and r[key] is not None]
      ax.plot(np.full(len(values), x[i] + offset), values, 'k.',
              markersize=4)
  ellipse = (results.get('priors') or {}).get('ellipse')
  if ellipse:
    for key, colour in (('seen', _SEEN_COLOUR), ('unseen', _UNSEEN_COLOUR)):
      if ellipse[key] is not None:
        ax.axhline(ellipse[key], color=colour, linestyle='--', linewidth=1,
                   label=f'{key}: ellipse inscribed\nin the box (no '
                   'training)')
  ax.set_xticks(x)
  ax.set_xticklabels([labels[r['name']] for r in rows], rotation=20,
                     ha='right', fontsize=8)
  ax.set_ylabel(results['metric_label'], fontsize=8)
  ax.set_ylim(0, 100)
  ax.set_title(f'{results["experiment"]} ({results["paper_ref"]})',
               fontsize=9)
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _cell(image, box, mask, colour):
  """The box's crop of ``image`` at _CELL px with ``mask`` tinted over it.

  Args:
    image: [H, W, 3] uint8.
    box: [4] normalized ymin, xmin, ymax, xmax.
    mask: [h, w] box-relative (any size) or None.
    colour: RGB tint.
  """
  height, width = image.shape[:2]
  y0, x0 = int(box[0] * height), int(box[1] * width)
  y1 = max(int(np.ceil(box[2] * height)), y0 + 1)
  x1 = max(int(np.ceil(box[3] * width)), x0 + 1)
  crop = Image.fromarray(image[y0:y1, x0:x1]).resize((_CELL, _CELL),
                                                     Image.NEAREST)
  cell = np.asarray(crop, np.float32)
  if mask is not None:
    scaled = Image.fromarray((np.asarray(mask) * 255).astype(np.uint8))
    on = np.asarray(scaled.resize((_CELL, _CELL), Image.BILINEAR)) > 127
    cell[on] = 0.45 * cell[on] + 0.55 * np.asarray(colour, np.float32)
  return cell.astype(np.uint8)


def example_grid(path, examples, masks_by_variant, labels):
  """Rows: groundtruth, then each variant; columns: the example instances.

  Args:
    path: PNG path.
    examples: ``examples.choose_examples`` list.
    masks_by_variant: {variant name: [K, S, S] probabilities}, table order.
    labels: {variant name: label}.
  """
  images = {}
  for example in examples:
    if example.image_path not in images:
      images[example.image_path] = np.asarray(
          Image.open(example.image_path).convert('RGB'))
  rows = [('groundtruth', [_gt_crop(e) for e in examples], (40, 200, 40))]
  rows += [(labels[name], list(masks), (230, 60, 60))
           for name, masks in masks_by_variant.items()]
  fig, axes = plt.subplots(len(rows), len(examples), squeeze=False,
                           figsize=(0.95 * len(examples) + 1.4,
                                    0.95 * len(rows) + 0.4))
  for r, (label, masks, colour) in enumerate(rows):
    for c, example in enumerate(examples):
      ax = axes[r][c]
      ax.imshow(_cell(images[example.image_path], example.box, masks[c],
                      colour))
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(example.class_name, fontsize=7)
      if c == 0:
        ax.set_ylabel(label, fontsize=7, rotation=0, ha='right', va='center')
  fig.suptitle('unseen-class instances (masks never seen in training)',
               fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _gt_crop(example):
  """The groundtruth mask cropped to its box (box-relative)."""
  height, width = example.mask.shape
  box = example.box
  y0, x0 = int(box[0] * height), int(box[1] * width)
  y1 = max(int(np.ceil(box[2] * height)), y0 + 1)
  x1 = max(int(np.ceil(box[3] * width)), x0 + 1)
  return example.mask[y0:y1, x0:x1].astype(np.float32)


def per_class_bars(path, results, seen_names):
  """Grouped bars: classes on x, one bar per variant; unseen shaded."""
  table = results['per_class']
  labels = results['labels']
  names = list(next(iter(table.values())))
  fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(names) + 2), 3.6))
  x = np.arange(len(names))
  width = 0.8 / max(len(table), 1)
  for i, (variant, values) in enumerate(table.items()):
    ax.bar(x - 0.4 + width * (i + 0.5),
           [values[n] or 0.0 for n in names], width, label=labels[variant])
  for i, name in enumerate(names):
    if name not in seen_names:
      ax.axvspan(i - 0.5, i + 0.5, color='0.92', zorder=0)
  ax.set_xticks(x)
  ax.set_xticklabels([n if n in seen_names else f'{n}\n(unseen)'
                      for n in names], fontsize=7)
  ax.set_ylabel(results['metric_label'], fontsize=8)
  ax.set_ylim(0, 100)
  ax.set_xlim(-0.5, len(names) - 0.5)
  ax.legend(fontsize=7, ncol=2)
  ax.set_title('per class (mean over seeds; shaded: unseen)', fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_all(output_dir, results, examples, masks_by_variant, seen_names):
  """Writes every figure that has data; returns their file names."""
  written = []
  if results['summary']:
    seen_unseen_bars(os.path.join(output_dir, SEEN_UNSEEN_PNG), results)
    written.append(SEEN_UNSEEN_PNG)
  if examples and masks_by_variant:
    example_grid(os.path.join(output_dir, EXAMPLES_PNG), examples,
                 masks_by_variant, results['labels'])
    written.append(EXAMPLES_PNG)
  if results['per_class']:
    per_class_bars(os.path.join(output_dir, PER_CLASS_PNG), results,
                   seen_names)
    written.append(PER_CLASS_PNG)
  return written
