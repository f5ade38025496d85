from .inference import (IMAGE_SUFFIXES, build_test_pipeline, count_instances,
                        inference_model, init_model, list_images,
                        output_names)

__all__ = [
    'IMAGE_SUFFIXES', 'init_model', 'build_test_pipeline', 'inference_model',
    'list_images', 'count_instances', 'output_names'
]
