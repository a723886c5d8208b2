"""A small PyTorch training loop timed in steady state; prints one JSON line (iterations/s)."""
import json
import time

import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
x = torch.randn(256, 4096, device="cuda")
y = torch.randn(256, 4096, device="cuda")


def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss


for _ in range(50):
    step()
torch.cuda.synchronize()
iters = 600
t0 = time.perf_counter()
for _ in range(iters):
    loss = step()
torch.cuda.synchronize()
elapsed = time.perf_counter() - t0
print(json.dumps({"iters_per_s": iters / elapsed, "loss": float(loss)}))
