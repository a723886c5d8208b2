"""The overhead harness's PyTorch workloads, in one process (scripts/gpu-check-overhead.sh starts
one per variant and round): a small transformer's training loop and a `transformers` greedy decode
loop of a small randomly initialised Llama-style model at batch 1 and 8, fixed length.

Each workload is warmed up, then timed in REPS short repetitions (each ending in a synchronize);
the process reports each workload's median repetition, as seconds per unit (a training step, a
generated token of the batch), and every repetition. The harness compares processes, so what
matters here is that every variant runs exactly the same work: fixed seeds, fixed shapes, fixed
token counts (greedy, min_new_tokens = max_new_tokens: no early stop).

--lockstep: a worker of scripts/gpu/lockstep.py instead (scripts/gpu-check-overhead.sh's loop
rounds): every workload built and warmed up, then one repetition per request ("go train"), its
seconds per unit answered through the pipes named by LOCKSTEP_FDS ({"s": 0.0081}); nothing on stdout.

Usage: overhead_loops.py [--device cuda|cpu] [--reps N] [--workloads train,decode1,decode8] [--lockstep]
(--device cpu and small --reps only to try the script without a GPU). Prints one JSON line.
"""
import argparse
import json
import statistics
import time

import torch

import lockstep

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda")
parser.add_argument("--reps", type=int, default=4)
parser.add_argument("--workloads", default="train,decode1,decode8")
parser.add_argument("--train-steps", type=int, default=30, help="training steps per repetition")
parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per sequence and repetition")
parser.add_argument("--lockstep", action="store_true", help="serve repetitions to scripts/gpu/lockstep.py")
args = parser.parse_args()
dev = torch.device(args.device)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def once(fn):
    """One repetition of fn, ending in a synchronize: its seconds."""
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def timed(fn, reps, warmup):
    """fn's time, warmup calls first: every repetition's seconds."""
    for _ in range(warmup):
        fn()
    sync()
    return [once(fn) for _ in range(reps)]


def train_workload():
    """A 4-layer transformer encoder (d 256, 4 heads) on random tokens, AdamW: many small kernels
    per step, so it is the loop most sensitive to what each launch costs. Returns (one
    repetition's function, its units, warm-up repetitions), as decode_workload does."""
    torch.manual_seed(0)
    vocab, seq, batch, width = 4096, 128, 16, 256
    layer = torch.nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, batch_first=True)
    model = torch.nn.Sequential(
        torch.nn.Embedding(vocab, width), torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False), torch.nn.Linear(width, vocab)
    ).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, vocab, (batch, seq), device=dev)
    y = torch.randint(0, vocab, (batch, seq), device=dev)

    def steps():
        for _ in range(args.train_steps):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()

    return steps, args.train_steps, 2


def decode_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=8192,
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=1024,
    )
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return LlamaForCausalLM(config).to(device=dev, dtype=dtype).eval()


def decode_workload(model, batch):
    """Greedy decoding of args.new_tokens tokens after a 32-token prompt, KV cache on: seconds per
    generated token of the batch (one decode step)."""
    g = torch.Generator().manual_seed(batch)
    prompt = torch.randint(3, model.config.vocab_size, (batch, 32), generator=g).to(dev)
    mask = torch.ones_like(prompt)
    n = args.new_tokens

    @torch.inference_mode()
    def generate():
        out = model.generate(
            input_ids=prompt, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0
        )
        if out.shape[1] != prompt.shape[1] + n:
            raise RuntimeError(f"generated {out.shape[1] - prompt.shape[1]} tokens, not {n}")

    return generate, n, 1


wanted = args.workloads.split(",")
t_start = time.perf_counter()
workloads = {}  # name -> (one repetition, units in it, warm-up repetitions)
if "train" in wanted:
    workloads["train"] = train_workload()
model = decode_model() if any(w.startswith("decode") for w in wanted) else None
for w in wanted:
    if w.startswith("decode"):
        workloads[w] = decode_workload(model, int(w[len("decode"):]))
if args.lockstep:
    for fn, _, warmup in workloads.values():
        for _ in range(warmup):
            fn()
    sync()
    lockstep.serve(
        {w: (lambda fn=fn, units=units: {"s": once(fn) / units}) for w, (fn, units, _) in workloads.items()},
        {"device": str(dev), "warmup_s": round(time.perf_counter() - t_start, 2)},
    )
else:
    result = {"device": str(dev)}
    for w, (fn, units, warmup) in workloads.items():
        reps = [r / units for r in timed(fn, args.reps, warmup)]
        key = "train_step_s" if w == "train" else f"{w}_token_s"
        result[key] = statistics.median(reps)
        result[f"{w}_reps"] = reps
    result["workloads_s"] = time.perf_counter() - t_start
    print(json.dumps(result))
