"""PyTorch peer of `retool bench model`: the same model, training steps and decoding, in
Hugging Face transformers (and peft for LoRA) on this machine's CPU.

Reads one JSON job on stdin:
  {"config": {...Qwen2 config...} or "model_dir": "/path/to/hf/folder",
   "batch": B, "seq": T, "steps": n, "warmup": w, "lora": {"r": 16, "alpha": 32, "targets": [...]},
   "context": 256, "decode_tokens": k, "decode_batches": [1, 8], "prefill_runs": 3,
   "threads": [1, 2], "seed": 0}
and prints one JSON object on stdout. Everything is float32 with the default attention (sdpa).

Training step: forward over ids[:, :T], mean cross-entropy against ids[:, 1:T+1], backward,
global-norm clipping at 1.0, AdamW (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on
matrices only), as in engine/train. Decoding: greedy, prompt of context - k tokens, then k
steps, each step either one token against the KV cache or the whole sequence again without it;
the time of a step is its median over steps 2..k (step 1 carries the prompt). Prefill: the prompt
alone into an empty cache and its next token, median of prefill_runs runs after one untimed run.
LoRA training: the same step with a peft adapter on a fresh copy of the model, only the adapter
trained (no dropout).
"""

import json
import resource
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.utils import logging as hf_logging

warnings.filterwarnings("ignore")
hf_logging.set_verbosity_error()


def median(xs):
    return statistics.median(xs)


def make_model(job):
    torch.manual_seed(job.get("seed", 0))
    if job.get("model_dir"):
        model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32)
    else:
        cfg = Qwen2Config(**job["config"])
        cfg.use_cache = True
        model = Qwen2ForCausalLM(cfg).float()
    return model


def with_lora(model, lora):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], target_modules=lora["targets"], lora_dropout=0.0, bias="none")
    return get_peft_model(model, config)


def bench_train(model, batch, seq, steps, warmup, vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq + 1), generator=gen)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.dim() >= 2 and "norm" not in n]
    no_decay = [p for n, p in trainable if not (p.dim() >= 2 and "norm" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    model.train()
    times = []
    losses = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        logits = model(input_ids=ids[:, :seq], use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    model.eval()
    return {
        "step_s": median(times),
        "step_times_s": times,
        "tokens_per_s": batch * seq / median(times),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "trainable": sum(p.numel() for _, p in trainable),
    }


@torch.no_grad()
def bench_prefill(model, batch, prompt_len, runs, vocab, seed):
    gen = torch.Generator().manual_seed(seed + 2000 + batch)
    prompt = torch.randint(0, vocab, (batch, prompt_len), generator=gen)
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        out = model(input_ids=prompt, use_cache=True)
        out.logits[:, -1, :].argmax(-1)
        if i > 0:
            times.append(time.perf_counter() - t0)
    return {"step_s": median(times), "tokens_per_s": batch * prompt_len / median(times)}


@torch.no_grad()
def bench_decode(model, batch, context, k, vocab, use_cache, seed):
    gen = torch.Generator().manual_seed(seed + batch)
    prompt = torch.randint(0, vocab, (batch, context - k), generator=gen)
    times = []
    seq = prompt
    past = None
    next_ids = prompt
    for step in range(k):
        t0 = time.perf_counter()
        if use_cache:
            out = model(input_ids=next_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
        else:
            out = model(input_ids=seq, use_cache=False)
        token = out.logits[:, -1, :].argmax(-1, keepdim=True)
        seq = torch.cat([seq, token], dim=1)
        next_ids = token
        dt = time.perf_counter() - t0
        if step > 0:
            times.append(dt)
    return {"step_s": median(times), "tokens_per_s": batch / median(times), "steps_timed": len(times)}


def main():
    job = json.load(sys.stdin)
    vocab = job["config"]["vocab_size"]
    seed = job.get("seed", 0)
    out = {"torch": torch.__version__, "default_threads": torch.get_num_threads(), "attention": "sdpa", "runs": []}
    for threads in job.get("threads", [torch.get_num_threads()]):
        torch.set_num_threads(threads)
        model = make_model(job)
        run = {"threads": threads, "parameters": sum(p.numel() for p in model.parameters())}
        run["training"] = bench_train(model, job["batch"], job["seq"], job["steps"], job.get("warmup", 2), vocab, seed)
        if job.get("lora"):
            adapted = with_lora(make_model(job), job["lora"])
            run["lora_training"] = bench_train(adapted, job["batch"], job["seq"], job["steps"], job.get("warmup", 2), vocab, seed)
            del adapted
        model = make_model(job).eval()
        decode = {}
        for b in job.get("decode_batches", [1]):
            decode[f"batch_{b}"] = {
                "prefill": bench_prefill(model, b, job["context"] - job["decode_tokens"], job.get("prefill_runs", 3), vocab, seed),
                "cached": bench_decode(model, b, job["context"], job["decode_tokens"], vocab, True, job.get("seed", 0)),
                "uncached": bench_decode(model, b, job["context"], job["decode_tokens"], vocab, False, job.get("seed", 0)),
            }
        run["decode"] = decode
        out["runs"].append(run)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
