"""The PyTorch engine: any sequence classifier, on the CPU or CUDA, at fp32, bf16, fp16 or int8."""

from __future__ import annotations

import numpy as np
import torch

from server.engines import Engine
from server.engines.quantization import SCHEMES, closest_to_reference
from server.hardware import device_name, dtype_name


def quantize_int8(model: torch.nn.Module, calibration: tuple[np.ndarray, np.ndarray]) -> torch.nn.Module:
    """Dynamic int8 quantization of the Linear layers (weights int8, activations quantized per batch), with
    one scale per weight tensor or per output channel, whichever keeps the logits of the calibration
    batch (input ids, attention mask) closer to the float32 model's (server.engines.quantization)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfigs = {"per_tensor": default_dynamic_qconfig, "per_channel": per_channel_dynamic_qconfig}
    quantized = {scheme: quantize_dynamic(model, {torch.nn.Linear: qconfigs[scheme]}, dtype=torch.qint8)
                 for scheme in SCHEMES}
    cpu = torch.device("cpu")
    outputs = {scheme: TorchEngine(m, cpu, "int8").run(*calibration) for scheme, m in quantized.items()}
    best, _ = closest_to_reference(TorchEngine(model, cpu, "float32").run(*calibration), outputs)
    return quantized[best]


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | str):
        self.model = model
        self.torch_device = device
        self.dtype = dtype if isinstance(dtype, str) else dtype_name(dtype)
        self.device = device_name(device)

    @torch.inference_mode()
    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray | None = None) -> np.ndarray:
        ids = torch.from_numpy(input_ids).to(self.torch_device, non_blocking=True)
        mask = torch.from_numpy(attention_mask).to(self.torch_device, non_blocking=True)
        if token_type_ids is None:  # plain texts: the model's own default (all segment 0)
            return self.model(input_ids=ids, attention_mask=mask).logits.float().cpu().numpy()
        types = torch.from_numpy(token_type_ids).to(self.torch_device, non_blocking=True)
        return self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float().cpu().numpy()
