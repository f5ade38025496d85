from .exports import (FORMATS, LabelMapWriter, NucleiExporter, OverlayWriter,
                      rasterize_geojson)
from .inference import (IMAGE_SUFFIXES, build_test_pipeline, count_instances,
                        inference_model, init_model, list_images,
                        output_names)
from .tiled_inference import (InstanceStitcher, TiledInferencer, TileGrid,
                              infer_settings, predict_image)

__all__ = [
    'IMAGE_SUFFIXES', 'init_model', 'build_test_pipeline', 'inference_model',
    'list_images', 'count_instances', 'output_names', 'TiledInferencer',
    'TileGrid', 'InstanceStitcher', 'infer_settings', 'predict_image',
    'FORMATS', 'LabelMapWriter', 'NucleiExporter', 'OverlayWriter',
    'rasterize_geojson'
]
