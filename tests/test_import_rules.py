"""The dependency rules of DESIGN.md, checked on every module's imports.

    scripts -> training / export / inference -> builders -> meta_architectures
    -> mask_heads, backbones, losses -> layers, ops -> (tf, tf_keras,
    official.*). config -> protos; data stands beside.

Imports point down that list, never up; modules of one level may import each
other. Every import counts, also one inside a function. Extra rules: export
never imports training; inference (serving side) never pulls the training
stack; data knows no model; only config, data and builders (and the levels
above builders) read protos; and no two modules import each other at module
level, directly or through others (an import cycle). Training never
imports export either.
"""

import ast
import collections
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'deepmac_tf'

# Level of each part of deepmac_tf: imports go to a lower or equal level.
# Top: what scripts call (the CLI, the reproduction harness, training).
LEVELS = {
    'cli': 7, 'odapi_flags': 7, 'reproduction': 7,
    'training': 6,
    'export': 5, 'inference': 5, 'evaluation': 5, 'benchmarks': 5,
    'builders': 4,
    'meta_architectures': 3,
    'mask_heads': 2, 'backbones': 2, 'losses': 2,
    'layers': 1, 'ops': 1,
}
# Beside the stack: anyone may import them; they import only each other.
SIDE = {
    'data': {'config', 'protos', 'errors', 'ops', 'drawing'},
    'config': {'protos', 'errors'},
    'protos': {'protos'},
    'errors': set(),
    # Utilities of every level: the registry idiom, output-folder checks,
    # drawing masks and boxes.
    'registry': {'errors'},
    'drawing': {'errors'},
    'file_checks': {'errors'},
    # tf.function / tf.data functions without AutoGraph.
    'graph_functions': set(),
}
# Never imported by these, whatever the levels say.
FORBIDDEN = {
    'training': {'export'},
    'export': {'training'},
    'inference': {'training', 'builders', 'evaluation', 'export',
                  'meta_architectures', 'mask_heads', 'backbones', 'losses',
                  'layers'},
}
# Parts that never read protos (builders turn protos into arguments).
NO_PROTOS = ('meta_architectures', 'mask_heads', 'backbones', 'losses',
             'layers', 'ops')


def _module_name(path):
  parts = list(path.relative_to(REPO).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


def _part(module):
  """'deepmac_tf.ops.roi_crop' -> 'ops'; 'deepmac_tf.errors' -> 'errors'."""
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def _imports(path):
  """[(imported module, line, at module level)] of deepmac_tf imports."""
  tree = ast.parse(path.read_text(), filename=str(path))
  top_level = {id(node) for node in tree.body}
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names = [node.module]
      if node.module == 'deepmac_tf':
        names = [f'deepmac_tf.{alias.name}' for alias in node.names]
    else:
      continue
    for name in names:
      if name == 'deepmac_tf' or name.startswith('deepmac_tf.'):
        found.append((name, node.lineno, id(node) in top_level))
  return found


def _sources():
  return sorted(p for p in PACKAGE.rglob('*.py')
                if not p.name.endswith('_pb2.py'))


def _violation(source_part, target_part):
  """Why `source_part` may not import `target_part`, or None."""
  if source_part == target_part or target_part == 'errors':
    return None
  if target_part in FORBIDDEN.get(source_part, ()):
    return f'{source_part} never imports {target_part}'
  if target_part == 'protos' and source_part in NO_PROTOS:
    return f'{source_part} reads no protos (builders pass arguments)'
  if source_part in SIDE:
    if target_part not in SIDE[source_part]:
      return f'{source_part} imports only {sorted(SIDE[source_part])}'
    return None
  if target_part in SIDE:
    return None
  if LEVELS[target_part] > LEVELS[source_part]:
    return f'{source_part} (level {LEVELS[source_part]}) imports up'
  return None


def test_every_part_has_a_level():
  parts = {_part(_module_name(p)) for p in _sources()} - {''}
  unplaced = sorted(parts - set(LEVELS) - set(SIDE))
  assert not unplaced, (
      f'{unplaced}: give each new part of deepmac_tf a place in LEVELS or '
      'SIDE (and in the dependency list of DESIGN.md).')


def test_imports_follow_the_dependency_rules():
  problems = []
  for path in _sources():
    source = _part(_module_name(path))
    if not source:
      continue
    for target, line, _ in _imports(path):
      why = _violation(source, _part(target))
      if why:
        problems.append(f'{path.relative_to(REPO)}:{line}: imports {target}:'
                        f' {why}')
  assert not problems, '\n'.join(problems)


def test_no_import_cycles():
  modules = {_module_name(p): p for p in _sources()}
  graph = collections.defaultdict(set)
  for name, path in modules.items():
    for target, _, top_level in _imports(path):
      while target and target not in modules:
        target = target.rpartition('.')[0]  # 'pkg.mod.Name' -> 'pkg.mod'
      if top_level and target and target != name:
        graph[name].add(target)
  # A package's __init__ importing its own modules is not a cycle.
  for name in list(graph):
    graph[name] = {t for t in graph[name] if not name.startswith(t + '.')}
  state, stack = {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 'open':
        cycle = stack[stack.index(nxt):] + [nxt]
        pytest.fail('import cycle: ' + ' -> '.join(cycle))
      if nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = 'done'

  for module in sorted(modules):
    if module not in state:
      visit(module)


@pytest.mark.parametrize('source,target,allowed', [
    ('layers', 'mask_heads', False),
    ('export', 'training', False),
    ('inference', 'builders', False),
    ('data', 'meta_architectures', False),
    ('mask_heads', 'protos', False),
    ('meta_architectures', 'mask_heads', True),
    ('builders', 'protos', True),
    ('training', 'export', False),
    ('training', 'evaluation', True),
])
def test_rule_table(source, target, allowed):
  assert (_violation(source, target) is None) == allowed
