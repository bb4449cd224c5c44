"""The ``accelerator`` an accelerate loop receives: the real ``accelerate.Accelerator(cpu=True)`` where
accelerate is installed, else a single-process stand-in that says which of its attributes it lacks."""

from __future__ import annotations

import contextlib
import os
import sys

from .stand_in_gaps import missing


ACCELERATE_REAL = ("install accelerate into the environment verify runs user code in "
                   f"({sys.executable}): verify then runs the real accelerate.Accelerator(cpu=True)")


def accelerator():
    """The real ``accelerate.Accelerator(cpu=True)`` where accelerate is installed, else the stand-in below."""
    try:
        from accelerate import Accelerator
    except ImportError:
        return SingleProcessAccelerator()
    return Accelerator(cpu=True)


class SingleProcessAccelerator:
    """An ``accelerate.Accelerator`` stand-in for one CPU process: what distributed code calls
    reduces to the plain operation (``backward`` is ``loss.backward()``, gathering returns its input)."""

    device = "cpu"
    num_processes = 1
    process_index = local_process_index = 0
    is_main_process = is_local_main_process = True
    sync_gradients = True
    distributed_type = "NO"
    mixed_precision = "no"
    gradient_accumulation_steps = 1
    use_distributed = False
    optimizer_step_was_skipped = False
    is_last_process = True

    def __getattr__(self, name: str):
        raise missing("accelerate.Accelerator", name, ACCELERATE_REAL)

    def prepare(self, *objects):
        return objects[0] if len(objects) == 1 else objects

    def backward(self, loss, **_kwargs) -> None:
        loss.backward()

    def gather(self, value):
        return value

    gather_for_metrics = reduce = pad_across_processes = gather

    def unwrap_model(self, model, **_kwargs):
        return model

    def clip_grad_norm_(self, parameters, max_norm, norm_type=2):
        import torch

        return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)

    def accumulate(self, *_models):
        return contextlib.nullcontext()

    def autocast(self, *_args, **_kwargs):
        return contextlib.nullcontext()

    def no_sync(self, *_args, **_kwargs):
        return contextlib.nullcontext()

    def wait_for_everyone(self) -> None:
        pass

    def print(self, *args, **kwargs) -> None:
        print(*args, **kwargs)

    def log(self, *_args, **_kwargs) -> None:
        pass

    def save(self, obj, path, **_kwargs) -> None:
        import torch

        torch.save(obj, path)

    def get_state_dict(self, model, **_kwargs) -> dict:
        return model.state_dict()

    def save_model(self, model, save_directory, **_kwargs) -> None:
        """Writes the weights where ``accelerate`` would (``pytorch_model.bin``; no safetensors dependency)."""
        import torch

        os.makedirs(save_directory, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(save_directory, "pytorch_model.bin"))

    def init_trackers(self, *_args, **_kwargs) -> None:
        pass

    end_training = free_memory = init_trackers
