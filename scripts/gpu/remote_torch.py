"""A small PyTorch training loop over the remote client (scripts/gpu-check-remote.sh): 10 steps
under deterministic settings, each step's loss as exact float hex (compared with native's by
the script), then the median step time of 30 more steps. Prints one JSON line, or the error and
the stage it happened in (setup, cublas handle: cuBLAS's start alone, a plain matmul, training).
Usage: remote_torch.py MODE   (CUBLAS_WORKSPACE_CONFIG=:4096:8 set by the script)"""
import json
import statistics
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "native"
stage = "import"
try:
    import torch

    stage = "setup"

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 1024, generator=g).cuda()
    y = torch.randint(0, 10, (512,), generator=g).cuda()
    stage = "cublas handle"  # cublasCreate alone (torch makes the handle at its first GEMM)
    torch.cuda.current_blas_handle()
    stage = "matmul"
    (x[:64, :64] @ x[:64, :64]).sum().item()
    stage = "training"

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return loss.detach()

    losses = [float(step().item()).hex() for _ in range(10)]
    times = []
    for _ in range(30):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"case": "torch", "mode": mode, "losses": losses, "step_ms_median": statistics.median(times) * 1e3,
                      "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "cuda_runtime": torch.version.cuda}))
except Exception as e:
    print(json.dumps({"case": "torch", "mode": mode, "stage": stage,
                      "error": f"{stage}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}))
    sys.exit(1)
