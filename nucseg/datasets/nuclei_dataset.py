"""Dataset for the nuclei on-disk convention."""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

from mmseg.datasets import BaseSegDataset

from nucseg.registry import DATASETS
from nucseg.utils.io import ImageReadError, LabelError, image_size


@DATASETS.register_module()
class NucleiDataset(BaseSegDataset):
    """Nuclei instance segmentation data set.

    Layout (written by ``tools/dataset_converters/*`` and
    ``tools/misc/make_synthetic.py``)::

        data_root/
            images/<name>.png    RGB image
            labels/<name>.png    uint16 instance map, 0 = background
            splits/<split>.txt   names, one per line

    The semantic classes describe the target that
    :class:`~nucseg.datasets.transforms.GenerateNucleiTarget` derives from
    the instance map (``background``, ``nucleus``, ``boundary``).

    Args:
        data_root (str): Root folder.
        split (str, optional): Name of a split file in ``splits/``; ignored
            when ``ann_file`` is given. ``None`` uses every image.
        domain (str, optional): Domain name stamped on every sample
            (``results['domain']``); defaults to the folder name of
            ``data_root``.
        domain_id (int): Integer domain label. Defaults to 0.
        is_primary (bool): Whether this is the primary (target) domain of a
            multi-domain setting. Defaults to True.
        require_labels (bool): Raise if an image has no label file. Set it
            False for unlabelled (target-domain or inference) data.
        check_pairs (bool): When the data list is loaded (i.e. when the
            data set is built, before any training), read the header of
            every image and label and raise if one is unreadable or their
            sizes differ, naming both files. Defaults to True.
        metainfo, filter_cfg, indices, serialize_data, pipeline, test_mode,
        lazy_init, max_refetch, ignore_index, reduce_zero_label,
        backend_args: As for :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = dict(
        classes=('background', 'nucleus', 'boundary'),
        palette=[[0, 0, 0], [255, 64, 64], [64, 255, 64]])

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 ann_file: str = '',
                 domain: Optional[str] = None,
                 domain_id: int = 0,
                 is_primary: bool = True,
                 require_labels: bool = True,
                 check_pairs: bool = True,
                 metainfo: Optional[dict] = None,
                 filter_cfg: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 ignore_index: int = 255,
                 reduce_zero_label: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if not ann_file and split is not None:
            ann_file = osp.join('splits', f'{split}.txt')
        self.split = split
        self.domain = domain or osp.basename(osp.normpath(data_root))
        self.domain_id = int(domain_id)
        self.is_primary = bool(is_primary)
        self.require_labels = require_labels
        self.check_pairs = check_pairs
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix
            or dict(img_path='images', seg_map_path='labels'),
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            metainfo=metainfo,
            filter_cfg=filter_cfg,
            indices=indices,
            serialize_data=serialize_data,
            pipeline=list(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init,
            max_refetch=max_refetch,
            ignore_index=ignore_index,
            reduce_zero_label=reduce_zero_label,
            backend_args=backend_args)

    def set_domain(self, domain: str, domain_id: int,
                   is_primary: bool) -> None:
        """Set the domain tags; only valid before :meth:`full_init`."""
        if self._fully_initialized:
            raise RuntimeError(
                f'cannot re-tag {self.data_root}: the dataset is already '
                'initialised; build it with lazy_init=True')
        self.domain, self.domain_id = domain, int(domain_id)
        self.is_primary = bool(is_primary)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'image folder not found: {img_dir} (data_root='
                f'{self.data_root}); expected images/<name>{self.img_suffix}')
        if self.ann_file and not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'split file not found: {self.ann_file}')
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(
                f'no images with suffix {self.img_suffix!r} in {img_dir}'
                + (f' listed by {self.ann_file}' if self.ann_file else ''))
        missing_img = [
            d['img_path'] for d in data_list if not osp.isfile(d['img_path'])
        ]
        if missing_img:
            raise FileNotFoundError(
                f'{len(missing_img)} image(s) listed in {self.ann_file} do '
                f'not exist, e.g. {missing_img[:3]}')
        missing = [
            d['seg_map_path'] for d in data_list
            if not osp.isfile(d['seg_map_path'])
        ]
        if missing and self.require_labels:
            raise FileNotFoundError(
                f'{len(missing)} label map(s) missing in '
                f"{self.data_prefix.get('seg_map_path')}, e.g. "
                f'{missing[:3]}; set require_labels=False for unlabelled '
                'data')
        for d in data_list:
            name = osp.splitext(osp.basename(d['img_path']))[0]
            if not osp.isfile(d['seg_map_path']):
                d['seg_map_path'] = None
            d.update(
                name=name,
                domain=self.domain,
                domain_id=self.domain_id,
                is_primary=self.is_primary)
        if self.check_pairs:
            self._check_pairs(data_list)
        return data_list

    def _check_pairs(self, data_list: List[dict]) -> None:
        """Raise on the first unreadable file or image/label size mismatch.

        Reads file headers only (no pixel decoding for PNG/TIFF/JPEG), so
        a bad validation or test pair stops the run when the data set is
        built instead of after hours of training.

        Raises:
            ImageReadError: Naming the unreadable file.
            LabelError: Naming both files of a size mismatch.
        """
        problems = []
        for d in data_list:
            try:
                img = image_size(d['img_path'])
                if d['seg_map_path'] is None:
                    continue
                lab = image_size(d['seg_map_path'])
            except ImageReadError as err:
                problems.append(str(err))
                continue
            if img != lab:
                problems.append(
                    f'image/label size mismatch: {d["img_path"]} is '
                    f'{img[1]}x{img[0]} (WxH) but {d["seg_map_path"]} is '
                    f'{lab[1]}x{lab[0]}')
        if problems:
            where = f'{self.data_root} (split {self.split!r})'
            more = (f' (and {len(problems) - 5} more)'
                    if len(problems) > 5 else '')
            text = (f'{len(problems)} bad image/label pair(s) in {where}: '
                    + '; '.join(problems[:5]) + more)
            if any('size mismatch' in p for p in problems):
                raise LabelError(text)
            raise ImageReadError(text)
