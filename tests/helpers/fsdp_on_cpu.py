"""Run a module under FSDP on CPU processes: `python -m fsdp_on_cpu recipes.pretrain_mlm ARGS`.

accelerate 1.15 turns on FSDP only for accelerator devices: with `use_cpu` its state is
MULTI_CPU (DDP over gloo) and the FSDP settings that `accelerate launch` exported are ignored.
torch's FSDP2 (`fully_shard`) itself runs on CPU over gloo, so for the test this shim makes
accelerate's state FSDP when the launcher asked for it, then runs the module unchanged.
"""

import os
import runpy
import sys

from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _init_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    # Every later `AcceleratorState()` (Trainer makes several) copies PartialState's MULTI_CPU
    # back over the shared state, so the plugin the first call kept is applied again each time:
    # else saving takes the non-FSDP path on sharded weights and hangs in a one-rank gather.
    fsdp_plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
    asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if asked and fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin


AcceleratorState.__init__ = _init_fsdp_on_cpu

if __name__ == "__main__":
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
