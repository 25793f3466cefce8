"""Reference side of the model parity tests: Hugging Face transformers on the CPU.

Reads a JSON list of jobs on stdin and prints a JSON list of results, so one interpreter start
(torch + transformers take seconds to import) serves a whole test file:
  {"op": "make", "dir": D, "config": {"model_type": "qwen2|llama|qwen3", ...}, "seed": S,
   "dtype": "float32|bfloat16|float16", "max_shard_size": "..."}
  {"op": "logits", "dir": D, "ids": [[...], ...]}            float32 logits of every position
  {"op": "generate", "dir": D, "ids": [[...]], "new_tokens": N}  greedy continuation
  {"op": "make_gguf", "file": F, "dir": D, "config": {...}, "seed": S}  a random model written as a
     GGUF file the way llama.cpp's converter lays it out (names, Llama's q/k row order, tokenizer
     metadata), and as a Hugging Face directory D
  {"op": "gguf", "file": F, "dump": P, "texts": [...], "messages": [...], "new_tokens": N,
   "ids": [...], "positions": [...], "prompt_positions": [...]}  the GGUF loaded by transformers:
     its weights saved to P, the token ids of each text, the chat prompt and its greedy answer,
     logits of `ids` at `positions` (or of the chat prompt at `prompt_positions`)
  {"op": "peft_make", "base": D, "dir": A, "r": R, "alpha": X, "targets": [...], "seed": S}  a LoRA
     adapter made by peft on the model in D, with random non-zero A and B, saved to A
  {"op": "peft_logits", "base": D, "adapter": A, "ids": [[...]]}  logits of the base model with
     peft's adapter A loaded onto it
"""
import json
import os
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

torch.set_num_threads(1)


def random_model(job):
    """(architecture, model): a seeded random model of the job's config."""
    fields = dict(job['config'])
    arch = fields.pop('model_type', 'qwen2')
    torch.manual_seed(job.get('seed', 0))
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **fields)).eval()
    # Non-trivial biases and norm weights, so that parity covers them too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias') or 'norm' in name:
                p.add_(torch.randn_like(p) * 0.1)
    return arch, model


def make(job):
    _, model = random_model(job)
    dtype = getattr(torch, job.get('dtype', 'float32'))
    model.to(dtype).save_pretrained(job['dir'], safe_serialization=True, max_shard_size=job.get('max_shard_size', '5GB'))
    return None


def bytes_to_unicode():
    """GPT-2's byte-level alphabet (as transformers' convert_slow_tokenizer)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1)) + list(range(ord('\xae'), ord('\xff') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_gguf(job):
    import numpy as np
    from gguf import GGUFWriter
    arch, model = random_model(job)
    config = model.config
    letters = list(bytes_to_unicode().values())
    merges = ['Ġ t', 'h e', 'Ġt he', '1 2']
    tokens = letters + [m.replace(' ', '') for m in merges] + ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    assert len(tokens) == config.vocab_size, len(tokens)
    w = GGUFWriter(job['file'], arch)
    w.add_uint32(f'{arch}.block_count', config.num_hidden_layers)
    w.add_uint32(f'{arch}.context_length', config.max_position_embeddings)
    w.add_uint32(f'{arch}.embedding_length', config.hidden_size)
    w.add_uint32(f'{arch}.feed_forward_length', config.intermediate_size)
    w.add_uint32(f'{arch}.attention.head_count', config.num_attention_heads)
    w.add_uint32(f'{arch}.attention.head_count_kv', config.num_key_value_heads)
    head_dim = getattr(config, 'head_dim', None) or config.hidden_size // config.num_attention_heads
    w.add_uint32(f'{arch}.attention.key_length', head_dim)
    w.add_uint32(f'{arch}.attention.value_length', head_dim)
    w.add_uint32(f'{arch}.rope.dimension_count', head_dim)
    w.add_float32(f'{arch}.rope.freq_base', float(job['config'].get('rope_theta', 10000.0)))
    w.add_float32(f'{arch}.attention.layer_norm_rms_epsilon', config.rms_norm_eps)
    w.add_string('tokenizer.ggml.model', 'gpt2')
    w.add_string('tokenizer.ggml.pre', 'llama-bpe' if arch == 'llama' else 'qwen2')
    w.add_array('tokenizer.ggml.tokens', tokens)
    w.add_array('tokenizer.ggml.token_type', [1] * (len(tokens) - 3) + [3, 3, 3])
    w.add_array('tokenizer.ggml.merges', merges)
    w.add_uint32('tokenizer.ggml.eos_token_id', len(tokens) - 1)
    w.add_uint32('tokenizer.ggml.padding_token_id', len(tokens) - 3)
    w.add_bool('tokenizer.ggml.add_bos_token', False)
    w.add_string('tokenizer.chat_template', CHATML)
    names = {'input_layernorm': 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k',
             'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'self_attn.q_norm': 'attn_q_norm',
             'self_attn.k_norm': 'attn_k_norm', 'post_attention_layernorm': 'ffn_norm', 'mlp.gate_proj': 'ffn_gate',
             'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down'}

    def permute(x, heads):
        # llama.cpp's converter: each head's rows as interleaved pairs.
        return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    for name, t in model.state_dict().items():
        if name == 'lm_head.weight' and config.tie_word_embeddings:
            continue
        x = t.float().numpy()
        if name.startswith('model.layers.'):
            _, _, i, rest = name.split('.', 3)
            module, kind = rest.rsplit('.', 1)
            if arch == 'llama' and module == 'self_attn.q_proj':
                x = permute(x, config.num_attention_heads)
            if arch == 'llama' and module == 'self_attn.k_proj':
                x = permute(x, config.num_key_value_heads)
            gname = f'blk.{i}.{names[module]}.{kind}'
        else:
            gname = {'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight',
                     'lm_head.weight': 'output.weight'}[name]
        w.add_tensor(gname, np.ascontiguousarray(x, dtype=np.float32))
    divisors = job.get('rope_freqs') or llama3_rope_divisors(job['config'], head_dim)
    if divisors:
        w.add_tensor('rope_freqs.weight', np.asarray(divisors, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    model.save_pretrained(job['dir'], safe_serialization=True)
    return None


def llama3_rope_divisors(config, head_dim):
    # llama.cpp's converter (LlamaModel.generate_extra_tensors): Llama 3.1+'s scaling as one
    # divisor per rotary frequency, since GGUF metadata has no field for it.
    import math
    scaling = config.get('rope_scaling') or {}
    if scaling.get('rope_type') != 'llama3':
        return None
    base = config.get('rope_theta', 10000.0)
    factor, low, high = scaling['factor'], scaling['low_freq_factor'], scaling['high_freq_factor']
    context = scaling['original_max_position_embeddings']
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * base ** (i / head_dim)
        if wavelen < context / high:
            out.append(1.0)
        elif wavelen > context / low:
            out.append(factor)
        else:
            smooth = (context / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return out


def from_gguf(job):
    from safetensors.torch import save_file
    from transformers import AutoTokenizer
    folder, name = os.path.split(job['file'])
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    result = {'ids': [tokenizer(t, add_special_tokens=False).input_ids for t in job.get('texts', [])]}
    if job.get('dump'):
        tied = model.config.tie_word_embeddings
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == 'lm_head.weight')}, job['dump'])
    with torch.no_grad():
        if job.get('messages'):
            prompt = tokenizer.apply_chat_template(job['messages'], add_generation_prompt=True, tokenize=False)
            prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
            out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=job['new_tokens'], do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            generated = out[0, len(prompt_ids):].tolist()
            result.update(prompt=prompt, prompt_ids=prompt_ids, generated=generated,
                          text=tokenizer.decode(generated, skip_special_tokens=True))
            if job.get('prompt_positions'):
                logits = model(input_ids=torch.tensor([prompt_ids])).logits[0]
                result['logits'] = [logits[p].tolist() for p in job['prompt_positions']]
        if job.get('ids'):
            logits = model(input_ids=torch.tensor([job['ids']])).logits[0]
            result['logits'] = [logits[p].tolist() for p in job['positions']]
    return result


def peft_make(job):
    from peft import LoraConfig, get_peft_model
    model = load(job['base'])
    peft_model = get_peft_model(model, LoraConfig(r=job['r'], lora_alpha=job['alpha'], target_modules=job['targets'],
                                                  lora_dropout=0.0, task_type='CAUSAL_LM'))
    torch.manual_seed(job.get('seed', 0))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if 'lora_' in name:
                p.copy_(torch.randn_like(p) * 0.2)
    peft_model.save_pretrained(job['dir'])
    return None


def peft_logits(job):
    from peft import PeftModel
    model = PeftModel.from_pretrained(load(job['base']), job['adapter']).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor(job['ids'])).logits.tolist()


def load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def main():
    results = []
    ops = {'make': make, 'make_gguf': make_gguf, 'gguf': from_gguf, 'peft_make': peft_make, 'peft_logits': peft_logits}
    for job in json.load(sys.stdin):
        if job['op'] in ops:
            results.append(ops[job['op']](job))
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
