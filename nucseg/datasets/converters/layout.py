"""Source and output file layout of the converters.

Finding and pairing the files of a source data set (images, annotations,
split lists) and writing the nucseg convention::

    <out>/images/<name>.png   RGB uint8
    <out>/labels/<name>.png   uint16 instance map, 0 = background,
                              ids renumbered 1..N
    <out>/splits/<split>.txt  one <name> per line
"""
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import check_pair, write_image, write_label
from .errors import MissingAnnotationError
from .painting import check_instance_count

PathLike = Union[str, os.PathLike]

#: Image file extensions converters look for (lower case).
IMAGE_EXTENSIONS = ('.png', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp')

__all__ = [
    'IMAGE_EXTENSIONS', 'Sample', 'write_sample', 'write_split',
    'read_split_file', 'copy_split_files', 'list_files', 'find_subdir',
    'pair_by_stem'
]


@dataclass
class Sample:
    """One source sample to convert.

    Attributes:
        name (str): Output name (``<out>/images/<name>.png``).
        image (Path): Source image file.
        annotation (Any): Source annotation: a path, a list of paths or
            format-specific data (e.g. RLE strings); must be picklable.
        split (str): Split the sample belongs to.
        extra (dict): Format-specific options.
    """
    name: str
    image: Path
    annotation: Any
    split: str
    extra: Dict[str, Any] = field(default_factory=dict)


def write_sample(out_root: PathLike, name: str, image: np.ndarray,
                 label: np.ndarray, image_src: PathLike,
                 label_src: PathLike) -> int:
    """Check and write one converted pair in the nucseg convention.

    Args:
        out_root: Output root.
        name (str): Output name.
        image (np.ndarray): ``HxWx3`` uint8 RGB image.
        label (np.ndarray): ``HxW`` integer instance map with ids ``1..N``.
        image_src: Source image (named in errors).
        label_src: Source annotation (named in errors).

    Returns:
        int: Number of instances written.

    Raises:
        LabelError: If sizes differ or ids do not fit uint16.
    """
    check_pair(image, label, os.fspath(image_src), os.fspath(label_src))
    num = int(label.max()) if label.size else 0
    check_instance_count(num, label_src)
    out_root = Path(out_root)
    write_image(out_root / 'images' / f'{name}.png', image)
    write_label(out_root / 'labels' / f'{name}.png', label)
    return int(np.count_nonzero(np.bincount(label.ravel())[1:]))


def write_split(out_root: PathLike, split: str,
                names: Iterable[str]) -> List[str]:
    """Write ``<out_root>/splits/<split>.txt`` (sorted, one name a line).

    An existing file of that name is replaced.

    Returns:
        list[str]: The names written.
    """
    names = sorted(set(names))
    path = Path(out_root) / 'splits' / f'{split}.txt'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{n}\n' for n in names))
    return names


def read_split_file(path: PathLike) -> List[str]:
    """Read names from a split list (blank lines and ``#`` comments skipped).

    A trailing image extension (``.png``, ``.tif``...) is removed, so lists
    of file names such as BBBC039's ``metadata/*.txt`` work too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'split file not found: {path}')
    names = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        stem, ext = os.path.splitext(line)
        names.append(stem if ext.lower() in IMAGE_EXTENSIONS else line)
    return names


def copy_split_files(out_root: PathLike,
                     split_files: Sequence[PathLike],
                     skip: Sequence[str] = ()) -> Dict[str, List[str]]:
    """Write user split lists as ``splits/<file stem>.txt``.

    Every listed name must exist as ``<out_root>/images/<name>.png``.

    Args:
        out_root: Output root.
        split_files (Sequence): The user's split lists.
        skip (Sequence[str]): Names left out of the lists (samples whose
            conversion failed).

    Raises:
        FileNotFoundError: Naming the split file and the missing names.
    """
    written = {}
    skip = set(skip)
    for path in split_files:
        names = [n for n in read_split_file(path) if n not in skip]
        missing = [
            n for n in names
            if not (Path(out_root) / 'images' / f'{n}.png').is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f'split file {os.fspath(path)} lists {len(missing)} names '
                f'that are not converted in {os.fspath(out_root)}: '
                f'{", ".join(missing[:5])}' +
                (' ...' if len(missing) > 5 else ''))
        split = Path(path).stem
        written[split] = write_split(out_root, split, names)
    return written


def list_files(folder: PathLike,
               extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[Path]:
    """Files of ``folder`` (not recursive) with one of ``extensions``.

    Hidden files (``.``-prefixed, e.g. macOS ``._*`` forks) are ignored.
    """
    exts = tuple(e.lower() for e in extensions)
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith('.')
                  and p.suffix.lower() in exts)


def find_subdir(root: PathLike, candidates: Sequence[str]) -> Optional[Path]:
    """First sub-folder of ``root`` matching a candidate name.

    Names are compared case-insensitively, ignoring spaces, ``_`` and
    ``-`` (``Tissue Images`` matches ``tissue_images``).
    """
    def key(s: str) -> str:
        return ''.join(c for c in s.lower() if c not in ' _-')

    root = Path(root)
    if not root.is_dir():
        return None
    subdirs = {key(p.name): p for p in sorted(root.iterdir()) if p.is_dir()}
    for cand in candidates:
        if key(cand) in subdirs:
            return subdirs[key(cand)]
    return None


def pair_by_stem(images: Sequence[Path],
                 annotations: Dict[str, Path],
                 skip_missing: bool = False,
                 expected: str = '<stem>') -> Tuple[List[Tuple[Path, Path]],
                                                    List[str]]:
    """Pair each image with the annotation of the same stem.

    Args:
        images (Sequence[Path]): Source images.
        annotations (dict[str, Path]): Annotation file by stem.
        skip_missing (bool): Skip (and return) images without annotation
            instead of raising.
        expected (str): Description of the expected annotation file used
            in the error message (``<stem>`` is replaced by the stem).

    Returns:
        tuple: ``[(image, annotation), ...]`` and the stems skipped.

    Raises:
        MissingAnnotationError: If an image has no annotation and
            ``skip_missing`` is False.
    """
    pairs, skipped = [], []
    for img in images:
        ann = annotations.get(img.stem)
        if ann is None:
            if not skip_missing:
                raise MissingAnnotationError(
                    f'no annotation for image {img}: expected '
                    f'{expected.replace("<stem>", img.stem)} (pass '
                    'skip_missing / --skip-missing to skip such images)')
            warnings.warn(f'skipping {img}: no annotation')
            skipped.append(img.stem)
            continue
        pairs.append((img, ann))
    return pairs, skipped
