"""Regenerates the ``*_pb2.py`` modules of this package from ``protos/*.proto``.

The ``.proto`` sources live in the repository's top-level ``protos/`` folder and
import each other as ``deepmac_tf/protos/<name>.proto``, so the generated modules
import each other as ``deepmac_tf.protos.<name>_pb2``. This tool stages the
sources under that path in a temporary folder, runs the ``protoc`` bundled with
``grpcio-tools`` (a development dependency; users never need it because the
generated modules are committed and installed with the package), and copies the
results here.

Usage::

    python -m deepmac_tf.protos.generate            # rewrite the modules
    python -m deepmac_tf.protos.generate --check    # exit 1 if any is stale

``tests/test_protos.py`` runs the same comparison, so a ``.proto`` edit without
regenerating fails the test suite.
"""

import argparse
import ast
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_DIR))
PROTO_SOURCE_DIR = os.path.join(REPO_ROOT, 'protos')
IMPORT_PREFIX = os.path.join('deepmac_tf', 'protos')


def proto_sources(source_dir=PROTO_SOURCE_DIR):
  """Returns the sorted paths of the ``.proto`` files in ``source_dir``."""
  paths = sorted(glob.glob(os.path.join(source_dir, '*.proto')))
  if not paths:
    raise FileNotFoundError(f'No .proto files found in {source_dir}')
  return paths


def generate_modules(output_dir, source_dir=PROTO_SOURCE_DIR):
  """Compiles every ``.proto`` in ``source_dir`` into ``output_dir``.

  Returns:
    A dict from module file name (``pipeline_pb2.py``) to its generated text.
  """
  try:
    import grpc_tools  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise RuntimeError(
        'Regenerating protos needs grpcio-tools: pip install -e ".[dev]"') from e
  with tempfile.TemporaryDirectory() as staging:
    staged_dir = os.path.join(staging, IMPORT_PREFIX)
    os.makedirs(staged_dir)
    for path in proto_sources(source_dir):
      shutil.copy(path, staged_dir)
    staged = sorted(os.path.join(IMPORT_PREFIX, os.path.basename(p))
                    for p in proto_sources(source_dir))
    # protoc runs in its own process: in a process that has loaded
    # TensorFlow, grpc_tools' in-process protoc crashes (two libprotobufs).
    result = subprocess.run(
        [sys.executable, '-m', 'grpc_tools.protoc', f'-I{staging}',
         f'--python_out={staging}'] + staged,
        cwd=staging, capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise RuntimeError(f'protoc failed on {source_dir}: {result.stderr}')
    generated = {}
    for path in sorted(glob.glob(os.path.join(staged_dir, '*_pb2.py'))):
      with open(path) as f:
        generated[os.path.basename(path)] = f.read()
  os.makedirs(output_dir, exist_ok=True)
  for name, text in generated.items():
    with open(os.path.join(output_dir, name), 'w') as f:
      f.write(text)
  return generated


def serialized_descriptor(module_text):
  """Extracts the serialized FileDescriptorProto from a ``_pb2.py`` text.

  Comparing descriptors, not whole texts, keeps the staleness check
  independent of the protoc version that wrote the header and helper code.
  """
  match = re.search(r"AddSerializedFile\((b'.*?')\)", module_text, re.S)
  if not match:
    raise ValueError('No serialized descriptor found in generated module')
  return ast.literal_eval(match.group(1))


def stale_modules(source_dir=PROTO_SOURCE_DIR, package_dir=PACKAGE_DIR):
  """Names the committed modules that differ from freshly generated ones."""
  with tempfile.TemporaryDirectory() as tmp:
    fresh = generate_modules(tmp, source_dir)
  stale = []
  for name, text in fresh.items():
    path = os.path.join(package_dir, name)
    if not os.path.exists(path):
      stale.append(f'{name} (missing)')
      continue
    with open(path) as f:
      if serialized_descriptor(f.read()) != serialized_descriptor(text):
        stale.append(name)
  expected = set(fresh)
  for path in glob.glob(os.path.join(package_dir, '*_pb2.py')):
    if os.path.basename(path) not in expected:
      stale.append(f'{os.path.basename(path)} (no .proto source)')
  return sorted(stale)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--check', action='store_true',
                      help='Only report stale modules; exit 1 if any.')
  args = parser.parse_args(argv)
  if args.check:
    stale = stale_modules()
    if stale:
      print('Stale generated modules: ' + ', '.join(stale) +
            '. Run: python -m deepmac_tf.protos.generate')
      return 1
    print('All generated proto modules are up to date.')
    return 0
  written = generate_modules(PACKAGE_DIR)
  print(f'Wrote {len(written)} modules to {PACKAGE_DIR}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
