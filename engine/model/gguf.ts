// A reader of GGUF files (llama.cpp's model format, version 2 and 3): the metadata, the tensor
// directory, and each tensor dequantized to float32 (F32, F16, BF16, Q8_0, Q4_0, Q4_1, and the
// K-quants Q4_K, Q5_K, Q6_K). Hand-written because no maintained JavaScript
// library reads GGUF tensors (the npm `gguf`/`@huggingface/gguf` packages parse metadata only).
// Layout: "GGUF", version, tensor count, metadata count, metadata key/values, tensor infos, padding
// to `general.alignment`, then the tensor data, each tensor at its offset from the data's start.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { BadInputError } from '../../domain/errors.js';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types this reader dequantizes, by their number in the file. */
export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(GGML_TYPES).map(([name, id]) => [id, name]));

/** Bytes per block and values per block of each type. */
const BLOCKS: Record<number, { bytes: number; values: number }> = {
  [GGML_TYPES.F32]: { bytes: 4, values: 1 },
  [GGML_TYPES.F16]: { bytes: 2, values: 1 },
  [GGML_TYPES.BF16]: { bytes: 2, values: 1 },
  [GGML_TYPES.Q8_0]: { bytes: 34, values: 32 },
  [GGML_TYPES.Q4_0]: { bytes: 18, values: 32 },
  [GGML_TYPES.Q4_1]: { bytes: 20, values: 32 },
  [GGML_TYPES.Q4_K]: { bytes: 144, values: 256 },
  [GGML_TYPES.Q5_K]: { bytes: 176, values: 256 },
  [GGML_TYPES.Q6_K]: { bytes: 210, values: 256 },
};

export interface GgufTensorInfo {
  name: string;
  /** Row-major shape (GGUF lists dimensions fastest first; this is reversed). */
  shape: number[];
  type: number;
  typeName: string;
  /** Absolute position in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

/** Reads the header in growing chunks: a model's metadata (its vocabulary) can be megabytes. */
class HeaderCursor {
  private buf = Buffer.alloc(0);
  pos = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly path: string,
  ) {}

  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.size)
      throw new BadInputError(`${this.path}: not a GGUF file, or cut short (header runs past its ${this.size} bytes)`);
    const length = Math.min(this.size, Math.max(this.pos + n, this.buf.length * 2, 1 << 20));
    const next = Buffer.alloc(length);
    readSync(this.fd, next, 0, length, 0);
    this.buf = next;
  }

  u8 = () => (this.need(1), this.buf.readUInt8(this.pos++));
  i8 = () => (this.need(1), this.buf.readInt8(this.pos++));
  private take<T>(n: number, read: (at: number) => T): T {
    this.need(n);
    const v = read(this.pos);
    this.pos += n;
    return v;
  }
  u16 = () => this.take(2, (at) => this.buf.readUInt16LE(at));
  i16 = () => this.take(2, (at) => this.buf.readInt16LE(at));
  u32 = () => this.take(4, (at) => this.buf.readUInt32LE(at));
  i32 = () => this.take(4, (at) => this.buf.readInt32LE(at));
  f32 = () => this.take(4, (at) => this.buf.readFloatLE(at));
  f64 = () => this.take(8, (at) => this.buf.readDoubleLE(at));
  u64 = () => this.take(8, (at) => this.buf.readBigUInt64LE(at));
  i64 = () => this.take(8, (at) => this.buf.readBigInt64LE(at));
  /** A count or a size: exact as a number below 2^53, which any real file is. */
  size64 = () => Number(this.u64());
  string = () => {
    const n = this.size64();
    return this.take(n, (at) => this.buf.toString('utf8', at, at + n));
  };
}

function readValue(c: HeaderCursor, type: number, where: string): GgufValue {
  switch (type) {
    case 0:
      return c.u8();
    case 1:
      return c.i8();
    case 2:
      return c.u16();
    case 3:
      return c.i16();
    case 4:
      return c.u32();
    case 5:
      return c.i32();
    case 6:
      return c.f32();
    case 7:
      return c.u8() !== 0;
    case 8:
      return c.string();
    case 9: {
      const itemType = c.u32();
      const n = c.size64();
      return Array.from({ length: n }, () => readValue(c, itemType, where));
    }
    case 10:
      return c.u64();
    case 11:
      return c.i64();
    case 12:
      return c.f64();
    default:
      throw new BadInputError(`${where}: unknown GGUF value type ${type}`);
  }
}

/** Reads a GGUF file's metadata and tensor directory (not the tensors). */
export function readGguf(path: string): GgufFile {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const c = new HeaderCursor(fd, size, path);
    if (size < 4 || c.u32() !== 0x46554747) throw new BadInputError(`${path}: not a GGUF file (no "GGUF" magic)`);
    const version = c.u32();
    if (version < 2 || version > 3) throw new BadInputError(`${path}: GGUF version ${version}, this reader knows 2 and 3`);
    const tensorCount = c.size64();
    const metadataCount = c.size64();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < metadataCount; i++) {
      const key = c.string();
      metadata.set(key, readValue(c, c.u32(), `${path}: metadata ${key}`));
    }
    const infos = Array.from({ length: tensorCount }, () => {
      const name = c.string();
      const dims = Array.from({ length: c.u32() }, () => c.size64());
      return { name, dims, type: c.u32(), relative: c.size64() };
    });
    const alignment = Number(metadata.get('general.alignment') ?? 32);
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = infos.map(({ name, dims, type, relative }): GgufTensorInfo => {
      const block = BLOCKS[type];
      const count = dims.reduce((a, b) => a * b, 1);
      if (!block) throw new BadInputError(`${path}: tensor ${name} has ggml type ${type}, which this reader does not dequantize`);
      if (count % block.values !== 0)
        throw new BadInputError(`${path}: tensor ${name} has ${count} values, not whole blocks of ${block.values}`);
      const info = {
        name,
        shape: [...dims].reverse(),
        type,
        typeName: TYPE_NAMES.get(type)!,
        offset: dataStart + relative,
        byteLength: (count / block.values) * block.bytes,
      };
      if (info.offset + info.byteLength > size) throw new BadInputError(`${path}: tensor ${name} runs past the end of the file`);
      return info;
    });
    return { path, version, metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

const f16 = new Float32Array(1);
const f16Bits = new Uint32Array(f16.buffer);

/** IEEE half to float, exactly (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function bf16ToFloat(b: number): number {
  f16Bits[0] = b << 16;
  return f16[0]!;
}

/** Dequantizes one tensor's bytes to float32 values, in the file's order (row-major). */
export function dequantize(bytes: Buffer, type: number, count: number): Float32Array {
  const out = new Float32Array(count);
  switch (type) {
    case GGML_TYPES.F32:
      for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
      break;
    case GGML_TYPES.F16:
      for (let i = 0; i < count; i++) out[i] = halfToFloat(bytes.readUInt16LE(i * 2));
      break;
    case GGML_TYPES.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16ToFloat(bytes.readUInt16LE(i * 2));
      break;
    case GGML_TYPES.Q8_0:
      for (let b = 0; b < count / 32; b++) {
        const at = b * 34;
        const d = halfToFloat(bytes.readUInt16LE(at));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * bytes.readInt8(at + 2 + j);
      }
      break;
    case GGML_TYPES.Q4_0:
    case GGML_TYPES.Q4_1: {
      // Low nibbles are the block's first 16 values, high nibbles the last 16.
      const withMin = type === GGML_TYPES.Q4_1;
      const size = withMin ? 20 : 18;
      for (let b = 0; b < count / 32; b++) {
        const at = b * size;
        const d = halfToFloat(bytes.readUInt16LE(at));
        const m = withMin ? halfToFloat(bytes.readUInt16LE(at + 2)) : 0;
        const qs = at + (withMin ? 4 : 2);
        for (let j = 0; j < 16; j++) {
          const q = bytes[qs + j]!;
          out[b * 32 + j] = withMin ? (q & 0x0f) * d + m : ((q & 0x0f) - 8) * d;
          out[b * 32 + j + 16] = withMin ? (q >> 4) * d + m : ((q >> 4) - 8) * d;
        }
      }
      break;
    }
    case GGML_TYPES.Q4_K:
    case GGML_TYPES.Q5_K:
      for (let b = 0; b < count / 256; b++) dequantizeQ45K(bytes, b, type === GGML_TYPES.Q5_K, out);
      break;
    case GGML_TYPES.Q6_K:
      for (let b = 0; b < count / 256; b++) dequantizeQ6K(bytes, b, out);
      break;
    default:
      throw new BadInputError(`ggml type ${type} is not dequantized by this reader`);
  }
  return out;
}

const f32 = Math.fround;

/**
 * The 6-bit scale and min of sub-block j (0-7) of a Q4_K/Q5_K super-block, packed in 12 bytes at
 * `at`: the first four pairs in the low six bits, the last four split across the high bits.
 */
function scaleMin(bytes: Buffer, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  return [(bytes[at + j + 4]! & 0x0f) | ((bytes[at + j - 4]! >> 6) << 4), (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4)];
}

/** Q4_K (d, dmin, scales[12], qs[128]) and Q5_K (the same with qh[32] before qs): 256 values. */
function dequantizeQ45K(bytes: Buffer, block: number, fifthBit: boolean, out: Float32Array): void {
  const at = block * (fifthBit ? 176 : 144);
  const d = halfToFloat(bytes.readUInt16LE(at));
  const dmin = halfToFloat(bytes.readUInt16LE(at + 2));
  const scales = at + 4;
  const qh = at + 16;
  let qs = at + (fifthBit ? 48 : 16);
  let y = block * 256;
  // Products in float32, as ggml computes them, so both give the same bits.
  for (let j = 0, is = 0; j < 256; j += 64, is += 2, qs += 32, y += 64) {
    const [sc1, m1] = scaleMin(bytes, scales, is);
    const [sc2, m2] = scaleMin(bytes, scales, is + 1);
    const d1 = f32(d * sc1);
    const min1 = f32(dmin * m1);
    const d2 = f32(d * sc2);
    const min2 = f32(dmin * m2);
    const low = 1 << is;
    const high = 2 << is;
    for (let l = 0; l < 32; l++) {
      const q = bytes[qs + l]!;
      const h = fifthBit ? bytes[qh + l]! : 0;
      out[y + l] = f32(d1 * ((q & 0x0f) + (h & low ? 16 : 0))) - min1;
      out[y + l + 32] = f32(d2 * ((q >> 4) + (h & high ? 16 : 0))) - min2;
    }
  }
}

/** Q6_K (ql[128], qh[64], int8 scales[16], d): 256 six-bit values in two halves of 128. */
function dequantizeQ6K(bytes: Buffer, block: number, out: Float32Array): void {
  const at = block * 210;
  const d = halfToFloat(bytes.readUInt16LE(at + 208));
  for (let half = 0; half < 2; half++) {
    const ql = at + half * 64;
    const qh = at + 128 + half * 32;
    const sc = at + 192 + half * 8;
    const y = block * 256 + half * 128;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = bytes[qh + l]!;
      const q1 = ((bytes[ql + l]! & 0x0f) | ((h & 3) << 4)) - 32;
      const q2 = ((bytes[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((bytes[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((bytes[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      out[y + l] = f32(d * bytes.readInt8(sc + is)) * q1;
      out[y + l + 32] = f32(d * bytes.readInt8(sc + is + 2)) * q2;
      out[y + l + 64] = f32(d * bytes.readInt8(sc + is + 4)) * q3;
      out[y + l + 96] = f32(d * bytes.readInt8(sc + is + 6)) * q4;
    }
  }
}

/** One tensor of a file read by readGguf, as float32 in row-major order. */
export function readGgufTensor(file: GgufFile, name: string): { shape: number[]; values: Float32Array } {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new BadInputError(`${file.path}: no tensor named ${name}`);
  const fd = openSync(file.path, 'r');
  try {
    const bytes = Buffer.alloc(info.byteLength);
    readSync(fd, bytes, 0, info.byteLength, info.offset);
    return {
      shape: info.shape,
      values: dequantize(
        bytes,
        info.type,
        info.shape.reduce((a, b) => a * b, 1),
      ),
    };
  } finally {
    closeSync(fd);
  }
}
