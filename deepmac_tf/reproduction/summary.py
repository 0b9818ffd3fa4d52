"""Means and spreads over seeds; ``results.json`` and ``results.md``.

``summary`` rows have exactly ``name``, ``seen_mean``, ``seen_std``,
``unseen_mean``, ``unseen_std``, ``n_seeds`` and ``seconds`` (training plus
evaluation, summed over the row's seeds). Values are 0-100 (mIoU or mask
AP, see the experiment's ``metric``); std is the sample standard deviation
over seeds (0 with one seed).
"""

import json
import os

import numpy as np

from deepmac_tf.reproduction import experiments as experiments_lib

RESULTS_JSON = 'results.json'
RESULTS_MD = 'results.md'


def mean_std(values):
  """(mean, sample std) of the non-None values; (None, None) if none."""
  values = [float(v) for v in values if v is not None]
  if not values:
    return None, None
  std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  return float(np.mean(values)), std


def _rounded(value):
  return None if value is None else round(value, 2)


def summary_rows(variants, records):
  """One row per variant with at least one finished run, in table order."""
  rows = []
  for variant in variants:
    runs = [r for r in records if r['name'] == variant.name]
    if not runs:
      continue
    seen_mean, seen_std = mean_std(r['seen'] for r in runs)
    unseen_mean, unseen_std = mean_std(r['unseen'] for r in runs)
    rows.append({
        'name': variant.name,
        'seen_mean': _rounded(seen_mean),
        'seen_std': _rounded(seen_std),
        'unseen_mean': _rounded(unseen_mean),
        'unseen_std': _rounded(unseen_std),
        'n_seeds': len(runs),
        'seconds': round(sum(r['seconds'] for r in runs), 1),
    })
  return rows


def per_class_means(variants, records):
  """{variant name: {class name: mean over seeds}}."""
  table = {}
  for variant in variants:
    runs = [r for r in records if r['name'] == variant.name]
    if runs:
      names = list(runs[0]['per_class'])
      table[variant.name] = {
          n: _rounded(mean_std(r['per_class'].get(n) for r in runs)[0])
          for n in names}
  return table


def box_ap_rows(variants, records):
  """{variant name: {'mean', 'std'}} of box AP (detection models only)."""
  table = {}
  for variant in variants:
    values = [r['box_ap'] for r in records if r['name'] == variant.name]
    mean, std = mean_std(values)
    if mean is not None:
      table[variant.name] = {'mean': _rounded(mean), 'std': _rounded(std)}
  return table


def build_results(experiment, variants, records, unavailable, context):
  """The ``results.json`` dict.

  Args:
    experiment: the ``Experiment``.
    variants: the variants run (table order).
    records: every finished run's record (``runner.execute``).
    unavailable: variants skipped because their config does not exist.
    context: extra top-level entries (command, machine, timings, plots,
      ``priors``: ``priors.box_priors`` of the validation split).
  """
  return {
      'experiment': experiment.name,
      'title': experiment.title,
      'paper_ref': experiment.paper_ref,
      'metric': experiment.metric,
      'metric_label': experiments_lib.METRIC_LABELS[experiment.metric],
      'expectation': experiment.expectation,
      **context,
      'runs': records,
      'summary': summary_rows(variants, records),
      'box_ap': box_ap_rows(variants, records),
      'per_class': per_class_means(variants, records),
      'labels': {v.name: v.label for v in variants},
      'paper': {v.name: v.paper.text() for v in variants if v.paper},
      'unavailable': [{'name': v.name, 'label': v.label, 'note': v.note}
                      for v in unavailable],
  }


def _pm(mean, std):
  return '-' if mean is None else f'{mean:.1f} ± {std:.1f}'


def _value(value):
  return '-' if value is None else f'{value:.1f}'


def _signed(value):
  return '-' if value is None else f'{value:+.1f}'


def markdown(results):
  """``results.md``: the summary table with the paper's numbers beside."""
  labels = results['labels']
  rows = results['summary']
  box = results['box_ap']
  lines = [f'# {results["experiment"]}: {results["title"]}', '',
           f'Mirrors the paper\'s {results["paper_ref"]}. Metric: '
           f'{results["metric_label"]} (0-100), mean ± std over seeds; '
           'seen = classes whose masks trained the mask head, unseen = '
           'classes with boxes only.', '',
           f'Command: `{results.get("command", "")}`  ',
           f'Machine: {results.get("machine", "")}', '',
           'Seconds: wall time of training + evaluation, summed over seeds; '
           'CPU: user + system seconds of all threads (on a loaded machine '
           'wall time overstates the cost; a quiet 2-core machine needs at '
           'least CPU / 2).', '']
  header = '| | seen | unseen | unseen - seen |'
  rule = '|---|---|---|---|'
  if box:
    header += ' box AP |'
    rule += '---|'
  header += ' paper (seen / unseen) | seeds | seconds (CPU) |'
  rule += '---|---|---|'
  lines += [header, rule]
  for row in rows:
    gap = (None if row['seen_mean'] is None or row['unseen_mean'] is None
           else row['unseen_mean'] - row['seen_mean'])
    cells = [labels[row['name']], _pm(row['seen_mean'], row['seen_std']),
             _pm(row['unseen_mean'], row['unseen_std']), _signed(gap)]
    if box:
      entry = box.get(row['name'])
      cells.append(_pm(entry['mean'], entry['std']) if entry else '-')
    cpu = sum(r.get('cpu_seconds', 0.0) for r in results['runs']
              if r['name'] == row['name'])
    cells += [results['paper'].get(row['name'], '-'), str(row['n_seeds']),
              f'{row["seconds"]:.0f} ({cpu:.0f})']
    lines.append('| ' + ' | '.join(cells) + ' |')
  priors = results.get('priors') or {}
  for prior in priors.values():
    gap = (None if prior['seen'] is None or prior['unseen'] is None
           else prior['unseen'] - prior['seen'])
    cells = [f'*{prior["label"]}*', _value(prior['seen']),
             _value(prior['unseen']), _signed(gap)]
    cells += ['-'] * (len(header.split('|')) - 2 - len(cells))
    lines.append('| ' + ' | '.join(cells) + ' |')
  if priors:
    lines += ['', 'The rows in italics draw the mask from the groundtruth '
              'box alone (no image, no training), scored the same way: a '
              'head segments only where it is above them.']
  lines += ['', '```', text_bars(results), '```']
  ellipse = priors.get('ellipse')
  if ellipse and rows:
    lines += ['', 'Above the inscribed ellipse (means over seeds):', '']
    for row in rows:
      def above(key):
        if row[f'{key}_mean'] is None or ellipse[key] is None:
          return None
        return row[f'{key}_mean'] - ellipse[key]
      lines.append(f'- {labels[row["name"]]}: seen {_signed(above("seen"))}'
                   f', unseen {_signed(above("unseen"))}')
  # Rows without seen / unseen values (a detector that stage-wise mask
  # variants restore) are no baseline.
  compared = [r for r in rows
              if r['seen_mean'] is not None or r['unseen_mean'] is not None]
  if len(compared) > 1:
    first = compared[0]
    lines += ['', f'Differences to {labels[first["name"]]} (means over '
              'seeds):', '']
    for row in compared[1:]:
      def diff(key):
        if row[key] is None or first[key] is None:
          return None
        return row[key] - first[key]
      lines.append(f'- {labels[row["name"]]}: seen '
                   f'{_signed(diff("seen_mean"))}, unseen '
                   f'{_signed(diff("unseen_mean"))}')
  lines += ['', f'The paper: {results["expectation"]}', '']
  for entry in results['unavailable']:
    lines.append(f'- not run: {entry["label"]} ({entry["note"]})')
  if results['per_class']:
    names = list(next(iter(results['per_class'].values())))
    lines += ['', '## Per class (mean over seeds)', '',
              '| | ' + ' | '.join(names) + ' |',
              '|---|' + '---|' * len(names)]
    for name, values in results['per_class'].items():
      lines.append(f'| {labels[name]} | ' + ' | '.join(
          '-' if values[n] is None else f'{values[n]:.1f}' for n in names)
                   + ' |')
  if results.get('plots'):
    lines += ['', '## Plots', '']
    lines += [f'![{os.path.splitext(p)[0]}]({p})' for p in results['plots']]
  lines.append('')
  return '\n'.join(lines)


def text_bars(results, width=40):
  """The seen / unseen means as text bars (console and README)::

    ResNet-4      seen   ##############################--  78.0 ± 1.0
                  unseen #####################-----------  52.5 ± 2.0
  """
  labels = results['labels']
  size = max([len(labels[r['name']]) for r in results['summary']] + [1])
  lines = []
  for row in results['summary']:
    for i, key in enumerate(('seen', 'unseen')):
      mean, std = row[f'{key}_mean'], row[f'{key}_std']
      filled = 0 if mean is None else int(round(mean / 100.0 * width))
      name = labels[row['name']] if i == 0 else ''
      lines.append(f'{name:{size}s} {key:6s} {"#" * filled}'
                   f'{"-" * (width - filled)} {_pm(mean, std)}')
  return '\n'.join(lines)


def write(output_dir, results):
  """Writes ``results.json`` and ``results.md``; returns their paths."""
  paths = []
  for name, text in ((RESULTS_JSON, json.dumps(results, indent=1) + '\n'),
                     (RESULTS_MD, markdown(results))):
    path = os.path.join(output_dir, name)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
      f.write(text)
    os.replace(path + '.tmp', path)
    paths.append(path)
  return paths
