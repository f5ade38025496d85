"""MoNuSeg / Kumar (Aperio ImageScope XML polygons) -> nucseg convention.

Source layouts accepted (``SRC``):

* training layout (MoNuSeg 2018 training data, Kumar et al. 2017)::

      SRC/Tissue_Images/<case>.tif    (also "Tissue Images")
      SRC/Annotations/<case>.xml

* flat layout (MoNuSeg 2018 test data)::

      SRC/<case>.tif
      SRC/<case>.xml

Each XML holds ``<Annotations><Annotation><Regions><Region Id=..>
<Vertices><Vertex X=".." Y=".."/>...`` with one Region (a polygon in
pixel coordinates, X = column, Y = row, floats) per nucleus. Every Region
becomes one instance; see :func:`parse_monuseg_xml` for the rules on
overlapping, degenerate and out-of-image polygons.

Splits: the MoNuSeg 2018 challenge split is given by the download (30
training images, 14 test images). All converted names go to
``splits/train.txt`` for the training layout and ``splits/test.txt`` for
the flat layout unless ``split`` says otherwise; extra lists (e.g. the
Kumar split of HoVer-Net) can be passed as ``split_files``.
"""
import os
import warnings
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from nucseg.utils.io import read_image
from .errors import AnnotationError, SourceLayoutError
from .layout import Sample, find_subdir, list_files, pair_by_stem, write_sample
from .painting import PaintReport, paint_instances
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

#: Vertex coordinates are clamped to +-this many pixels (guards OpenCV
#: against absurd values; any real polygon lies far inside it).
COORD_LIMIT = 1 << 20

IMAGE_DIRS = ('Tissue_Images', 'Tissue Images', 'TissueImages', 'images')
ANNOTATION_DIRS = ('Annotations', 'Annotation', 'annotations_xml')

__all__ = [
    'Region', 'read_monuseg_regions', 'rasterize_polygon',
    'parse_monuseg_xml', 'find_monuseg_samples', 'convert_monuseg_sample',
    'convert_monuseg'
]


class Region(NamedTuple):
    """One annotated polygon.

    Attributes:
        region_id (str): The Region's ``Id`` attribute (its position in
            the file if it has none).
        vertices (np.ndarray): ``(N, 2)`` float64 ``(x, y)`` vertices.
    """
    region_id: str
    vertices: np.ndarray


def read_monuseg_regions(xml_path: PathLike) -> List[Region]:
    """Read every ``Region`` polygon of an Aperio ImageScope XML file.

    Regions of all ``Annotation`` elements are returned, in document order.

    Raises:
        AnnotationError: If the XML cannot be parsed or a vertex has a
            missing or non-numeric coordinate (the file and Region are
            named).
    """
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as err:
        raise AnnotationError(f'cannot parse XML {xml_path}: {err}') from err
    regions = []
    for k, region in enumerate(root.iter('Region')):
        rid = region.get('Id', str(k + 1))
        coords = []
        for vertex in region.iter('Vertex'):
            try:
                x, y = float(vertex.get('X')), float(vertex.get('Y'))
            except (TypeError, ValueError) as err:
                raise AnnotationError(
                    f'{xml_path}: Region Id={rid} has a Vertex with a '
                    f'missing or invalid X/Y: {vertex.attrib}') from err
            coords.append((x, y))
        verts = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(verts)):
            raise AnnotationError(
                f'{xml_path}: Region Id={rid} has a non-finite vertex')
        regions.append(Region(rid, verts))
    return regions


def rasterize_polygon(vertices: np.ndarray,
                      shape: Tuple[int, int]) -> Tuple[np.ndarray, bool]:
    """Pixels of a polygon inside an image.

    Vertices are rounded to the nearest pixel and the polygon is filled
    with :func:`cv2.fillPoly` (boundary pixels included). The parts
    outside the image are clipped. A polygon with fewer than 3 distinct
    rounded vertices or zero area is *degenerate*: its vertices and the
    segments between them are drawn instead, so it still has pixels.

    Args:
        vertices (np.ndarray): ``(N, 2)`` ``(x, y)`` vertices.
        shape (tuple[int, int]): ``(H, W)`` of the image.

    Returns:
        tuple[np.ndarray, bool]: Flat pixel indices ``row * W + col``
        (int64, possibly empty) and whether the polygon is degenerate.
    """
    h, w = int(shape[0]), int(shape[1])
    verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if verts.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), True
    pts = np.clip(np.round(verts), -COORD_LIMIT, COORD_LIMIT).astype(
        np.int64)
    distinct = np.unique(pts, axis=0).shape[0]
    degenerate = distinct < 3 or cv2.contourArea(
        pts.astype(np.float32).reshape(-1, 1, 2)) == 0
    x0, y0 = np.maximum(pts.min(axis=0), 0)
    x1 = min(int(pts[:, 0].max()), w - 1)
    y1 = min(int(pts[:, 1].max()), h - 1)
    if x0 > x1 or y0 > y1:
        return np.zeros(0, dtype=np.int64), bool(degenerate)
    canvas = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    local = (pts - np.array([x0, y0])).astype(np.int32).reshape(-1, 1, 2)
    if degenerate:
        cv2.polylines(canvas, [local], isClosed=True, color=1, thickness=1)
    else:
        cv2.fillPoly(canvas, [local], color=1)
    rows, cols = np.nonzero(canvas)
    return (rows.astype(np.int64) + y0) * w + cols + x0, bool(degenerate)


def parse_monuseg_xml(
    xml_path: PathLike,
    shape: Tuple[int, int],
    return_report: bool = False
) -> Union[np.ndarray, Tuple[np.ndarray, PaintReport]]:
    """Rasterise a MoNuSeg XML into an instance label map.

    Every Region becomes one instance:

    * polygons are rasterised by :func:`rasterize_polygon` (degenerate
      ones from their vertices, out-of-image parts clipped);
    * overlapping regions are painted from the largest to the smallest,
      so a small nucleus overlapping a large one keeps its pixels;
    * a region hidden completely by others gets pixels given back
      (:func:`~nucseg.datasets.converters.painting.paint_instances`);
    * only a region with no pixel at all (no vertices, or entirely
      outside the image) can be lost; it is reported in a warning naming
      the file and Region Id, and in the report.

    Ids are ``1..N`` in document order of the kept Regions.

    Args:
        xml_path: ImageScope XML file.
        shape (tuple[int, int]): ``(H, W)`` of the image.
        return_report (bool): Also return the :class:`PaintReport`.

    Returns:
        np.ndarray | tuple: ``HxW`` int32 label map, and the report if
        ``return_report``.
    """
    regions = read_monuseg_regions(xml_path)
    pixel_sets, degenerate = [], []
    for i, region in enumerate(regions):
        pix, deg = rasterize_polygon(region.vertices, shape)
        pixel_sets.append(pix)
        if deg and len(region.vertices):
            degenerate.append(i)
    names = [f'Region Id={r.region_id}' for r in regions]
    label, report = paint_instances(pixel_sets, shape, names)
    report.degenerate = degenerate
    report.dropped = [(i, 'no vertices') if not len(regions[i].vertices) else
                      (i, why) for i, why in report.dropped]
    if report.dropped:
        warnings.warn(f'{xml_path}: {len(report.dropped)} of {len(regions)} '
                      'regions could not be kept: ' + '; '.join(
                          f'{names[i]} ({why})' for i, why in report.dropped))
    return (label, report) if return_report else label


def find_monuseg_samples(
        src: PathLike,
        split: Optional[str] = None,
        skip_missing: bool = False) -> Tuple[List[Sample], List[str], str]:
    """Find the image/XML pairs of a MoNuSeg source folder.

    Args:
        src: Source folder (training or flat layout, see module doc).
        split (str, optional): Split name; defaults to ``'train'`` for the
            training layout and ``'test'`` for the flat layout.
        skip_missing (bool): Skip images without XML instead of raising.

    Returns:
        tuple: samples, skipped image stems, and the layout found
        (``'train-layout'`` or ``'flat'``).
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'MoNuSeg source folder not found: {src}')
    img_dir = find_subdir(src, IMAGE_DIRS)
    ann_dir = find_subdir(src, ANNOTATION_DIRS)
    if img_dir is not None and ann_dir is not None:
        layout, default_split = 'train-layout', 'train'
    elif list_files(src, ('.xml', )):
        img_dir = ann_dir = src
        layout, default_split = 'flat', 'test'
    else:
        raise SourceLayoutError(
            f'{src} has neither Tissue_Images/ + Annotations/ (training '
            'layout) nor <case>.tif + <case>.xml files (flat test layout)')
    split = split or default_split
    xmls = {p.stem: p for p in list_files(ann_dir, ('.xml', ))}
    images = list_files(img_dir)
    pairs, skipped = pair_by_stem(
        images, xmls, skip_missing, expected=str(ann_dir / '<stem>.xml'))
    orphans = sorted(set(xmls) - {p.stem for p in images})
    if orphans:
        warnings.warn(f'{ann_dir}: {len(orphans)} XML files have no image '
                      f'and are ignored: {", ".join(orphans)}')
    samples = [Sample(img.stem, img, xml, split) for img, xml in pairs]
    return samples, skipped, layout


def convert_monuseg_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one MoNuSeg image/XML pair (see :func:`parse_monuseg_xml`).
    """
    image = read_image(sample.image)
    label, report = parse_monuseg_xml(
        sample.annotation, image.shape[:2], return_report=True)
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape,
                        report.as_dict())


def convert_monuseg(src: PathLike,
                    out_root: PathLike,
                    split: Optional[str] = None,
                    split_files: Optional[Sequence[PathLike]] = None,
                    nproc: int = 1,
                    skip_missing: bool = False,
                    show_progress: bool = False) -> ConversionSummary:
    """Convert a MoNuSeg / Kumar source folder.

    Args:
        src: Source folder (training or flat test layout).
        out_root: Output root of the nucseg convention.
        split (str, optional): Split name for every converted image
            (default ``'train'`` / ``'test'`` by layout).
        split_files (Sequence, optional): Extra split lists written as
            ``splits/<file stem>.txt``.
        nproc (int): Processes.
        skip_missing (bool): Skip images without XML (default: raise).
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written, with region statistics.
    """
    samples, skipped, _ = find_monuseg_samples(src, split, skip_missing)
    return run_conversion(
        'MoNuSeg',
        samples,
        partial(convert_monuseg_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
