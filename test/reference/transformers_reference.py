"""Reference side of the model parity tests: Hugging Face transformers on the CPU.

Reads a JSON list of jobs on stdin and prints a JSON list of results, so one interpreter start
(torch + transformers take seconds to import) serves a whole test file:
  {"op": "make", "dir": D, "config": {"model_type": "qwen2|llama|qwen3", ...}, "seed": S,
   "dtype": "float32|bfloat16|float16", "max_shard_size": "..."}
  {"op": "logits", "dir": D, "ids": [[...], ...]}            float32 logits of every position
  {"op": "generate", "dir": D, "ids": [[...]], "new_tokens": N}  greedy continuation
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

torch.set_num_threads(1)


def make(job):
    fields = dict(job['config'])
    config = AutoConfig.for_model(fields.pop('model_type', 'qwen2'), **fields)
    torch.manual_seed(job.get('seed', 0))
    model = AutoModelForCausalLM.from_config(config).eval()
    # Non-trivial biases and norm weights, so that parity covers them too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias') or 'norm' in name:
                p.add_(torch.randn_like(p) * 0.1)
    dtype = getattr(torch, job.get('dtype', 'float32'))
    model.to(dtype).save_pretrained(job['dir'], safe_serialization=True, max_shard_size=job.get('max_shard_size', '5GB'))
    return None


def load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def main():
    results = []
    for job in json.load(sys.stdin):
        if job['op'] == 'make':
            results.append(make(job))
            continue
        model = load(job['dir'])
        ids = torch.tensor(job['ids'], dtype=torch.long)
        with torch.no_grad():
            if job['op'] == 'logits':
                results.append(model(input_ids=ids).logits.tolist())
            elif job['op'] == 'generate':
                out = model.generate(ids, max_new_tokens=job['new_tokens'], do_sample=False, pad_token_id=0)
                results.append(out[:, ids.shape[1]:].tolist())
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
