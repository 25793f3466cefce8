import type { ExecResult } from './types.js';

// CSI/OSC/other escape sequences, then any C0 control but tab and newline, and DEL. Matching
// control characters is the point of these two patterns.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** Bytes from untrusted code, made safe to store, print on a terminal and feed to a tokenizer. */
export function cleanOutput(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\r\n/g, '\n').replace(ESCAPES, '').replace(CONTROLS, '');
}

/**
 * Cuts `text` to at most `maxBytes` of UTF-8, keeping its head and tail (the end of a traceback
 * or a printed result matters as much as its start), cutting only at character boundaries.
 */
export function truncateMiddle(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const marker = `\n...[${bytes.length - maxBytes} bytes cut]...\n`;
  const room = Math.max(0, maxBytes - Buffer.byteLength(marker));
  const head = utf8Prefix(bytes, Math.ceil(room / 2));
  const tail = utf8Suffix(bytes, Math.floor(room / 2));
  return `${head}${marker}${tail}`;
}

function utf8Prefix(bytes: Buffer, n: number): string {
  let end = Math.min(n, bytes.length);
  while (end > 0 && end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

function utf8Suffix(bytes: Buffer, n: number): string {
  let start = Math.max(0, bytes.length - n);
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start += 1;
  return bytes.subarray(start).toString('utf8');
}

/** The last non-empty line of a traceback: what ReTool's evaluator shows the model on error. */
export function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

/** What goes between `<interpreter>` tags: stdout, or the error in one line, cut to `maxBytes`. */
export function renderForModel(result: ExecResult, maxBytes = 1024): string {
  let text: string;
  switch (result.status) {
    case 'ok':
      text = result.stdout;
      break;
    case 'error':
      text = lastErrorLine(result.stderr) || `exited with code ${result.exitCode}`;
      break;
    case 'timeout':
      text = `TimeoutError: execution exceeded the ${result.reason === 'cpu' ? 'CPU time' : 'time'} limit`;
      break;
    case 'memory':
      text = 'MemoryError: execution exceeded the memory limit';
      break;
    case 'killed':
      text =
        result.reason === 'output' ? `${result.stdout}\nOutputLimitError: output limit exceeded` : `Killed: ${result.reason ?? 'signal'}`;
      break;
    case 'sandbox_error':
      text = 'SandboxError: the code could not be run';
      break;
  }
  return truncateMiddle(text.replace(/\n+$/, ''), maxBytes);
}
