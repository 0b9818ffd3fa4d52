"""Tests of ``SceneConfig.shape_ranges``: per-parameter shape range overrides
(e.g. wider star points and cross arms, probed for the mask_heads
experiment)."""

import itertools

import numpy as np
import pytest

from deepmac_tf import errors
from deepmac_tf.data import synthetic
from deepmac_tf.data.synthetic import shapes
from deepmac_tf.reproduction import experiments

_WIDE = (('star', 'inner_ratio', 0.55, 0.7), ('cross', 'half_width', 0.32,
                                               0.39))


def _scenes(config, count=40):
  return [synthetic.render_scene(synthetic.scene_rng(0, 'val', i), config)
          for i in range(count)]


def test_override_changes_only_the_named_parameter_and_no_draw():
  rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
  for _ in range(50):
    default = shapes.sample_shape_params('star', rng_a)
    wide = shapes.sample_shape_params('star', rng_b, _WIDE)
    assert wide['num_points'] == default['num_points']
    assert 0.55 <= wide['inner_ratio'] <= 0.7
    assert 0.38 <= default['inner_ratio'] <= 0.52
    # Other families ignore it.
    assert (shapes.sample_shape_params('ring', rng_a) ==
            shapes.sample_shape_params('ring', rng_b, _WIDE))
  # The same number of draws: both generators are in the same state.
  assert rng_a.random() == rng_b.random()


def test_scenes_follow_the_overrides_and_nothing_else():
  # The default ranges written out: the very same scenes.
  same = synthetic.SceneConfig(shape_ranges=(
      ('star', 'inner_ratio', 0.38, 0.52), ('cross', 'half_width', 0.2, 0.32)))
  for a, b in zip(_scenes(synthetic.SceneConfig()), _scenes(same)):
    np.testing.assert_array_equal(a.image, b.image)
    assert [i.bbox for i in a.instances] == [i.bbox for i in b.instances]
  # Wider points and arms: a star / cross alone covers more of its box.
  for family in ('star', 'cross'):
    fills = {}
    for name, config in (('default', synthetic.SceneConfig()),
                         ('wide', synthetic.SceneConfig(shape_ranges=_WIDE))):
      fills[name] = np.mean([shapes.box_fill_ratio(synthetic.render_scene(
          synthetic.scene_rng(1, 'val', i), config,
          families=[family]).instances[0].mask) for i in range(20)])
    assert fills['wide'] > fills['default'] + 0.05, (family, fills)


def test_wide_stars_and_crosses_stay_non_convex_and_below_seen_fill():
  rng = np.random.default_rng(3)
  fill = {}
  for name in synthetic.CLASS_NAMES:
    ratios, convex = [], []
    for _ in range(40):
      mask = shapes.shape_mask(
          name, shapes.sample_shape_params(name, rng, _WIDE), 64, 64,
          tuple(rng.uniform(24, 40, size=2)), rng.uniform(9, 19),
          rng.uniform(0, 2 * np.pi))
      ratios.append(shapes.box_fill_ratio(mask))
      rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
      window = mask[rows][:, cols]
      convex.append(all(
          np.flatnonzero(line).size == 0 or
          np.ptp(np.flatnonzero(line)) + 1 == np.flatnonzero(line).size
          for line in itertools.chain(window, window.T)))
    fill[name] = np.mean(ratios)
    if name in ('star', 'cross'):
      assert not all(convex), name
  seen = np.mean([fill[n] for n in synthetic.SEEN_CLASS_NAMES])
  for name in ('star', 'cross'):
    assert fill[name] < seen - 0.05, fill


@pytest.mark.parametrize('family', synthetic.CLASS_NAMES)
def test_parameters_at_their_limits_render_inside_the_disk(family):
  params = shapes._FAMILIES[family][1]  # pylint: disable=protected-access
  for param, spec in params.items():
    for value in spec.limits:
      overrides = ((family, param, value, value),)
      shapes.check_range_override(overrides[0])
      drawn = shapes.sample_shape_params(family, np.random.default_rng(0),
                                         overrides)
      assert drawn[param] == value
      for rotation in (0.0, 0.4, 1.1):
        mask = shapes.shape_mask(family, drawn, 64, 64, (32.0, 32.0), 20.0,
                                 rotation)
        assert mask.sum() > 0, (param, value)
        rows, cols = np.nonzero(mask)
        assert rows.min() >= 12 and rows.max() < 52, (param, value)
        assert cols.min() >= 12 and cols.max() < 52, (param, value)
    assert spec.limits[0] <= spec.low <= spec.high <= spec.limits[1]


@pytest.mark.parametrize('override, words', [
    (('blob', 'size', 0.1, 0.2), 'Unknown shape family'),
    (('star', 'width', 0.1, 0.2), "no parameter 'width'"),
    (('star', 'inner_ratio', 0.5, 1.5), 'in [0.05, 1.0]'),
    (('star', 'inner_ratio', 0.6, 0.5), 'low 0.6 > high 0.5'),
    (('star', 'num_points', 5.5, 6), 'integers'),
    (('cross', 'half_width', 0.2), '(family, parameter, low, high)'),
])
def test_bad_overrides_are_config_errors(override, words):
  with pytest.raises(errors.ConfigError, match='shape_ranges') as e:
    synthetic.SceneConfig(shape_ranges=(override,)).validate()
  assert words in str(e.value)


def test_data_setting_folder_settings_and_scene_config():
  default = experiments.DataSetting()
  # Unchanged without overrides (earlier outputs still resume).
  assert default.folder_name() == '64px_r0.14-0.3_obj4_2000x300_seed0'
  assert 'shape_ranges' not in default.settings()
  assert default.scene_config() == synthetic.SceneConfig()
  data = experiments.DataSetting(shape_ranges=_WIDE)
  assert data.folder_name().endswith(
      '_star-inner_ratio0.55-0.7_cross-half_width0.32-0.39')
  assert data.settings()['shape_ranges'] == _WIDE
  assert data.scene_config().validate().shape_ranges == _WIDE
  # Only mask_heads may render other shapes than the library's default.
  for experiment in experiments.EXPERIMENTS.values():
    if experiment is not experiments.MASK_HEADS:
      assert not experiment.data.shape_ranges, experiment.name
