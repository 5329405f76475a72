"""GPU (marker `gpu`): `HostOffloader` moves weights, gradients and Adam state to reused pinned
host buffers and back bit-exactly, frees the accelerator memory, and reuses its buffers; prints
the offload and onload times of a Qwen2.5-0.5B-shaped model with Adam state (run with -s)."""

from __future__ import annotations

import time

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_gpu_host_offload_round_trip_is_exact_and_frees_memory(tmp_path):
    from nemo_rl_dtensor.host_offload import HostOffloader
    from nemo_rl_dtensor.testing import QWEN2_0_5B_SHAPE, build_tiny_model
    from transformers import AutoModelForCausalLM

    path = build_tiny_model(tmp_path / "m", **QWEN2_0_5B_SHAPE)
    module = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).cuda()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    ids = torch.randint(6, 200, (2, 64), device="cuda")
    module(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    module(input_ids=ids, labels=ids).loss.backward()  # leaves gradients to move too
    before = {k: v.detach().cpu() for k, v in module.state_dict().items()}  # on the host, so the GPU
    adam = [s["exp_avg_sq"].cpu() for s in optimizer.state.values()]  # holds only the state that moves
    grads = [p.grad.cpu() for p in module.parameters()]
    mover = HostOffloader()
    times = []
    for _ in range(2):
        torch.cuda.synchronize()
        resident = torch.cuda.memory_allocated()
        start = time.perf_counter()
        mover.move(module, optimizer, torch.device("cpu"))
        offload_s = time.perf_counter() - start
        freed = resident - torch.cuda.memory_allocated()
        pointers = sorted(t.data_ptr() for t in mover._host.values())
        assert next(module.parameters()).device.type == "cpu"
        assert next(module.parameters()).is_pinned()
        start = time.perf_counter()
        mover.move(module, optimizer, torch.device("cuda"))
        times.append((offload_s, time.perf_counter() - start, freed))
    assert sorted(t.data_ptr() for t in mover._host.values()) == pointers  # buffers reused
    assert freed > 0.9 * resident, (freed, resident)
    for key, value in module.state_dict().items():
        assert value.device.type == "cuda" and torch.equal(value.cpu(), before[key]), key
    assert all(torch.equal(s["exp_avg_sq"].cpu(), a) for s, a in zip(optimizer.state.values(), adam, strict=True))
    assert all(torch.equal(p.grad.cpu(), g) for p, g in zip(module.parameters(), grads, strict=True))
    gib = times[-1][2] / 2**30
    print(f"\n{torch.cuda.get_device_name()}: {gib:.2f} GiB of training state; offload/onload "
          + ", ".join(f"{o:.3f}/{i:.3f} s" for o, i, _ in times) + f" ({gib / times[-1][0]:.1f} GiB/s out)")
