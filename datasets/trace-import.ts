// Reading conversation-style trace files (`retool data import FILE --kind traces`): one row per
// trace, its `messages` a system turn (optional), the user's problem and the assistant's response
// with `<code>` blocks and their `<interpreter>` output, as in the public ReTool SFT set. DuckDB
// reads the file (JSONL, JSON or Parquet); each row's messages are checked here and a bad row is
// named with what is wrong. Verification and storing are the import stage's (stages/import-traces.ts).
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import { ImportFormatSchema } from './import-options.js';
import { detectFormat, explainReadError, jsonlLineOfRow, readerSql } from './problems-io.js';
import { DatasetNameSchema } from './schemas.js';
import { sqlIdent, type Store } from './store.js';

export const TraceImportOptionsSchema = z.object({
  file: z.string().min(1),
  name: DatasetNameSchema,
  /** The field holding each row's messages ([{role, content}, ...]). */
  messagesField: z.string().min(1).default('messages'),
  /** The field holding the gold answer; default `answer` when the rows have one. Without it only the format and the code are checked. */
  answerField: z.string().min(1).optional(),
  /** Defaults to a column named `id` when there is one, else the row's position. */
  idField: z.string().min(1).optional(),
  format: ImportFormatSchema.exclude(['csv']).optional(),
  /** Import at most this many rows (the first ones). */
  limit: z.number().int().positive().optional(),
  newVersion: z.boolean().default(false),
  /** Traces verified at once (each runs its code in the sandbox). */
  concurrency: z.number().int().positive().max(256).default(8),
});
export type TraceImportOptions = z.input<typeof TraceImportOptionsSchema>;

const MessageSchema = z.object({ role: z.string(), content: z.string() });

export interface ConversationRow {
  id: string;
  problem: string;
  response: string;
  gold: string | null;
}

/**
 * The rows' problem (the last user turn) and response (the assistant turn after it). Roles must
 * be system..., user, assistant, in that order: a trace is one answer to one problem.
 */
function conversation(messages: unknown): { problem: string; response: string } | string {
  const parsed = z.array(MessageSchema).safeParse(typeof messages === 'string' ? safeJson(messages) : messages);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `messages${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`;
  }
  const roles = parsed.data.map((m) => m.role);
  const firstOther = roles.findIndex((r) => r !== 'system');
  const rest = firstOther === -1 ? [] : roles.slice(firstOther);
  if (rest.length !== 2 || rest[0] !== 'user' || rest[1] !== 'assistant')
    return `messages: expected system turns (optional), then one user turn and one assistant turn; found roles ${JSON.stringify(roles)}`;
  const [user, assistant] = parsed.data.slice(firstOther);
  if (!user!.content.trim()) return 'messages: the user turn (the problem) is empty';
  if (!assistant!.content.trim()) return 'messages: the assistant turn (the trace) is empty';
  return { problem: user!.content.trim(), response: assistant!.content.trim() };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Every row of the file as a conversation, or a BadInputError naming the first bad row. */
export async function readConversationRows(store: Store, options: TraceImportOptions): Promise<ConversationRow[]> {
  const opts = TraceImportOptionsSchema.parse(options);
  const file = resolve(opts.file);
  if (!existsSync(file) || !statSync(file).isFile()) throw new BadInputError(`${opts.file}: no such file`);
  if (statSync(file).size === 0) throw new BadInputError(`${opts.file}: the file is empty (no rows to import)`);
  const format = detectFormat(file, opts.format);
  if (format === 'csv') throw new BadInputError(`${opts.file}: traces are read from JSONL, JSON or Parquet, not CSV`);
  let columns: Set<string>;
  try {
    const described = await store.query<{ column_name: string }>(`DESCRIBE SELECT * FROM ${readerSql(file, format)}`);
    columns = new Set(described.map((c) => c.column_name));
  } catch (err) {
    throw explainReadError(opts.file, format, err);
  }
  const answerField = opts.answerField ?? (columns.has('answer') ? 'answer' : undefined);
  const idField = opts.idField ?? (columns.has('id') ? 'id' : undefined);
  for (const [field, flag] of [
    [opts.messagesField, '--messages-field'],
    [answerField, '--answer-field'],
    [idField, '--id-field'],
  ] as const) {
    if (field !== undefined && !columns.has(field))
      throw new BadInputError(
        `${opts.file}: no field "${field}" in the rows (fields found: ${[...columns].join(', ')}); choose one with ${flag}`,
      );
  }
  const text = (f: string | undefined) => (f ? `CAST(${sqlIdent(f)} AS VARCHAR)` : 'NULL');
  let rows: { m: string | null; a: string | null; i: string | null }[];
  try {
    rows = await store.query(
      `SELECT to_json(${sqlIdent(opts.messagesField)})::VARCHAR AS m, ${text(answerField)} AS a, ${text(idField)} AS i
       FROM ${readerSql(file, format)} ${opts.limit ? `LIMIT ${opts.limit}` : ''}`,
    );
  } catch (err) {
    throw explainReadError(opts.file, format, err);
  }
  if (rows.length === 0) throw new BadInputError(`${opts.file}: no rows to import`);
  // Re-reads a JSONL file to find the line: only on the error path.
  const where = (i: number) => (format === 'jsonl' ? `line ${jsonlLineOfRow(file, i)}` : `row ${i + 1}`);
  const seen = new Set<string>();
  return rows.map((r, i) => {
    const conv = r.m === null ? `no field "${opts.messagesField}"` : conversation(JSON.parse(r.m));
    if (typeof conv === 'string') throw new BadInputError(`${opts.file} ${where(i)}: ${conv}`);
    if (answerField && (r.a === null || r.a.trim() === ''))
      throw new BadInputError(`${opts.file} ${where(i)}: field "${answerField}" is missing or empty (--answer-field)`);
    const id = r.i ?? `row-${i}`;
    if (seen.has(id)) throw new BadInputError(`${opts.file} ${where(i)}: id "${id}" is on more than one row; ids must be unique`);
    seen.add(id);
    return { id, ...conv, gold: answerField ? r.a!.trim() : null };
  });
}
