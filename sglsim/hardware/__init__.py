"""GPU, interconnect and model presets."""

from .gpus import GPU_PRESETS, GPUSpec, get_gpu
from .links import LinkSpec, ServerPlacement, get_link, link_between, place_servers
from .models import DTYPE_BYTES, MODEL_PRESETS, ModelSpec, get_model, load_hf_config

__all__ = ["GPU_PRESETS", "GPUSpec", "get_gpu", "LinkSpec", "ServerPlacement", "get_link", "link_between",
           "place_servers", "DTYPE_BYTES", "MODEL_PRESETS", "ModelSpec", "get_model", "load_hf_config"]
