"""Installs deepmac_tf with its generated protobuf modules (no protoc step)."""

import os

from setuptools import find_packages
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Pinned to the line tf-models-official 2.20.0 pins, so installing deepmac_tf
# never silently upgrades or downgrades TensorFlow (see WORKSPACE_NOTES.md).
INSTALL_REQUIRES = [
    'tensorflow~=2.20.0',
    'tf-keras~=2.20.0',
    'tf-models-official==2.20.0',
    # The committed *_pb2.py modules are protobuf 7 gencode.
    'protobuf>=7.35.1,<8',
    'pycocotools>=2.0.8',
    'absl-py>=1.4',
    'numpy>=1.26',
    'Pillow>=10.0',
    'tqdm>=4.66',
]

EXTRAS_REQUIRE = {
    # grpcio-tools lets the test suite check the committed protobuf modules
    # against protos/*.proto.
    'test': ['pytest>=8', 'pytest-xdist>=3.5', 'grpcio-tools>=1.75'],
    # grpcio-tools regenerates the protobuf modules after a .proto edit.
    'dev': ['pytest>=8', 'pytest-xdist>=3.5', 'grpcio-tools>=1.75'],
}


def _read_readme():
  with open(os.path.join(HERE, 'README.md'), encoding='utf-8') as f:
    return f.read()


setup(
    name='deepmac_tf',
    version='0.1.0',
    description=('Partially supervised instance segmentation with deep mask '
                 'heads (Deep-MAC, Deep-MARC) in TensorFlow 2 / tf_keras.'),
    long_description=_read_readme(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10,<3.13',
    packages=find_packages(include=['deepmac_tf', 'deepmac_tf.*']),
    # The demo's detector (scripts/train_demo_detector.py writes it).
    package_data={'deepmac_tf': ['py.typed',
                                 'reproduction/demo_detector/*']},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
