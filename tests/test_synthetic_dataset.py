"""Tests of the synthetic partially supervised shapes dataset."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from pycocotools import coco as coco_lib
from pycocotools import mask as mask_utils
import pytest

from deepmac_tf import errors
from deepmac_tf.data import synthetic
from deepmac_tf.data.synthetic import shapes
from deepmac_tf.data.synthetic import textures

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'create_synthetic_dataset.py')


def _run_script(*args):
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, SCRIPT, *args], env=env,
                        capture_output=True, text=True, timeout=120)


def _is_orthogonally_convex(mask):
  """True if every row and column of the mask is one contiguous run."""
  for lines in (mask, mask.T):
    for line in lines:
      on = np.flatnonzero(line)
      if on.size and on[-1] - on[0] + 1 != on.size:
        return False
  return True


def _all_files(root):
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def test_classes_and_split():
  assert synthetic.NUM_CLASSES == 10
  assert [c.id for c in synthetic.CLASSES] == list(range(1, 11))
  assert synthetic.SEEN_CLASS_NAMES == ('circle', 'ellipse', 'square',
                                        'triangle', 'hexagon')
  assert synthetic.UNSEEN_CLASS_NAMES == ('star', 'cross', 'ring', 'crescent',
                                          'l_shape')
  split = synthetic.class_split()
  assert split['allowed_masked_classes_ids'] == [1, 2, 3, 4, 5]
  assert split['unseen']['ids'] == [6, 7, 8, 9, 10]
  assert split['super_categories']['seen'] == (
      'circle,ellipse,square,triangle,hexagon')
  assert 'allowed_masked_classes_ids: 5' in (
      split['pipeline_config_text']['allowed_masked_classes_ids'])
  assert shapes.FAMILY_NAMES == synthetic.CLASS_NAMES


@pytest.mark.parametrize('family', synthetic.CLASS_NAMES)
def test_every_family_renders_its_class(family):
  rng = np.random.default_rng(1)
  # Alone in a scene: one instance, of the claimed class, non-empty.
  scene = synthetic.render_scene(rng, families=[family])
  assert len(scene.instances) == 1
  instance = scene.instances[0]
  assert instance.class_name == family
  assert instance.class_id == synthetic.CLASS_ID_BY_NAME[family]
  assert instance.area > 0
  # Seen shapes are convex (every row / column is one run at any rotation);
  # each unseen shape has a hole or a concavity at some rotation.
  convex = []
  for rotation in np.linspace(0.0, np.pi / 2, 5):
    params = shapes.sample_shape_params(family, rng)
    mask = shapes.shape_mask(family, params, 64, 64, (32.0, 32.0), 18.0,
                             rotation)
    assert mask.sum() > 0.2 * 36 * 36
    rows, cols = np.nonzero(mask)
    assert rows.min() >= 32 - 18 and rows.max() < 32 + 18
    assert cols.min() >= 32 - 18 and cols.max() < 32 + 18
    convex.append(_is_orthogonally_convex(mask))
  is_seen = family in synthetic.SEEN_CLASS_NAMES
  assert all(convex) if is_seen else not all(convex)


def test_families_differ_at_the_same_pose():
  rng = np.random.default_rng(2)
  masks = {name: shapes.shape_mask(name, shapes.sample_shape_params(name, rng),
                                   48, 48, (24.0, 24.0), 20.0, 0.3)
           for name in synthetic.CLASS_NAMES}
  names = list(masks)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
      assert iou < 0.9, (a, b, iou)


def test_seen_shapes_fill_their_box_more_than_unseen():
  rng = np.random.default_rng(3)
  fill = {}
  for name in synthetic.CLASS_NAMES:
    ratios = []
    for _ in range(40):
      mask = shapes.shape_mask(
          name, shapes.sample_shape_params(name, rng), 64, 64,
          tuple(rng.uniform(24, 40, size=2)), rng.uniform(9, 19),
          rng.uniform(0, 2 * np.pi))
      ratios.append(shapes.box_fill_ratio(mask))
    fill[name] = np.mean(ratios)
  seen = np.mean([fill[n] for n in synthetic.SEEN_CLASS_NAMES])
  unseen = np.mean([fill[n] for n in synthetic.UNSEEN_CLASS_NAMES])
  assert seen > 0.6, fill
  assert seen - unseen > 0.12, fill


def test_textures_cover_the_pool():
  rng = np.random.default_rng(4)
  for name, texture_fn in textures.TEXTURES.items():
    out = texture_fn(rng, 20, 30, 1.0)
    assert out.shape == (20, 30, 3) and out.dtype == np.float32, name
    assert 0.0 <= out.min() and out.max() <= 255.0, name
  assert set(textures.TEXTURE_NAMES) >= {'flat', 'stripes', 'checker', 'blobs',
                                         'gradient', 'two_colour',
                                         'pixel_noise'}


@pytest.mark.parametrize('image_size', [64, 128])
def test_scene_masks_disjoint_inside_tight_boxes(image_size):
  config = synthetic.SceneConfig(image_size=image_size, max_objects=5)
  num_instances = num_clutter = 0
  for index in range(25):
    scene = synthetic.render_scene(synthetic.scene_rng(5, 'train', index),
                                   config)
    assert scene.image.shape == (image_size, image_size, 3)
    assert scene.image.dtype == np.uint8
    assert scene.instances, 'the front object is always annotated'
    union = np.zeros((image_size, image_size), np.int32)
    for instance in scene.instances:
      union += instance.mask
      x, y, w, h = instance.bbox
      inside = np.zeros_like(instance.mask)
      inside[y:y + h, x:x + w] = True
      assert not (instance.mask & ~inside).any()
      assert instance.mask[y, x:x + w].any() and instance.mask[y + h - 1,
                                                               x:x + w].any()
      assert instance.mask[y:y + h, x].any() and instance.mask[y:y + h,
                                                               x + w - 1].any()
      assert instance.area == instance.mask.sum()
      assert instance.area >= config.min_visible_fraction * instance.full_area
    assert union.max() <= 1, 'visible masks overlap'
    num_instances += len(scene.instances)
    num_clutter += scene.num_clutter
  assert num_instances > 40 and num_clutter > 0


def test_scene_is_deterministic_per_image():
  config = synthetic.SceneConfig()
  a = synthetic.render_scene(synthetic.scene_rng(9, 'val', 4), config)
  b = synthetic.render_scene(synthetic.scene_rng(9, 'val', 4), config)
  c = synthetic.render_scene(synthetic.scene_rng(9, 'val', 5), config)
  d = synthetic.render_scene(synthetic.scene_rng(9, 'train', 4), config)
  assert np.array_equal(a.image, b.image)
  assert [i.bbox for i in a.instances] == [i.bbox for i in b.instances]
  assert not np.array_equal(a.image, c.image)
  assert not np.array_equal(a.image, d.image)


def test_bad_options_raise_clear_errors(tmp_path):
  with pytest.raises(errors.ConfigError, match='image_size'):
    synthetic.SceneConfig(image_size=8).validate()
  with pytest.raises(errors.ConfigError, match='max_objects'):
    synthetic.SceneConfig(min_objects=3, max_objects=2).validate()
  with pytest.raises(errors.ConfigError, match='families'):
    synthetic.SceneConfig(families=('blob',)).validate()
  with pytest.raises(errors.ConfigError, match='num_train_images'):
    synthetic.create_dataset(str(tmp_path), -1, 2, write_records=False)
  with pytest.raises(errors.ConfigError, match='seed'):
    synthetic.create_dataset(str(tmp_path), 1, 1, seed=-3,
                             write_records=False)
  with pytest.raises(errors.DataError, match='Unknown shape family'):
    shapes.sample_shape_params('blob', np.random.default_rng(0))


def test_coco_json_matches_rendered_masks(tmp_path):
  config = synthetic.SceneConfig()
  result = synthetic.create_dataset(str(tmp_path), 6, 3, seed=11,
                                    config=config, write_records=False,
                                    show_progress=False)
  for split, count in (('train', 6), ('val', 3)):
    summary = result.splits[split]
    coco = coco_lib.COCO(summary.annotations_file)
    assert sorted(coco.getImgIds()) == list(range(1, count + 1))
    cats = coco.loadCats(coco.getCatIds())
    assert {c['supercategory'] for c in cats if c['id'] <= 5} == {'seen'}
    assert {c['supercategory'] for c in cats if c['id'] > 5} == {'unseen'}
    assert len(coco.getAnnIds()) == summary.num_instances
    for index in range(count):
      scene = synthetic.render_scene(
          synthetic.scene_rng(11, split, index), config)
      info = coco.loadImgs(index + 1)[0]
      png = np.asarray(Image.open(os.path.join(summary.image_dir,
                                               info['file_name'])))
      assert np.array_equal(png, scene.image)
      anns = coco.loadAnns(coco.getAnnIds(imgIds=index + 1))
      assert len(anns) == len(scene.instances)
      for ann, instance in zip(anns, scene.instances):
        assert np.array_equal(coco.annToMask(ann).astype(bool), instance.mask)
        assert ann['category_id'] == instance.class_id
        assert ann['iscrowd'] == 0 and ann['area'] == instance.area
        assert ann['bbox'] == list(mask_utils.toBbox(ann['segmentation']))


def test_outputs_byte_identical_for_a_seed_and_splits_independent(tmp_path):
  kwargs = dict(seed=5, write_records=False, show_progress=False)
  synthetic.create_dataset(str(tmp_path / 'a'), 4, 2, **kwargs)
  synthetic.create_dataset(str(tmp_path / 'b'), 4, 2, **kwargs)
  synthetic.create_dataset(str(tmp_path / 'c'), 2, 3, **kwargs)
  a, b, c = (_all_files(str(tmp_path / n)) for n in 'abc')
  assert a == b
  # Train image 1 does not depend on how many images either split has.
  for name in ('images/train/train_000001.png', 'images/val/val_000001.png'):
    assert a[name] == c[name]
  assert a['annotations/instances_val.json'] != (
      c['annotations/instances_val.json'])


def test_script_help():
  result = _run_script('--help')
  assert result.returncode == 0, result.stderr
  assert 'Traceback' not in result.stderr
  assert 'Renders the synthetic' in result.stdout
  for flag in ('--output_dir', '--num_train_images', '--num_val_images',
               '--seed', '--image_size', '--num_shards'):
    assert flag in result.stdout


def test_script_rejects_bad_input(tmp_path):
  result = _run_script(f'--output_dir={tmp_path}', '--num_train_images=-2')
  assert result.returncode != 0
  assert 'num_train_images' in result.stderr
  assert 'Traceback' not in result.stderr


def test_script_writes_every_output_and_tfrecords_parse(tmp_path):
  out = tmp_path / 'shapes'
  result = _run_script(f'--output_dir={out}', '--num_train_images=6',
                       '--num_val_images=3', '--seed=2', '--num_shards=2')
  assert result.returncode == 0, result.stderr
  assert 'synthetic_train.record-?????-of-00002' in result.stdout
  for path in ('annotations/instances_train.json',
               'annotations/instances_val.json', 'label_map.pbtxt',
               'class_split.json', 'class_split.txt',
               'images/train/train_000005.png', 'images/val/val_000002.png'):
    assert (out / path).is_file(), path
  split = json.loads((out / 'class_split.json').read_text())
  assert split['seen']['ids'] == [1, 2, 3, 4, 5]
  assert 'super_categories {' in (out / 'class_split.txt').read_text()

  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  assert label_map_util.get_label_map_dict(str(out / 'label_map.pbtxt')) == {
      c.name: c.id for c in synthetic.CLASSES}

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for split_name, count in (('train', 6), ('val', 3)):
    coco = coco_lib.COCO(str(out / f'annotations/instances_{split_name}.json'))
    files = sorted(tf.io.gfile.glob(
        str(out / f'synthetic_{split_name}.record-?????-of-00002')))
    assert len(files) == 2
    examples = [tf.train.Example.FromString(r.numpy())
                for r in tf.data.TFRecordDataset(files)]
    assert len(examples) == count
    for example in examples:
      feature = example.features.feature
      image_id = int(feature['image/source_id'].bytes_list.value[0])
      anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
      labels = list(feature['image/object/class/label'].int64_list.value)
      assert labels == [a['category_id'] for a in anns]
      masks = feature['image/object/mask'].bytes_list.value
      assert len(masks) == len(anns)
      for encoded, ann in zip(masks, anns):
        decoded = tf.io.decode_png(encoded).numpy()[..., 0]
        assert np.array_equal(decoded > 0, coco.annToMask(ann) > 0)
      xmin = feature['image/object/bbox/xmin'].float_list.value
      assert np.allclose(xmin, [a['bbox'][0] / 64.0 for a in anns])


def test_tfrecords_byte_identical_for_a_seed(tmp_path):
  kwargs = dict(seed=3, write_records=True, show_progress=False)
  synthetic.create_dataset(str(tmp_path / 'a'), 3, 1, **kwargs)
  synthetic.create_dataset(str(tmp_path / 'b'), 3, 1, **kwargs)
  a, b = (_all_files(str(tmp_path / n)) for n in 'ab')
  records = [name for name in a if '.record-' in name]
  assert len(records) == 2
  for name in records:
    assert a[name] == b[name], name
