"""Reference side of the Qwen2 parity tests: Hugging Face transformers on the CPU, float32.

  make DIR CONFIG_JSON SEED   a random Qwen2ForCausalLM saved with save_pretrained (safetensors)
  logits DIR IDS_JSON         logits of every position for a batch of ids, as JSON
  generate DIR IDS_JSON N     greedy continuation of one prompt, N new tokens, as JSON
"""
import json
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

torch.set_num_threads(1)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == 'make':
        config = Qwen2Config(**json.loads(sys.argv[3]))
        torch.manual_seed(int(sys.argv[4]))
        model = Qwen2ForCausalLM(config).eval()
        # Non-zero biases and norms, so that parity covers them too.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith('bias') or 'norm' in name:
                    p.add_(torch.randn_like(p) * 0.1)
        model.save_pretrained(path, safe_serialization=True)
        return
    model = Qwen2ForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    ids = torch.tensor(json.loads(sys.argv[3]), dtype=torch.long)
    with torch.no_grad():
        if cmd == 'logits':
            print(json.dumps(model(input_ids=ids).logits.tolist()))
        elif cmd == 'generate':
            out = model.generate(ids, max_new_tokens=int(sys.argv[4]), do_sample=False, pad_token_id=0)
            print(json.dumps(out[0, ids.shape[1]:].tolist()))


if __name__ == '__main__':
    main()
