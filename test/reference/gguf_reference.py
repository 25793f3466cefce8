"""Reference side of the GGUF reader tests: llama.cpp's own Python package `gguf`.

argv: OUT. Writes OUT (a GGUF file made by gguf's GGUFWriter: metadata of every value kind, and
one random tensor per type, quantized by gguf's own quantizer) and prints JSON: for each tensor
its row-major shape and the values gguf's own dequantizer gives back.
"""
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFWriter, quants

out = sys.argv[1]
rng = np.random.default_rng(7)
writer = GGUFWriter(out, 'llama')
writer.add_string('general.name', 'gguf reader test')
writer.add_uint32('llama.block_count', 30)
writer.add_float32('llama.rope.freq_base', 100000.0)
writer.add_bool('tokenizer.ggml.add_bos_token', False)
writer.add_int32('test.negative', -5)
writer.add_uint64('test.big', 2**40 + 3)
writer.add_float64('test.double', 0.1)
writer.add_array('tokenizer.ggml.tokens', ['<|im_start|>', 'a', 'Ġb'])
writer.add_array('tokenizer.ggml.token_type', [3, 1, 1])

tensors = {}
for name, qtype, shape in [
    ('f32.weight', Q.F32, (3, 2, 32)),
    ('f16.weight', Q.F16, (4, 64)),
    ('bf16.weight', Q.BF16, (4, 64)),
    ('q8_0.weight', Q.Q8_0, (4, 64)),
    ('q4_0.weight', Q.Q4_0, (4, 64)),
    ('q4_1.weight', Q.Q4_1, (5, 96)),
]:
    x = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    q = x if qtype == Q.F32 else quants.quantize(x, qtype)
    writer.add_tensor(name, q, raw_shape=shape if qtype in (Q.F32, Q.F16) else None, raw_dtype=qtype)
    tensors[name] = shape

# K-quants from random blocks with finite scales (gguf-py dequantizes them but does not quantize).
for name, qtype, rows in [('q4_k.weight', Q.Q4_K, 3), ('q5_k.weight', Q.Q5_K, 2), ('q6_k.weight', Q.Q6_K, 3)]:
    block_values, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, 2, block_bytes), dtype=np.uint8)
    scales = (rng.uniform(0.001, 0.05, size=(rows, 2, 2))).astype(np.float16).view(np.uint8).reshape(rows, 2, 4)
    if qtype == Q.Q6_K:
        raw[:, :, 208:210] = scales[:, :, :2]
    else:
        raw[:, :, 0:4] = scales
    writer.add_tensor(name, raw.reshape(rows, 2 * block_bytes), raw_dtype=qtype)
    tensors[name] = (rows, 2 * block_values)

writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

reader = GGUFReader(out)
result = {}
for t in reader.tensors:
    values = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    result[t.name] = {'shape': list(tensors[t.name]), 'type': t.tensor_type.name, 'values': values.reshape(-1).tolist()}
print(json.dumps(result))
