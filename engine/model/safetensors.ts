// Hand-written: npm has no maintained safetensors library that reads AND writes F32/F16/BF16
// (@huggingface/hub only parses headers of remote repos; the `safetensors` package is an
// unmaintained 0.0.1), and the format is tiny.
//
// Format: u64 little-endian header length N, then N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}
// (padded with spaces), then the raw little-endian tensor data; offsets are relative to the
// start of the data section. Validation follows the reference (Rust) implementation: the
// tensors must tile the data section exactly, with no gaps, overlaps or trailing bytes.
import { closeSync, fstatSync, openSync, readSync, writeSync, fsyncSync } from 'node:fs';

export type DType = 'F32' | 'F16' | 'BF16';
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}
export interface ReadTensor extends NamedTensor {
  /** The dtype on disk; `data` always holds the values widened (exactly) to float32. */
  dtype: DType;
}
export interface DecodedSafetensors {
  tensors: Map<string, ReadTensor>;
  metadata: Record<string, string>;
}
export interface EncodeOptions {
  /** On-disk dtype of every tensor (default F32). F16/BF16 round to nearest, ties to even. */
  dtype?: DType;
  /** Merged over the default {"format": "pt"}, which transformers requires to load the file. */
  metadata?: Record<string, string>;
}

const ITEM_SIZE: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Dtypes the format defines that we recognise but do not load (weights are floats). */
const OTHER_DTYPES = new Set([
  'F64',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
]);
/** The reference implementation refuses headers larger than this. */
const MAX_HEADER_BYTES = 100_000_000;
/** Bytes per read/write call and per conversion chunk when streaming to or from a file. */
const IO_CHUNK = 1 << 24;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors: big-endian hosts are not supported');
}

function isDType(s: string): s is DType {
  return s === 'F32' || s === 'F16' || s === 'BF16';
}

// ---------------------------------------------------------------------------------------------
// Scalar conversions (bit patterns). Exported for tests and for callers that need single values.

let f16Table: Uint32Array | null = null;
/** float32 bit patterns of all 65536 float16 values (exact: every f16 is representable in f32). */
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
  f16Table = t;
  return t;
}

export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp === 0) {
    if (man === 0) return sign >>> 0; // ±0
    // Subnormal: 0.man × 2^-14. Normalise to 1.m × 2^e.
    let e = 113; // biased f32 exponent of 2^-14
    while ((man & 0x400) === 0) {
      man <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((man & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 31) return (sign | 0x7f800000 | (man << 13)) >>> 0; // inf / nan (payload kept)
  return (sign | ((exp + 112) << 23) | (man << 13)) >>> 0;
}

/** float32 bits → float16 bits, round to nearest even; overflow → ±inf; NaN → 0x7e00|sign (as torch). */
export function f32BitsToF16Bits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const fExp = f & 0x7f800000;
  if (fExp >= 0x47800000) {
    // |x| >= 65536, inf or nan
    if (fExp === 0x7f800000 && (f & 0x7fffff) !== 0) return sign | 0x7e00;
    return sign | 0x7c00;
  }
  if (fExp <= 0x38000000) {
    // |x| < 2^-14: f16 subnormal or zero
    if (fExp < 0x33000000) return sign; // below half the smallest subnormal
    const e = fExp >>> 23;
    let sig = 0x800000 + (f & 0x7fffff);
    const shift = 113 - e; // 1..11
    const stickyBelow = (f & ((1 << shift) - 1)) !== 0; // bits the first shift drops
    sig >>>= shift;
    // Round half to even on the 13 bits below the half significand (plus the sticky bits).
    const halfway = 1 << 12;
    const rem = sig & 0x1fff;
    let hSig = sig >>> 13;
    if (rem > halfway || (rem === halfway && (stickyBelow || (hSig & 1) === 1))) hSig += 1;
    return sign | hSig; // a carry into the exponent field is the correct result
  }
  const hExp = (fExp - 0x38000000) >>> 13;
  const man = f & 0x7fffff;
  let h = hExp + (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // carry may overflow to inf: correct
  return sign | h;
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN → 0x7fc0 (as torch). */
export function f32BitsToBf16Bits(f: number): number {
  if ((f & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Bulk conversions.

/** Decode `count` elements of `dtype` from `src` (any alignment) into `dst`. */
function decodeInto(dtype: DType, src: Uint8Array, dst: Float32Array): void {
  const n = dst.length;
  if (n === 0) return;
  if (dtype === 'F32') {
    new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(src.subarray(0, n * 4));
    return;
  }
  const halves = src.byteOffset % 2 === 0 ? new Uint16Array(src.buffer, src.byteOffset, n) : new Uint16Array(src.slice(0, n * 2).buffer);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
  if (dtype === 'BF16') {
    for (let i = 0; i < n; i++) out[i] = (halves[i]! << 16) >>> 0;
  } else {
    const table = f16ToF32Table();
    for (let i = 0; i < n; i++) out[i] = table[halves[i]!]!;
  }
}

/** Encode `src` as `dtype` into `dst` (byte length src.length × itemsize, any alignment). */
function encodeInto(dtype: DType, src: Float32Array, dst: Uint8Array): void {
  const n = src.length;
  if (n === 0) return;
  if (dtype === 'F32') {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
    return;
  }
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  const aligned = dst.byteOffset % 2 === 0;
  const halves = aligned ? new Uint16Array(dst.buffer, dst.byteOffset, n) : new Uint16Array(n);
  if (dtype === 'BF16') for (let i = 0; i < n; i++) halves[i] = f32BitsToBf16Bits(bits[i]!);
  else for (let i = 0; i < n; i++) halves[i] = f32BitsToF16Bits(bits[i]!);
  if (!aligned) dst.set(new Uint8Array(halves.buffer));
}

// ---------------------------------------------------------------------------------------------
// Header parsing and validation.

interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

function fail(where: string, what: string): never {
  throw new Error(`${where}: invalid safetensors file: ${what}`);
}

function parseHeader(
  headerBytes: Uint8Array,
  dataLength: number,
  where: string,
): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail(where, 'the JSON header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(where, 'the header does not start with "{" (not a safetensors file, or a corrupt header length)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(where, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(where, 'the header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, '"__metadata__" is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(where, `"__metadata__" value for "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const t = `tensor "${name}"`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, `${t} is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(where, `${t} has no string "dtype"`);
    if (!isDType(dtype)) {
      if (OTHER_DTYPES.has(dtype))
        fail(where, `${t} has dtype ${dtype}, which is not supported (only F32, F16 and BF16 tensors can be loaded)`);
      fail(where, `${t} has unknown dtype "${dtype}"`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(where, `${t} has an invalid "shape" (must be an array of non-negative integers): ${JSON.stringify(shape)}`);
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    if (!Number.isSafeInteger(numel)) fail(where, `${t} has shape ${JSON.stringify(shape)} with too many elements`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      fail(where, `${t} has invalid "data_offsets" (must be [begin, end] with 0 <= begin <= end): ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      fail(
        where,
        `${t} has data_offsets [${begin}, ${end}] beyond the end of the data section (${dataLength} bytes): the file is truncated or the offsets are out of range`,
      );
    }
    const bytes = numel * ITEM_SIZE[dtype];
    if (end - begin !== bytes) {
      fail(
        where,
        `${t} has shape ${JSON.stringify(shape)} and dtype ${dtype} (${bytes} bytes) but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
      );
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), numel, begin, end });
  }

  // The tensors must tile the data section exactly (as the reference implementation demands).
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: HeaderEntry | null = null;
  for (const e of byOffset) {
    if (e.begin < cursor)
      fail(where, `tensor "${e.name}" data [${e.begin}, ${e.end}] overlaps tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > cursor) fail(where, `bytes [${cursor}, ${e.begin}) of the data section belong to no tensor`);
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLength) {
    fail(where, `the data section has ${dataLength} bytes but the tensors cover only ${cursor} (${dataLength - cursor} trailing bytes)`);
  }
  return { entries, metadata };
}

function readHeaderLength(lengthBytes: Uint8Array, fileSize: number, where: string): number {
  if (fileSize < 8) fail(where, `the file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8))
    fail(where, `the header length ${n} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(where, `the header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) fail(where, `the header length ${n} is too small for a JSON object`);
  return Number(n);
}

// ---------------------------------------------------------------------------------------------
// Public API: decode / read.

/**
 * Decode a safetensors file held in memory. F32 tensors whose data is 4-byte aligned are views
 * into `bytes` (no copy; they share memory with it); everything else is copied/converted.
 * `source` names the data in error messages.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): DecodedSafetensors {
  requireLittleEndian();
  const n = readHeaderLength(bytes, bytes.length, source);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  const tensors = new Map<string, ReadTensor>();
  for (const e of sortByName(entries)) {
    const absolute = bytes.byteOffset + dataStart + e.begin;
    let data: Float32Array;
    if (e.dtype === 'F32' && absolute % 4 === 0) {
      data = new Float32Array(bytes.buffer, absolute, e.numel);
    } else {
      data = new Float32Array(e.numel);
      decodeInto(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end), data);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

function readFully(fd: number, dst: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < dst.length) {
    const len = Math.min(dst.length - done, IO_CHUNK * 8);
    const got = readSync(fd, dst, done, len, position + done);
    if (got === 0) fail(file, `unexpected end of file at byte ${position + done} (the file is truncated)`);
    done += got;
  }
}

/**
 * Read a .safetensors file. Streams each tensor straight into its own Float32Array (F32 data is
 * read in place; F16/BF16 are converted chunk by chunk), so peak memory is the decoded tensors
 * plus one small buffer, and files over Node's 2 GiB readFileSync limit work.
 */
export function readSafetensorsFile(file: string): DecodedSafetensors {
  requireLittleEndian();
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const lengthBytes = new Uint8Array(8);
    if (size >= 8) readFully(fd, lengthBytes, 0, file);
    const n = readHeaderLength(lengthBytes, size, file);
    const headerBytes = new Uint8Array(n);
    readFully(fd, headerBytes, 8, file);
    const dataStart = 8 + n;
    const { entries, metadata } = parseHeader(headerBytes, size - dataStart, file);
    const tensors = new Map<string, ReadTensor>();
    let scratch: Uint8Array | null = null;
    for (const e of sortByName(entries)) {
      const data = new Float32Array(e.numel);
      if (e.dtype === 'F32') {
        readFully(fd, new Uint8Array(data.buffer), dataStart + e.begin, file);
      } else {
        const item = ITEM_SIZE[e.dtype];
        const perChunk = IO_CHUNK / item;
        scratch ??= new Uint8Array(IO_CHUNK);
        for (let i = 0; i < e.numel; i += perChunk) {
          const count = Math.min(perChunk, e.numel - i);
          const chunk = scratch.subarray(0, count * item);
          readFully(fd, chunk, dataStart + e.begin + i * item, file);
          decodeInto(e.dtype, chunk, data.subarray(i, i + count));
        }
      }
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

function sortByName<T extends { name: string }>(xs: T[]): T[] {
  return [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Public API: encode / write.

interface Layout {
  header: Uint8Array;
  order: { name: string; tensor: NamedTensor; begin: number; end: number }[];
  dtype: DType;
  dataBytes: number;
}

function layout(tensors: Map<string, NamedTensor>, opts: EncodeOptions = {}): Layout {
  const dtype = opts.dtype ?? 'F32';
  if (!isDType(dtype)) throw new Error(`safetensors: cannot encode dtype "${String(dtype)}" (F32, F16 or BF16)`);
  const metadata: Record<string, string> = { format: 'pt', ...opts.metadata };
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`safetensors: metadata value for "${k}" must be a string`);
  }
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // Built by hand so the key order is exactly ours (JS objects put integer-like keys first).
  const parts = [`"__metadata__":${JSON.stringify(metadata)}`];
  const order: Layout['order'] = [];
  let offset = 0;
  for (const name of names) {
    const tensor = tensors.get(name)!;
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" cannot be a tensor name');
    const { shape, data } = tensor;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    const numel = shape.reduce((a, d) => a * d, 1);
    if (!(data instanceof Float32Array)) throw new Error(`safetensors: tensor "${name}" data must be a Float32Array`);
    if (data.length !== numel) {
      throw new Error(`safetensors: tensor "${name}" has shape ${JSON.stringify(shape)} (${numel} elements) but ${data.length} values`);
    }
    const end = offset + numel * ITEM_SIZE[dtype];
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [offset, end] })}`);
    order.push({ name, tensor, begin: offset, end });
    offset = end;
  }
  const raw = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces so the data section starts 8-byte aligned.
  const padded = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  padded.set(raw);
  const header = new Uint8Array(8 + padded.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded.length), true);
  header.set(padded, 8);
  return { header, order, dtype, dataBytes: offset };
}

/** Encode tensors into one in-memory safetensors file (header sorted by name, {"format":"pt"}). */
export function encodeSafetensors(tensors: Map<string, NamedTensor>, opts?: EncodeOptions): Uint8Array {
  requireLittleEndian();
  const { header, order, dtype, dataBytes } = layout(tensors, opts);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  for (const o of order) encodeInto(dtype, o.tensor.data, out.subarray(header.length + o.begin, header.length + o.end));
  return out;
}

/** Number of bytes `tensor` takes on disk as `dtype`. */
export function tensorByteSize(tensor: NamedTensor, dtype: DType = 'F32'): number {
  return tensor.shape.reduce((a, d) => a * d, 1) * ITEM_SIZE[dtype];
}

/**
 * Write tensors to `file` as safetensors without building the whole file in memory (F32 data is
 * written straight from the arrays; F16/BF16 are converted chunk by chunk). With `fsync`, the
 * file is flushed to disk before returning. Returns the number of bytes written.
 */
export function writeSafetensorsFile(
  file: string,
  tensors: Map<string, NamedTensor>,
  opts: EncodeOptions & { fsync?: boolean } = {},
): number {
  requireLittleEndian();
  const { header, order, dtype, dataBytes } = layout(tensors, opts);
  const fd = openSync(file, 'w');
  try {
    let position = 0;
    const writeAll = (bytes: Uint8Array): void => {
      let done = 0;
      while (done < bytes.length) {
        done += writeSync(fd, bytes, done, Math.min(bytes.length - done, IO_CHUNK * 8), position + done);
      }
      position += bytes.length;
    };
    writeAll(header);
    let scratch: Uint8Array | null = null;
    for (const { tensor } of order) {
      const { data } = tensor;
      if (dtype === 'F32') {
        writeAll(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        continue;
      }
      const item = ITEM_SIZE[dtype];
      const perChunk = IO_CHUNK / item;
      scratch ??= new Uint8Array(IO_CHUNK);
      for (let i = 0; i < data.length; i += perChunk) {
        const count = Math.min(perChunk, data.length - i);
        const chunk = scratch.subarray(0, count * item);
        encodeInto(dtype, data.subarray(i, i + count), chunk);
        writeAll(chunk);
      }
    }
    if (opts.fsync) fsyncSync(fd);
    return header.length + dataBytes;
  } finally {
    closeSync(fd);
  }
}
