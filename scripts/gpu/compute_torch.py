"""compute_torch.py: PyTorch loops for the compute-isolation checks (scripts/gpu-check-compute.sh,
scripts/gpu-check-shares.sh). Prints one JSON line, in compute_burn's "burn" format.

    python3 compute_torch.py burn SECONDS [N]
    python3 compute_torch.py train SECONDS

burn: bf16 N x N matmuls (default 8192: about 1.5 ms each on an H100/H200), a synchronize every
4, completed matmuls counted in 100 ms bins of wall time.
train: a transformer training step (a GPT-style decoder: TRAIN_LAYERS=4 layers, TRAIN_WIDTH=2048
wide, 16 heads, batch 8 x 512 tokens, bf16 autocast, AdamW; fixed seed and data), a
synchronize after each step, completed steps counted the same way: a real job's mix of large
matmuls, attention, normalisation and the optimizer's many small kernels, large enough to
keep an H100 busy under its power cap (6 layers of width 1024 at 16 x 256 tokens, measured
first, is launch-bound: the GPU idles between its kernels at full clock).
"""
import json
import os
import sys
import time

import torch


def matmul_step(n):
    """One unit of burn work: 4 matmuls (count 4), then a synchronize."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)

    def step():
        for _ in range(4):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        return 4
    return step


def train_step():
    """One unit of train work: a whole training step (count 1), then a synchronize."""
    torch.manual_seed(0)
    width, layers = int(os.environ.get("TRAIN_WIDTH", "2048")), int(os.environ.get("TRAIN_LAYERS", "4"))
    heads, batch, seq, vocab = 16, int(os.environ.get("TRAIN_BATCH", "8")), int(os.environ.get("TRAIN_SEQ", "512")), 8192
    layer = torch.nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
    model = torch.nn.ModuleDict({
        "emb": torch.nn.Embedding(vocab, width),
        "body": torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False),
        "head": torch.nn.Linear(width, vocab),
    }).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, vocab, (batch, seq), device="cuda")
    y = torch.randint(0, vocab, (batch, seq), device="cuda")
    mask = torch.nn.Transformer.generate_square_subsequent_mask(seq, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = model["body"](model["emb"](x), mask=mask, is_causal=True)
            loss = torch.nn.functional.cross_entropy(model["head"](h).flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        return 1
    return step


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("burn", "train"):
        print("usage: compute_torch.py burn SECONDS [N] | train SECONDS", file=sys.stderr)
        return 2
    seconds = float(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
    step = train_step() if sys.argv[1] == "train" else matmul_step(n)
    for _ in range(3 if sys.argv[1] == "train" else 1):  # warm: cuBLAS and the allocator settle
        step()
    start_at = os.environ.get("START_AT")  # co-located runs start their loops together
    if start_at is not None:
        wait = float(start_at) - time.time()
        if 0 < wait < 60:
            time.sleep(wait)
    bins = [0] * int(seconds * 10)
    total = 0
    start = time.time()  # when the measured loop began: shares_run.py checks that none began late
    t0 = time.perf_counter()
    while True:
        done = step()
        t = time.perf_counter() - t0
        if t >= seconds:
            break
        bins[int(t * 10)] += done
        total += done
    print(json.dumps({"mode": "burn", "work": sys.argv[1], "n": n, "kernels": total, "start": round(start, 3), "bin_s": 0.1, "bins": bins}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
