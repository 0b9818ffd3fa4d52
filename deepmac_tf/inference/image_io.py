"""Images and box prompts for inference: loading, encoding and checks.

Images are uint8 numpy arrays [height, width, 3] (RGB). Boxes are float32
[num_boxes, 4] ymin, xmin, ymax, xmax normalized to the image.
"""

import io
import json
import os

import numpy as np
from PIL import Image

from deepmac_tf.errors import DataError


def load_image(image, name='image'):
  """Returns an RGB uint8 [height, width, 3] array.

  Args:
    image: a path, a PIL image, or an array [H, W], [H, W, 1], [H, W, 3] or
      [H, W, 4] (alpha dropped); float arrays must hold 0..255 values
      (a float image in 0..1 is rejected: it would be seen as black).
      16-bit grayscale images (PNG, TIFF) are scaled to 8 bits, as TF's PNG
      decoder does for training records.
    name: what to call the input in errors.

  Raises:
    DataError: unreadable file or unusable array.
  """
  if isinstance(image, (str, os.PathLike)):
    path = os.fspath(image)
    try:
      with Image.open(path) as opened:
        return _from_pil(opened, f'{name} ({path})')
    except FileNotFoundError:
      raise DataError(f'{name}: {path} does not exist.') from None
    except DataError:
      raise
    except (OSError, ValueError) as e:
      raise DataError(f'{name}: cannot read {path} as an image ({e}).'
                      ) from None
  if isinstance(image, Image.Image):
    return _from_pil(image, name)
  array = np.asarray(image)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.ndim == 2:
    array = np.stack([array] * 3, axis=-1)
  if array.ndim != 3 or array.shape[-1] not in (3, 4):
    raise DataError(f'{name}: expected an image [height, width, 3], got an '
                    f'array of shape {list(array.shape)}.')
  if array.shape[0] < 1 or array.shape[1] < 1:
    raise DataError(f'{name}: the image is empty ({list(array.shape)}).')
  array = array[..., :3]
  if array.dtype != np.uint8:
    if not np.issubdtype(array.dtype, np.number):
      raise DataError(f'{name}: expected numbers, got dtype {array.dtype}.')
    check_pixel_range(array, name)
    array = np.round(array.astype(np.float64)).astype(np.uint8)
  return np.ascontiguousarray(array)


def _from_pil(image, name):
  """RGB uint8 from a PIL image whose pixels PIL's own RGB conversion would
  misread: float ('F') and 32-bit integer ('I') pixels are range-checked,
  16-bit grayscale ('I;16*') is scaled to 8 bits (PIL would clip it to
  white)."""
  if image.mode in ('F', 'I'):
    return load_image(np.asarray(image), name=name)
  if image.mode.startswith('I;16'):
    wide = np.asarray(image).astype(np.uint32)
    return load_image((wide >> 8).astype(np.uint8), name=name)
  return np.asarray(image.convert('RGB'))


def check_pixel_range(array, name='image'):
  """Rejects pixel values a 0..255 model would misread.

  A float image in 0..1 (what many image libraries produce) would be seen
  as nearly black; negative values (a normalized image) or values above 255
  have no 0..255 meaning.

  Raises:
    DataError: naming the input, its value range and the fix.
  """
  low, high = float(np.min(array)), float(np.max(array))
  if not (np.isfinite(low) and np.isfinite(high)):
    raise DataError(f'{name}: the image holds NaN or Inf values.')
  if low < 0 or high > 255:
    raise DataError(f'{name}: pixel values range over {low:.4g}..{high:.4g}; '
                    'expected 0..255 (undo any normalization, or pass '
                    'uint8).')
  if np.issubdtype(array.dtype, np.floating) and 0 < high <= 1.0:
    raise DataError(f'{name}: a float image with values in 0..{high:.4g}; '
                    'the model expects 0..255 (multiply by 255, or pass '
                    'uint8).')


def encode_png(image):
  """uint8 [H, W, 3] -> PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def check_boxes(boxes, name='boxes', image_size=None):
  """Validates box prompts and returns float32 [N, 4] normalized boxes.

  Args:
    boxes: array-like [N, 4] ymin, xmin, ymax, xmax, normalized to the
      image unless ``image_size`` is given.
    name: what to call the input in errors.
    image_size: (height, width) when boxes are in pixels.

  Raises:
    DataError: wrong shape, non-finite values, values outside [0, 1] or an
      inverted box (naming the box).
  """
  try:
    array = np.asarray(boxes, dtype=np.float64)
  except (TypeError, ValueError):
    raise DataError(f'{name}: expected numbers [[ymin, xmin, ymax, xmax], '
                    '...].') from None
  if array.size == 0:
    return np.zeros([0, 4], np.float32)
  if array.ndim == 1 and array.shape[0] == 4:
    array = array[None]
  if array.ndim != 2 or array.shape[1] != 4:
    raise DataError(f'{name}: expected [num_boxes, 4] (ymin, xmin, ymax, '
                    f'xmax), got shape {list(array.shape)}.')
  if image_size is not None:
    height, width = image_size
    array = array / np.array([height, width, height, width], np.float64)
  for index, box in enumerate(array):
    where = f'{name}: box {index} {box.round(4).tolist()}'
    if not np.all(np.isfinite(box)):
      raise DataError(f'{where} has non-finite values.')
    if np.any(box < 0.0) or np.any(box > 1.0):
      raise DataError(f'{where}: coordinates must be normalized to [0, 1] '
                      '(ymin, xmin, ymax, xmax divided by the image height / '
                      'width).')
    if box[2] < box[0] or box[3] < box[1]:
      raise DataError(f'{where}: expected ymin <= ymax and xmin <= xmax.')
  return array.astype(np.float32)


def parse_boxes(text, name='--boxes'):
  """Parses box prompts from a flag value.

  Args:
    text: ``"ymin,xmin,ymax,xmax;..."`` (normalized), or the path of a JSON
      file holding a list of [ymin, xmin, ymax, xmax], a list of
      ``{"box": [...], "category_id": k}`` objects, or ``{"boxes": [...]}``.
    name: flag name for errors.

  Returns:
    (boxes float32 [N, 4], category ids int32 [N] (0 where not given)).

  Raises:
    DataError: a malformed value, naming the flag and the problem.
  """
  text = (text or '').strip()
  if text.endswith('.json') or os.path.isfile(text):
    try:
      with open(text, encoding='utf-8') as f:
        content = json.load(f)
    except FileNotFoundError:
      raise DataError(f'{name}: {text} does not exist.') from None
    except (OSError, ValueError) as e:
      raise DataError(f'{name}: cannot read {text} as JSON ({e}).') from None
    return _boxes_from_json(content, f'{name} ({text})')
  boxes = []
  for index, part in enumerate(p for p in text.split(';') if p.strip()):
    values = [v for v in part.replace(' ', '').split(',') if v]
    if len(values) != 4:
      raise DataError(f'{name}: box {index} {part.strip()!r} needs 4 values '
                      'ymin,xmin,ymax,xmax (boxes separated by ";").')
    try:
      boxes.append([float(v) for v in values])
    except ValueError:
      raise DataError(f'{name}: box {index} {part.strip()!r} has a value '
                      'that is not a number.') from None
  if not boxes:
    raise DataError(f'{name}: no boxes given; expected '
                    '"ymin,xmin,ymax,xmax;..." or a JSON file.')
  checked = check_boxes(boxes, name)
  return checked, np.zeros([len(checked)], np.int32)


def _boxes_from_json(content, name):
  if isinstance(content, dict) and 'boxes' in content:
    content = content['boxes']
  if not isinstance(content, list) or not content:
    raise DataError(f'{name}: expected a non-empty list of boxes.')
  boxes, classes = [], []
  for index, entry in enumerate(content):
    if isinstance(entry, dict):
      if 'box' not in entry:
        raise DataError(f'{name}: entry {index} has no "box" key.')
      boxes.append(entry['box'])
      classes.append(entry.get('category_id', 0))
    else:
      boxes.append(entry)
      classes.append(0)
  try:
    class_ids = np.asarray(classes, np.int32)
  except (TypeError, ValueError):
    raise DataError(f'{name}: category_id values must be integers.') from None
  return check_boxes(boxes, name), class_ids
