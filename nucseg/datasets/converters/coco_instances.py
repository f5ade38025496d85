"""COCO instance annotations (JSON, polygons or RLE) -> nucseg convention.

Source layout: a folder of images and one COCO JSON file::

    IMAGES/<file_name>                 as listed in the JSON's ``images``
    ANN.json  {"images": [{"id", "file_name", "height", "width"}, ...],
               "annotations": [{"id", "image_id", "category_id",
                                "segmentation", "iscrowd"}, ...],
               "categories": [{"id", "name"}, ...]}

This is how mmdet-style nuclei data sets are distributed (e.g. the
CyC-PDAM sample ``fluo2tcga``). ``segmentation`` may be a list of polygons
(``[x1, y1, x2, y2, ...]``, several parts form one instance), an
uncompressed RLE (``{"counts": [int, ...], "size": [h, w]}``) or a
compressed RLE (``counts`` as a string). They are decoded with
``pycocotools`` (installed with mmdet), i.e. exactly as mmdet and
maskrcnn-benchmark read them for training. Every annotation becomes one
instance; overlaps are resolved by
:func:`~nucseg.datasets.converters.painting.paint_instances` (smaller
nuclei win, nothing dropped silently). A zero-area polygon (pycococreator
writes a nucleus cut by the image border as a line) keeps the pixels of
its outline and is counted as degenerate. ``iscrowd=1`` annotations are
skipped and counted. Output names are the image file stems.

Bad input fails per image with a message naming the JSON, the image and
the annotation id: a polygon with fewer than 3 points or an odd number of
coordinates, an RLE whose size differs from the image, an image entry
whose file does not exist, an image whose size differs from the JSON.
"""
import json
import math
import os
import warnings
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import read_image
from .errors import AnnotationError, MissingAnnotationError, SourceLayoutError
from .layout import Sample, write_sample
from .monuseg import rasterize_polygon
from .painting import paint_instances
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = [
    'load_coco_json', 'decode_coco_segmentation', 'find_coco_samples',
    'convert_coco_sample', 'convert_coco_instances'
]


def load_coco_json(path: PathLike) -> dict:
    """Read and check the top level of a COCO instance JSON file.

    Raises:
        AnnotationError: The file is not JSON or lacks ``images`` /
            ``annotations`` lists (the file is named).
    """
    path = Path(path)
    if not path.is_file():
        raise SourceLayoutError(f'COCO annotation file not found: {path}')
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f'{path} is not valid JSON: {err}') from err
    if not isinstance(data, dict):
        raise AnnotationError(f'{path}: top level must be an object')
    for key in ('images', 'annotations'):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f'{path}: no {key!r} list')
    return data


def _where(ctx: str, ann: dict) -> str:
    return f'{ctx}, annotation id={ann.get("id", "?")}'


def decode_coco_segmentation(ann: dict, height: int, width: int,
                             ctx: str = '<json>') -> Tuple[np.ndarray, bool]:
    """Mask of one COCO annotation.

    Args:
        ann (dict): The annotation (``segmentation`` is read).
        height (int): Image height.
        width (int): Image width.
        ctx (str): Where the annotation comes from (for errors).

    Returns:
        tuple[np.ndarray, bool]: ``height x width`` bool mask (union of
        the parts) and whether a polygon part had zero area (its outline
        is drawn instead, as for MoNuSeg's degenerate regions, so that the
        instance keeps its pixels).

    Raises:
        AnnotationError: Malformed polygon or RLE (``ctx`` and the
            annotation id are named).
    """
    with warnings.catch_warnings():
        # pycocotools 2.0.11 under numpy 2: DeprecationWarning (copy=False)
        # on every decode
        warnings.simplefilter('ignore', DeprecationWarning)
        return _decode(ann, height, width, _where(ctx, ann))


def _decode(ann: dict, height: int, width: int,
            where: str) -> Tuple[np.ndarray, bool]:
    from pycocotools import mask as mask_utils
    seg = ann.get('segmentation')
    if isinstance(seg, list):
        if not seg:
            raise AnnotationError(f'{where}: empty segmentation')
        polys = []
        for k, poly in enumerate(seg):
            if not isinstance(poly, (list, tuple)) or not all(
                    isinstance(v, (int, float)) for v in poly):
                raise AnnotationError(
                    f'{where}: polygon {k} is not a list of numbers')
            if len(poly) % 2:
                raise AnnotationError(
                    f'{where}: polygon {k} has an odd number of '
                    f'coordinates ({len(poly)})')
            if len(poly) < 6:
                raise AnnotationError(
                    f'{where}: polygon {k} has {len(poly) // 2} point(s); '
                    'a polygon needs at least 3')
            if not all(math.isfinite(v) for v in poly):
                raise AnnotationError(
                    f'{where}: polygon {k} has a non-finite coordinate')
            polys.append([float(v) for v in poly])
        rles = mask_utils.frPyObjects(polys, height, width)
        flat = [k for k, a in enumerate(mask_utils.area(rles)) if a == 0]
        rle = mask_utils.merge(rles)
        if flat:
            # zero-area parts (pycococreator writes nuclei cut by the
            # image border as lines) keep the pixels of their outline
            mask = mask_utils.decode(rle).astype(bool)
            for k in flat:
                pix, _ = rasterize_polygon(
                    np.asarray(polys[k]).reshape(-1, 2), (height, width))
                mask.flat[pix] = True
            return mask, True
    elif isinstance(seg, dict):
        size = seg.get('size')
        counts = seg.get('counts')
        if not (isinstance(size, (list, tuple)) and len(size) == 2):
            raise AnnotationError(f'{where}: RLE without a [h, w] size')
        if [int(size[0]), int(size[1])] != [height, width]:
            raise AnnotationError(
                f'{where}: RLE size {list(size)} differs from the image '
                f'size {[height, width]}')
        if isinstance(counts, list):
            if sum(int(c) for c in counts) != height * width or any(
                    int(c) < 0 for c in counts):
                raise AnnotationError(
                    f'{where}: uncompressed RLE counts do not cover the '
                    f'{height}x{width} image')
            rle = mask_utils.frPyObjects(seg, height, width)
        elif isinstance(counts, str):
            rle = dict(size=[height, width], counts=counts.encode())
        else:
            raise AnnotationError(f'{where}: RLE counts must be a list or '
                                  'a string')
    else:
        raise AnnotationError(
            f'{where}: segmentation must be a polygon list or an RLE dict,'
            f' got {type(seg).__name__}')
    try:
        mask = mask_utils.decode(rle)
    except Exception as err:  # pycocotools raises plain exceptions
        raise AnnotationError(f'{where}: cannot decode RLE: {err}') from err
    return mask.astype(bool), False


def find_coco_samples(image_dir: PathLike,
                      ann_file: PathLike,
                      split: str = 'train',
                      categories: Optional[Sequence[str]] = None
                      ) -> List[Sample]:
    """One :class:`Sample` per image entry of the JSON.

    Args:
        image_dir: Folder of the images (``file_name`` is relative to it).
        ann_file: COCO JSON file.
        split (str): Split of every sample.
        categories (Sequence[str], optional): Keep annotations of these
            category names only (default: all).

    Returns:
        list[Sample]: ``annotation`` is ``dict(json, id, height, width,
        anns)``.

    Raises:
        SourceLayoutError: Missing folder/file, or an unknown category.
        AnnotationError: Malformed image entries or annotations that refer
            to an image id the JSON does not list.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise SourceLayoutError(f'image folder not found: {image_dir}')
    data = load_coco_json(ann_file)
    cat_ids = None
    if categories:
        names = {c.get('name'): c.get('id')
                 for c in data.get('categories', [])}
        unknown = [c for c in categories if c not in names]
        if unknown:
            raise SourceLayoutError(
                f'{ann_file}: no categories {unknown} (has '
                f'{sorted(map(str, names))})')
        cat_ids = {names[c] for c in categories}
    by_image: Dict[object, List[dict]] = defaultdict(list)
    for ann in data['annotations']:
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise AnnotationError(
                f'{ann_file}: annotation without image_id: {ann!r:.80}')
        if cat_ids is None or ann.get('category_id') in cat_ids:
            by_image[ann['image_id']].append(ann)
    samples, ids = [], set()
    for img in data['images']:
        try:
            img_id, file_name = img['id'], str(img['file_name'])
            height, width = int(img['height']), int(img['width'])
        except (KeyError, TypeError, ValueError) as err:
            raise AnnotationError(
                f'{ann_file}: image entry without id/file_name/height/'
                f'width: {img!r:.120}') from err
        ids.add(img_id)
        samples.append(
            Sample(
                Path(file_name).stem, image_dir / file_name,
                dict(json=str(ann_file), id=img_id, height=height,
                     width=width, anns=by_image.get(img_id, [])), split))
    orphans = sorted(set(by_image) - ids, key=str)
    if orphans:
        raise AnnotationError(
            f'{ann_file}: annotations refer to image ids the JSON does not '
            f'list: {orphans[:10]}')
    return samples


def convert_coco_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one image and its annotations (see the module doc)."""
    meta = sample.annotation
    ctx = f'{meta["json"]}: image id={meta["id"]} ({sample.image.name})'
    if not sample.image.is_file():
        raise MissingAnnotationError(
            f'{ctx}: image file {sample.image} does not exist')
    image = read_image(sample.image)
    shape: Tuple[int, int] = (meta['height'], meta['width'])
    if image.shape[:2] != shape:
        raise AnnotationError(f'{ctx}: the image is {image.shape[:2]} but '
                              f'the JSON says {shape}')
    pixel_sets, names, crowd, degenerate = [], [], 0, []
    for ann in meta['anns']:
        if ann.get('iscrowd', 0):
            crowd += 1
            continue
        mask, flat = decode_coco_segmentation(ann, *shape, ctx=ctx)
        if flat:
            degenerate.append(len(pixel_sets))
        pixel_sets.append(np.flatnonzero(mask))
        names.append(f'annotation id={ann.get("id", "?")}')
    label, report = paint_instances(pixel_sets, shape, names)
    report.degenerate = degenerate
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       meta['json'])
    info = report.as_dict()
    info['crowd'] = crowd
    return SampleResult(sample.name, sample.split, num, shape, info)


def convert_coco_instances(image_dir: PathLike,
                           ann_file: PathLike,
                           out_root: PathLike,
                           split: str = 'train',
                           categories: Optional[Sequence[str]] = None,
                           split_files: Optional[Sequence[PathLike]] = None,
                           nproc: int = 1,
                           show_progress: bool = False) -> ConversionSummary:
    """Convert a COCO instance data set (see the module doc).

    Args:
        image_dir: Image folder.
        ann_file: COCO JSON file.
        out_root: Output root (nucseg convention).
        split (str): Split name of the converted images.
        categories (Sequence[str], optional): Category names to keep.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.
    """
    samples = find_coco_samples(image_dir, ann_file, split, categories)
    return run_conversion(
        'COCO',
        samples,
        partial(convert_coco_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress)
