from .inference import (IMAGE_SUFFIXES, build_test_pipeline, inference_model,
                        init_model, list_images)

__all__ = [
    'IMAGE_SUFFIXES', 'init_model', 'build_test_pipeline', 'inference_model',
    'list_images'
]
