"""Why PyTorch could not be loaded, in one line.

Under an address-space limit (``ulimit -v``, systemd ``LimitAS``, a container's) smaller than
what PyTorch's shared libraries map, ``import torch`` fails deep in the dynamic loader
(``libtorch_cpu.so: failed to map segment from shared object``) with an 18-line traceback
that names neither the limit nor what to do. The command line and the node's process catch
that ImportError and say this instead. Standard library only: it runs when torch cannot.
"""

from __future__ import annotations

import resource

# About what a CPU+CUDA build of torch 2.14 needs to import here (4 GB worked, 3 GB did not).
TORCH_ADDRESS_SPACE_GIB = 4


def is_torch_import_failure(error: ImportError) -> bool:
    """Whether an ImportError came from loading PyTorch (or one of its libraries)."""
    text = f"{error.name or ''} {error}"
    return "torch" in text


def torch_load_problem(error: ImportError) -> str:
    """One line: PyTorch could not be loaded, why, the address-space limit in force, what to do."""
    lines = str(error).strip().splitlines()
    what = f"PyTorch could not be loaded ({lines[0] if lines else type(error).__name__})"
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        return (
            f"{what}: the address-space limit in force (RLIMIT_AS: ulimit -v, systemd LimitAS) is "
            f"{soft / 2**30:.1f} GiB; PyTorch needs about {TORCH_ADDRESS_SPACE_GIB} GiB of address space: raise "
            "the limit or remove it"
        )
    return f"{what}; no address-space limit is in force: reinstall the pinned torch (requirements/runtime.txt)"
