"""bf16 only where the hardware runs it fast: a GPU with bf16, a CPU with AMX or AVX512-BF16.
Without native bf16 a CPU runs bf16 matmuls ~100x slower than fp32.
"""

import os

import torch


def native_cpu_bf16() -> str | None:
    """The CPU feature that runs bf16 matmuls natively, or None. Without one (e.g. AMD Zen 3,
    AVX2 only) oneDNN falls back to a reference kernel, two orders of magnitude slower than
    fp32 (docs/measurements.md, "Throughput and time to accuracy")."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512-BF16"
    return None


def resolve_bf16(use_cpu: bool, fp16: bool) -> tuple[bool, str]:
    """`bf16: auto`: bf16 mixed precision where the hardware runs it fast, fp32 elsewhere.
    Returns the choice and the reason, which the run prints and the card records."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if fp16:
        return False, "fp16 is set"
    if launcher != "no":  # accelerate launch --mixed_precision / its config file decides
        return launcher == "bf16", f"accelerate's mixed_precision is {launcher}"
    if torch.cuda.is_available() and not use_cpu:
        gpu = torch.cuda.get_device_name()
        if torch.cuda.is_bf16_supported():
            return True, f"{gpu} supports bf16"
        return False, f"{gpu} has no bf16 support"
    feature = native_cpu_bf16()
    if feature:
        return True, f"this CPU has native bf16 matmuls ({feature})"
    return False, "this CPU has no native bf16 (no AMX or AVX512-BF16): it would run ~100x slower"


def warn_if_slow_bf16(training_args) -> None:
    """`bf16: true` set by hand on a CPU without native bf16: say it will be slow."""
    if training_args.bf16 and training_args.device.type == "cpu" and not native_cpu_bf16():
        print(
            "WARNING: bf16 on this CPU has no fast kernels (needs AMX or AVX512-BF16): "
            "matmuls run ~100x slower than in fp32. Set `bf16: auto` (or false)."
        )
