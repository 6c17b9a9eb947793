"""The flat gradient all-reduce shared by SFT and the GRPO learner ranks (two gloo ranks in forked processes)."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from viva.training.distributed import average_gradients


def _allreduce_worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    p = torch.nn.Parameter(torch.zeros(3))
    q = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((3,), float(rank + 1))
    q.grad = None if rank == 0 else torch.ones(2)  # an unused parameter on one rank counts as a zero gradient
    average_gradients([p, q], 2)
    out[rank] = torch.cat([p.grad, q.grad])
    dist.destroy_process_group()


def test_gradients_are_averaged_across_ranks():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    # fork: the children reuse this process's imports (spawn re-imports torch: ~10 s on a busy 2-core box)
    mp.start_processes(_allreduce_worker, args=(port, out), nprocs=2, join=True, start_method="fork")
    want = torch.tensor([1.5, 1.5, 1.5, 0.5, 0.5])
    assert torch.equal(out[0], want) and torch.equal(out[1], want)
