"""GPU, interconnect and model presets."""

from .gpus import GPU_PRESETS, GPUSpec, get_gpu
from .links import LinkSpec, get_link
from .models import DTYPE_BYTES, MODEL_PRESETS, ModelSpec, get_model, load_hf_config

__all__ = ["GPU_PRESETS", "GPUSpec", "get_gpu", "LinkSpec", "get_link", "DTYPE_BYTES",
           "MODEL_PRESETS", "ModelSpec", "get_model", "load_hf_config"]
