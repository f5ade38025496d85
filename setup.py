"""Build script for nucseg (pure Python; dependencies live in requirements/)."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'nucseg', 'version.py')) as f:
        exec(compile(f.read(), 'nucseg/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read a requirements file, skipping comments and blank lines."""
    reqs = []
    with open(osp.join(osp.dirname(__file__), 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                reqs.append(line)
    return reqs


if __name__ == '__main__':
    setup(
        name='nucseg',
        version=get_version(),
        description='Domain-adaptive nuclei and cell segmentation with SAM, '
        'built on OpenMMLab',
        long_description=open('README.md').read() if osp.exists('README.md') else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'projects')),
        include_package_data=True,
        python_requires='>=3.9',
        license='Apache License 2.0',
        install_requires=parse_requirements('torch.txt') +
        parse_requirements('mmcv.txt') + parse_requirements('runtime.txt'),
        extras_require={'tests': parse_requirements('tests.txt')},
        zip_safe=False)
