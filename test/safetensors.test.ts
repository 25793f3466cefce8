// safetensors reading/writing and checkpoint directories, cross-checked against the reference
// Python implementation (safetensors + torch in ./.venv).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  readSafetensorsFile,
  writeSafetensorsFile,
  type DType,
  type NamedTensor,
} from '../engine/model/safetensors.js';
import { readModelTensors, writeDirAtomically, writeModelTensors } from '../engine/model/checkpoint-files.js';
import { VENV_PYTHON } from '../engine/sandbox/isolation.js';

const PY_HELPER = String.raw`
import json, sys
import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as np_save, load_file as np_load
from safetensors.torch import save_file as torch_save, load_file as torch_load

TORCH = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}

def bits_equal(a, b):
    """a, b: torch tensors of one dtype; equal bit patterns, or both NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
    int_t = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[a.dtype]
    same = a.view(int_t) == b.view(int_t)
    both_nan = torch.isnan(a) & torch.isnan(b)
    return bool((same | both_nan).all())

cmd = sys.argv[1]
args = json.loads(sys.argv[2])
out = {}

if cmd == 'check_ts_file':
    # args: file, dtype, tensors: {name: {raw: path to f32 values, shape}}
    loaded = torch_load(args['file'])
    with safe_open(args['file'], framework='pt') as f:
        out['metadata'] = f.metadata()
        out['keys'] = list(f.keys())
    header_len = int.from_bytes(open(args['file'], 'rb').read(8), 'little')
    out['header_len'] = header_len
    out['header'] = json.loads(open(args['file'], 'rb').read()[8:8 + header_len])
    bad = []
    for name, spec in args['tensors'].items():
        ref32 = torch.from_numpy(np.fromfile(spec['raw'], dtype='<f4').copy()).reshape(spec['shape'])
        expected = ref32.to(TORCH[args['dtype']])  # torch's own round-to-nearest-even
        got = loaded[name]
        if list(got.shape) != spec['shape'] or not bits_equal(got, expected):
            bad.append(name)
    out['bad'] = bad
    out['loaded'] = sorted(loaded.keys())

elif cmd == 'write_py_file':
    # args: file, dtype, seed, specials; writes the file and each tensor's float32 widening
    gen = torch.Generator().manual_seed(args['seed'])
    tensors = {
        'w.a': torch.randn(7, 5, generator=gen) * 3,
        'w.b': torch.randn(3, generator=gen) * 1e-5,
        'scalar': torch.tensor(2.5),
        'empty': torch.zeros(0, 4),
        'specials': torch.from_numpy(np.fromfile(args['specials'], dtype='<f4').copy()),
    }
    tensors = {k: v.to(TORCH[args['dtype']]).contiguous() for k, v in tensors.items()}
    if args['dtype'] == 'BF16':
        torch_save(tensors, args['file'], metadata={'format': 'pt'})
    else:
        np_save({k: v.numpy() for k, v in tensors.items()}, args['file'], metadata={'format': 'np'})
    for k, v in tensors.items():
        v.float().numpy().astype('<f4').tofile(args['file'] + '.' + k + '.f32')
        out[k] = list(v.shape)

elif cmd == 'all_halves':
    # every 16-bit pattern as F16 and as BF16, with torch's float32 widening of each
    bits = torch.arange(0, 65536, dtype=torch.int32).to(torch.int16)
    for name, dt in (('F16', torch.float16), ('BF16', torch.bfloat16)):
        t = bits.view(dt)
        torch_save({'all': t}, args['dir'] + '/' + name + '.safetensors')
        t.float().numpy().astype('<f4').tofile(args['dir'] + '/' + name + '.f32')

elif cmd == 'load_sharded':
    # transformers-style: read the index, load every shard it lists, compare with originals
    d = args['dir']
    index = json.load(open(d + '/model.safetensors.index.json'))
    out['total_size'] = index['metadata']['total_size']
    shards = sorted(set(index['weight_map'].values()))
    out['shards'] = shards
    state, nbytes, misplaced = {}, 0, []
    for shard in shards:
        with safe_open(d + '/' + shard, framework='pt') as f:
            if f.metadata().get('format') != 'pt':
                misplaced.append('format:' + shard)
            for k in f.keys():
                if index['weight_map'].get(k) != shard:
                    misplaced.append(k)
                state[k] = f.get_tensor(k)
                nbytes += state[k].numel() * state[k].element_size()
    out['nbytes'] = nbytes
    out['misplaced'] = misplaced
    bad = []
    for name, spec in args['tensors'].items():
        ref32 = torch.from_numpy(np.fromfile(spec['raw'], dtype='<f4').copy()).reshape(spec['shape'])
        if name not in state or not bits_equal(state[name], ref32.to(TORCH[args['dtype']])):
            bad.append(name)
    out['bad'] = bad
    out['keys'] = sorted(state.keys())

elif cmd == 'rejects':
    errors = {}
    for path in args['files']:
        try:
            np_load(path)
            errors[path] = None
        except Exception as e:
            errors[path] = type(e).__name__ + ': ' + str(e)
    out['errors'] = errors

print(json.dumps(out))
`;

let work: string;
let helper: string;

function py<T = Record<string, unknown>>(cmd: string, args: unknown): T {
  const r = spawnSync(VENV_PYTHON, [helper, cmd, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python ${cmd} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function dir(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Deterministic pseudo-random floats with a wide spread of magnitudes. */
function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() - 0.5) * 2 ** Math.floor(next() * 40 - 24);
  return out;
}

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** Float32 values that stress rounding and the edges of F16/BF16. */
const SPECIALS: number[] = [
  0,
  -0,
  1,
  -1,
  Infinity,
  -Infinity,
  NaN,
  -NaN,
  f32(0x7f7fffff),
  -f32(0x7f7fffff), // f32 max finite
  f32(0x00000001),
  f32(0x80000001),
  f32(0x007fffff),
  f32(0x00800000), // f32 subnormals / min normal
  65504,
  -65504,
  65519.99,
  65520,
  65536, // f16 max, just below/at the overflow tie
  2 ** -24,
  2 ** -25,
  2 ** -25 * 1.0000001,
  3 * 2 ** -25,
  2 ** -14,
  2 ** -14 - 2 ** -24,
  2 ** -26, // f16 subnormals
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  1 + 2 ** -11 + 2 ** -20, // f16 ties to even / above tie
  1 + 2 ** -8,
  1 + 3 * 2 ** -8,
  1 + 2 ** -8 + 2 ** -20, // bf16 ties / above tie
  f32(0x7f7f8000),
  f32(0x7f7f7fff), // bf16 overflow tie and just below
  f32(0x00008000),
  f32(0x00018000),
  f32(0x00010000), // bf16 subnormal ties
  f32(0x7fc00001),
  f32(0xff800001), // NaNs with payloads
  0.1,
  -0.3333333,
  3.14159265,
  1e-30,
  -1e30,
].map((x) => Math.fround(x));

function specialTensor(): Float32Array {
  return new Float32Array(SPECIALS);
}

function sampleTensors(seed: number): Map<string, NamedTensor> {
  return new Map<string, NamedTensor>([
    ['model.layers.0.mlp.up_proj.weight', { shape: [16, 9], data: randomValues(144, seed) }],
    ['model.embed_tokens.weight', { shape: [11, 8], data: randomValues(88, seed + 1) }],
    ['model.norm.weight', { shape: [8], data: randomValues(8, seed + 2) }],
    ['scalar', { shape: [], data: new Float32Array([-7.25]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ['empty2', { shape: [2, 0], data: new Float32Array(0) }],
    ['specials', { shape: [SPECIALS.length], data: specialTensor() }],
    ['10', { shape: [1], data: new Float32Array([10]) }], // an integer-like name sorts as text
  ]);
}

/** Save each tensor's float32 values to a raw file for Python to compare against. */
function rawSpecs(base: string, tensors: Map<string, NamedTensor>): Record<string, { raw: string; shape: number[] }> {
  const specs: Record<string, { raw: string; shape: number[] }> = {};
  let i = 0;
  for (const [name, t] of tensors) {
    const raw = join(base, `raw-${i++}.f32`);
    writeFileSync(raw, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    specs[name] = { raw, shape: t.shape };
  }
  return specs;
}

/** What `x` becomes stored as `dtype` and read back, computed independently of the codec. */
function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const a = got[i]!;
    const b = want[i]!;
    if (Number.isNaN(b)) {
      if (!Number.isNaN(a)) expect.fail(`${what}[${i}]: expected NaN, got ${a}`);
    } else if (bitsOf(a) !== bitsOf(b)) {
      expect.fail(`${what}[${i}]: expected ${b} (0x${bitsOf(b).toString(16)}), got ${a} (0x${bitsOf(a).toString(16)})`);
    }
  }
}

function readRaw(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'retool-safetensors-'));
  helper = join(work, 'helper.py');
  writeFileSync(helper, PY_HELPER);
  const probe = spawnSync(VENV_PYTHON, ['-c', 'import safetensors, numpy, torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(`these tests need ${VENV_PYTHON} with safetensors, numpy and torch installed: ${probe.stderr || probe.error}`);
  }
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('float conversions', () => {
  it('decodes well-known F16 bit patterns exactly', () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x8000, -0],
      [0x0001, 2 ** -24],
      [0x03ff, 2 ** -14 - 2 ** -24],
      [0x0400, 2 ** -14],
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [h, v] of cases) expect(Object.is(f32(f16BitsToF32Bits(h)), v), `0x${h.toString(16)}`).toBe(true);
    expect(Number.isNaN(f32(f16BitsToF32Bits(0x7e00)))).toBe(true);
    expect(Number.isNaN(f32(f16BitsToF32Bits(0xfc01)))).toBe(true);
  });

  it('rounds F32 to F16 and BF16 to nearest even', () => {
    expect(f32BitsToF16Bits(bitsOf(1 + 2 ** -11))).toBe(0x3c00); // tie → even (down)
    expect(f32BitsToF16Bits(bitsOf(1 + 3 * 2 ** -11))).toBe(0x3c02); // tie → even (up)
    expect(f32BitsToF16Bits(bitsOf(65520))).toBe(0x7c00); // overflow tie → inf
    expect(f32BitsToF16Bits(bitsOf(65519.99))).toBe(0x7bff);
    expect(f32BitsToF16Bits(bitsOf(2 ** -25))).toBe(0x0000); // tie with 0 → even (0)
    expect(f32BitsToF16Bits(bitsOf(3 * 2 ** -25))).toBe(0x0002); // tie → even (up)
    expect(f32BitsToF16Bits(bitsOf(-0))).toBe(0x8000);
    expect(f32BitsToBf16Bits(bitsOf(1 + 2 ** -8))).toBe(0x3f80);
    expect(f32BitsToBf16Bits(bitsOf(1 + 3 * 2 ** -8))).toBe(0x3f82);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // max finite f32 → inf
    expect(f32BitsToBf16Bits(0x7fc00001)).toBe(0x7fc0);
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80);
  });
});

describe('encode/decode in memory', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as DType[]) {
    it(`round-trips ${dtype}, shapes [] and 0-size included`, () => {
      const tensors = sampleTensors(7);
      const bytes = encodeSafetensors(tensors, { dtype });
      const { tensors: back, metadata } = decodeSafetensors(bytes);
      expect(metadata).toEqual({ format: 'pt' });
      expect([...back.keys()]).toEqual([...tensors.keys()].sort());
      for (const [name, t] of tensors) {
        const r = back.get(name)!;
        expect(r.dtype).toBe(dtype);
        expect(r.shape).toEqual(t.shape);
        if (dtype === 'F32') expectSameBits(r.data, t.data, name);
        // Decoding is exact, so a second trip through the same dtype changes nothing.
        const again = decodeSafetensors(encodeSafetensors(new Map([[name, r]]), { dtype })).tensors.get(name)!;
        expectSameBits(again.data, r.data, `${name} (second trip)`);
      }
    });
  }

  it('writes a sorted header padded to 8 bytes, with format=pt merged into metadata', () => {
    const bytes = encodeSafetensors(sampleTensors(1), { dtype: 'F16', metadata: { step: '12' } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.endsWith(' ') || header.endsWith('}')).toBe(true);
    expect(header.startsWith('{"__metadata__":{"format":"pt","step":"12"},"10":')).toBe(true);
    const names = [...header.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(names).toEqual([...names].sort());
    expect(decodeSafetensors(bytes).metadata).toEqual({ format: 'pt', step: '12' });
  });

  it('reads F32 data at a misaligned offset (copying) and aligned (as a view)', () => {
    // Header of odd length: the data section starts at an offset that is not a multiple of 4.
    const json = '{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}';
    const header = new TextEncoder().encode(json.padEnd(json.length + ((5 - json.length) & 3), ' '));
    expect((8 + header.length) % 4).toBe(1);
    const bytes = new Uint8Array(8 + header.length + 12);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    bytes.set(new Uint8Array(new Float32Array([1.5, -2, 1e-40]).buffer), 8 + header.length);
    const t = decodeSafetensors(bytes).tensors.get('t')!;
    expectSameBits(t.data, new Float32Array([1.5, -2, 1e-40]), 't');

    const aligned = encodeSafetensors(new Map([['x', { shape: [2], data: new Float32Array([3, 4]) }]]));
    expect(decodeSafetensors(aligned).tensors.get('x')!.data.buffer).toBe(aligned.buffer);
  });

  it('rejects tensors whose data does not match the shape', () => {
    expect(() => encodeSafetensors(new Map([['bad', { shape: [2, 3], data: new Float32Array(5) }]]))).toThrow(
      /"bad".*6 elements.*5 values/,
    );
  });
});

describe('cross-checks with the Python reference implementation', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as DType[]) {
    it(`a ${dtype} file written here loads in Python with torch's values`, () => {
      const d = dir(`ts-${dtype}`);
      const tensors = sampleTensors(42);
      tensors.set('random.wide', { shape: [64, 64], data: randomValues(4096, 99) });
      const file = join(d, 'model.safetensors');
      writeSafetensorsFile(file, tensors, { dtype });
      expect(readFileSync(file)).toEqual(Buffer.from(encodeSafetensors(tensors, { dtype })));
      const r = py<{
        bad: string[];
        metadata: Record<string, string>;
        keys: string[];
        loaded: string[];
        header_len: number;
        header: Record<string, { dtype: string }>;
      }>('check_ts_file', { file, dtype, tensors: rawSpecs(d, tensors) });
      expect(r.bad).toEqual([]);
      expect(r.metadata).toEqual({ format: 'pt' });
      expect(r.loaded).toEqual([...tensors.keys()].sort());
      expect(r.header_len % 8).toBe(0);
      expect(r.header['specials']!.dtype).toBe(dtype);
    });

    it(`a ${dtype} file written in Python loads here to the same values`, () => {
      const d = dir(`py-${dtype}`);
      const file = join(d, 'ref.safetensors');
      const specials = join(d, 'specials.f32');
      writeFileSync(specials, new Uint8Array(specialTensor().buffer));
      const shapes = py<Record<string, number[]>>('write_py_file', { file, dtype, seed: 3, specials });
      for (const read of [readSafetensorsFile(file), decodeSafetensors(new Uint8Array(readFileSync(file)), file)]) {
        expect([...read.tensors.keys()].sort()).toEqual(Object.keys(shapes).sort());
        for (const [name, shape] of Object.entries(shapes)) {
          const t = read.tensors.get(name)!;
          expect(t.dtype).toBe(dtype);
          expect(t.shape).toEqual(shape);
          expectSameBits(t.data, readRaw(`${file}.${name}.f32`), name);
        }
      }
    });
  }

  it('decodes all 65536 F16 and BF16 bit patterns exactly as torch widens them', () => {
    const d = dir('all-halves');
    py('all_halves', { dir: d });
    for (const dtype of ['F16', 'BF16']) {
      const t = readSafetensorsFile(join(d, `${dtype}.safetensors`)).tensors.get('all')!;
      expect(t.dtype).toBe(dtype);
      const want = readRaw(join(d, `${dtype}.f32`));
      expectSameBits(t.data, want, dtype);
      // Every non-NaN half re-encodes to itself.
      const back = decodeSafetensors(encodeSafetensors(new Map([['all', t]]), { dtype: dtype as DType })).tensors.get('all')!;
      expectSameBits(back.data, want, `${dtype} re-encoded`);
    }
  });

  it('encodes 200k random F32 bit patterns to F16/BF16 exactly as torch rounds them', () => {
    const d = dir('random-bits');
    const bits = new Uint32Array(200_000);
    let s = 12345;
    for (let i = 0; i < bits.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const hi = s >>> 16;
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      bits[i] = ((hi << 16) | (s >>> 16)) >>> 0;
    }
    // Concentrate half of them near the F16 range, where rounding is subtle.
    for (let i = 0; i < bits.length; i += 2) bits[i] = (0x33000000 + (bits[i]! % 0x15000000)) | (bits[i]! & 0x80000000);
    const tensors = new Map<string, NamedTensor>([['x', { shape: [bits.length], data: new Float32Array(bits.buffer) }]]);
    for (const dtype of ['F16', 'BF16'] as DType[]) {
      const file = join(d, `${dtype}.safetensors`);
      writeSafetensorsFile(file, tensors, { dtype });
      const r = py<{ bad: string[] }>('check_ts_file', { file, dtype, tensors: rawSpecs(d, tensors) });
      expect(r.bad, dtype).toEqual([]);
    }
  });

  it('writes a sharded checkpoint that loads shard by shard in Python, and reads it back', () => {
    const d = dir('sharded');
    const tensors = sampleTensors(5);
    for (let i = 0; i < 6; i++)
      tensors.set(`model.layers.${i}.self_attn.q_proj.weight`, { shape: [20, 10], data: randomValues(200, 100 + i) });
    const files = writeModelTensors(d, tensors, { dtype: 'BF16', maxShardBytes: 1000 });
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(files.at(-1)).toBe(join(d, 'model.safetensors.index.json'));
    shards.forEach((f, i) =>
      expect(f).toBe(join(d, `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`)),
    );
    expect(existsSync(join(d, 'model.safetensors'))).toBe(false);

    const r = py<{ bad: string[]; misplaced: string[]; total_size: number; nbytes: number; keys: string[]; shards: string[] }>(
      'load_sharded',
      {
        dir: d,
        dtype: 'BF16',
        tensors: rawSpecs(dir('sharded-raw'), tensors),
      },
    );
    expect(r.bad).toEqual([]);
    expect(r.misplaced).toEqual([]);
    expect(r.total_size).toBe(r.nbytes);
    expect(r.keys).toEqual([...tensors.keys()].sort());
    expect(r.shards.length).toBe(shards.length);

    const back = readModelTensors(d);
    expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of back) {
      expect(t.dtype).toBe('BF16');
      expect(t.shape).toEqual(tensors.get(name)!.shape);
    }

    // Rewriting into the same dir as a single file removes the old shards and index.
    const single = writeModelTensors(d, tensors, { dtype: 'F32' });
    expect(single).toEqual([join(d, 'model.safetensors')]);
    expect(readdirSync(d).filter((f) => f.includes('safetensors'))).toEqual(['model.safetensors']);
    for (const [name, t] of readModelTensors(d)) expectSameBits(t.data, tensors.get(name)!.data, name);
  });

  it('reports broken sharded checkpoints clearly', () => {
    const d = dir('sharded-broken');
    const tensors = sampleTensors(9);
    writeModelTensors(d, tensors, { maxShardBytes: 200 });
    const indexFile = join(d, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
    const firstShard = index.weight_map['model.norm.weight']!;
    index.weight_map['ghost'] = firstShard;
    writeFileSync(indexFile, JSON.stringify(index));
    expect(() => readModelTensors(d)).toThrow(/"ghost".*does not contain it/);
    index.weight_map['ghost'] = 'missing.safetensors';
    writeFileSync(indexFile, JSON.stringify(index));
    expect(() => readModelTensors(d)).toThrow(/missing\.safetensors.*does not exist/);
    index.weight_map['ghost'] = '../escape.safetensors';
    writeFileSync(indexFile, JSON.stringify(index));
    expect(() => readModelTensors(d)).toThrow(/not a plain file name/);
    expect(() => readModelTensors(dir('empty-dir'))).toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
  });
});

describe('malformed files', () => {
  function header(json: string): Uint8Array {
    const h = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + h.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    return out;
  }
  function withData(json: string, dataBytes: number): Uint8Array {
    const h = header(json);
    const out = new Uint8Array(h.length + dataBytes);
    out.set(h);
    return out;
  }

  const good = encodeSafetensors(
    new Map([
      ['a', { shape: [4], data: new Float32Array([1, 2, 3, 4]) }],
      ['b', { shape: [2], data: new Float32Array([5, 6]) }],
    ]),
  );
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', good.subarray(0, good.length - 3), /truncated/],
    ['tiny', good.subarray(0, 5), /shorter than the 8-byte header length/],
    [
      'header-beyond',
      (() => {
        const b = good.slice();
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      })(),
      /header length 1099511627776 runs past the end of the file/,
    ],
    [
      'offsets-out-of-range',
      withData('{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', 8),
      /data_offsets \[8, 16\] beyond the end of the data section \(8 bytes\)/,
    ],
    [
      'overlap',
      withData('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12),
      /overlaps tensor "a"/,
    ],
    [
      'gap',
      withData('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      /bytes \[0, 4\) of the data section belong to no tensor/,
    ],
    ['trailing', withData('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 8), /4 trailing bytes/],
    ['size-mismatch', withData('{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}', 4), /shape \[3\] and dtype F16 \(6 bytes\)/],
    ['i64', withData('{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', 8), /"ids" has dtype I64, which is not supported/],
    ['unknown-dtype', withData('{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}', 2), /unknown dtype "F12"/],
    ['bad-json', header('{"a": nope}'), /not valid JSON/],
    ['not-object', header('[1,2,3]   '), /does not start with "\{"/],
    ['negative-dim', withData('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}', 0), /invalid "shape"/],
    ['bad-metadata', header('{"__metadata__":{"step":3}}'), /"__metadata__" value for "step" is not a string/],
  ];

  for (const [name, bytes, message] of cases) {
    it(`rejects ${name}, naming the file`, () => {
      const d = dir('malformed');
      const file = join(d, `${name}.safetensors`);
      writeFileSync(file, bytes);
      expect(() => readSafetensorsFile(file)).toThrow(message);
      expect(() => readSafetensorsFile(file)).toThrow(file);
      expect(() => decodeSafetensors(bytes, file)).toThrow(message);
      expect(() => decodeSafetensors(bytes, file)).toThrow(file);
    });
  }

  it('rejects what the Python reference also rejects', () => {
    const d = dir('malformed-py');
    const names = ['truncated', 'header-beyond', 'offsets-out-of-range', 'overlap', 'gap', 'trailing', 'size-mismatch'];
    const files = names.map((n) => {
      const file = join(d, `${n}.safetensors`);
      writeFileSync(file, cases.find(([c]) => c === n)![1]);
      return file;
    });
    const r = py<{ errors: Record<string, string | null> }>('rejects', { files });
    for (const f of files) expect(r.errors[f], f).toBeTruthy();
  });
});

describe('writeDirAtomically', () => {
  it('creates the dir, replaces it on success and leaves it intact when fill throws', async () => {
    const parent = dir('atomic');
    const target = join(parent, 'ckpt');
    const tensors = sampleTensors(11);

    await writeDirAtomically(target, (tmp) => {
      writeModelTensors(tmp, tensors, { dtype: 'F16' });
      writeFileSync(join(tmp, 'config.json'), '{"v":1}');
    });
    expect(readdirSync(target).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(readModelTensors(target).get('model.norm.weight')!.dtype).toBe('F16');

    await expect(
      writeDirAtomically(target, async (tmp) => {
        writeFileSync(join(tmp, 'config.json'), '{"v":2}');
        writeFileSync(join(tmp, 'partial.safetensors'), 'xx');
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(readdirSync(target).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(readFileSync(join(target, 'config.json'), 'utf8')).toBe('{"v":1}');
    expect(readdirSync(parent)).toEqual(['ckpt']); // no temp dir left behind

    await writeDirAtomically(target, async (tmp) => {
      mkdirSync(join(tmp, 'sub'));
      writeFileSync(join(tmp, 'sub', 'x.txt'), 'x');
      writeModelTensors(tmp, tensors, { dtype: 'BF16', maxShardBytes: 300 });
    });
    const entries = readdirSync(target);
    expect(entries).not.toContain('config.json');
    expect(entries).toContain('model.safetensors.index.json');
    expect(readFileSync(join(target, 'sub', 'x.txt'), 'utf8')).toBe('x');
    expect(readdirSync(parent)).toEqual(['ckpt']); // the old dir was deleted
    const back = readModelTensors(target);
    expect(back.get('scalar')!.data[0]).toBe(-7.25);
  });
});
