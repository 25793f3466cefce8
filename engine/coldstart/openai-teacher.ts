// A teacher backed by an OpenAI-compatible chat-completions API (OpenAI, vLLM, SGLang, a gateway).
// Text mode: one request for a step-by-step text solution. Code mode: that request, then the
// ReTool rewrite of the text reasoning into code-integrated reasoning (rewrite-prompt.ts). The
// interpreter outputs the model writes are not trusted here: verification re-runs every block.
import { z } from 'zod';
import { OpenAITeacherOptionsSchema } from './options.js';
import { REWRITE_SYSTEM_PROMPT, rewriteUserMessage, SOLVE_SYSTEM_PROMPT, solveUserMessage } from './rewrite-prompt.js';
import type { Teacher, TeacherFailure, TeacherProblem, TeacherTrace, TraceMode } from './teacher.js';
import { TAG } from '../trace/format.js';

type OpenAITeacherOptions = z.output<typeof OpenAITeacherOptionsSchema>;

const ChatCompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
});

interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A FIFO counting semaphore. */
class Semaphore {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(slots: number) {
    this.free = slots;
  }

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so the count never over-admits.
      if (next) next();
      else this.free += 1;
    }
  }
}

class RequestError extends Error {}

const RETRYABLE_STATUS = new Set([408, 409, 429]);
const isRetryableStatus = (status: number) => RETRYABLE_STATUS.has(status) || status >= 500;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or null when absent or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (header === null || header.trim() === '') return null;
  const seconds = Number(header.trim());
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** The response up to and including the first `</answer>`: the turn ends at the answer. */
function cutAfterAnswer(response: string): string {
  const close = response.indexOf(TAG.answerClose);
  return close === -1 ? response.trim() : response.slice(0, close + TAG.answerClose.length).trim();
}

export class OpenAITeacher implements Teacher {
  readonly name = 'openai';
  private readonly opts: OpenAITeacherOptions;
  private readonly url: string;
  /** The URL as error messages show it: no credentials, no query. */
  private readonly shownUrl: string;
  private readonly slots: Semaphore;

  constructor(options: OpenAITeacherOptions) {
    this.opts = OpenAITeacherOptionsSchema.parse(options);
    this.url = `${this.opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    const shown = new URL(this.url);
    shown.username = '';
    shown.password = '';
    shown.search = '';
    this.shownUrl = shown.toString();
    this.slots = new Semaphore(this.opts.concurrency);
  }

  /**
   * Keeps the key out of messages, whatever a server echoes back. (Our own messages never hold
   * it; a toy key of a few characters is left alone rather than cut out of every word.)
   */
  private redact(text: string): string {
    const key = this.opts.apiKey;
    return key && key.length >= 8 ? text.split(key).join('<redacted>') : text;
  }

  private backoffMs(retry: number, retryAfter: number | null): number {
    const { initialBackoffMs, maxBackoffMs } = this.opts;
    if (retryAfter !== null) return Math.min(retryAfter, maxBackoffMs);
    const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** retry);
    // Equal jitter: half fixed, half random, so concurrent callers spread out.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** One chat completion, with retries; at most `concurrency` of these run at once. */
  private complete(messages: ChatMessage[]): Promise<string> {
    return this.slots.use(async () => {
      const { model, temperature, seed, apiKey, maxRetries, timeoutMs } = this.opts;
      const body = JSON.stringify({ model, messages, temperature, seed });
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      if (apiKey) headers.authorization = `Bearer ${apiKey}`;
      let lastError = '';
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        let retryAfter: number | null = null;
        let res: Response;
        let text: string;
        try {
          res = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
          text = await res.text();
        } catch (error) {
          const e = error as Error;
          lastError =
            e.name === 'TimeoutError'
              ? `timed out after ${timeoutMs} ms`
              : `network error: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}`;
          if (attempt < maxRetries) await sleep(this.backoffMs(attempt, null));
          continue;
        }
        if (!res.ok) {
          lastError = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text.trim() ? `: ${text.trim().slice(0, 300)}` : ''}`;
          if (!isRetryableStatus(res.status)) throw new RequestError(`POST ${this.shownUrl} failed: ${lastError} (not retried)`);
          retryAfter = retryAfterMs(res.headers.get('retry-after'));
          if (attempt < maxRetries) await sleep(this.backoffMs(attempt, retryAfter));
          continue;
        }
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new RequestError(`POST ${this.shownUrl}: HTTP ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
        }
        const parsed = ChatCompletionSchema.safeParse(json);
        if (!parsed.success)
          throw new RequestError(
            `POST ${this.shownUrl}: HTTP ${res.status} with a malformed chat completion: ${z.prettifyError(parsed.error)}`,
          );
        const choice = parsed.data.choices[0]!;
        const content = choice.message.content ?? '';
        if (content.trim() === '')
          throw new RequestError(
            `POST ${this.shownUrl}: HTTP ${res.status} with an empty completion (finish_reason ${choice.finish_reason ?? 'none'})`,
          );
        return content;
      }
      throw new RequestError(`POST ${this.shownUrl} failed after ${maxRetries + 1} attempts: ${lastError}`);
    });
  }

  async write(problem: TeacherProblem, mode: TraceMode): Promise<TeacherTrace | TeacherFailure> {
    let stage = 'solve';
    try {
      const text = cutAfterAnswer(
        await this.complete([
          { role: 'system', content: SOLVE_SYSTEM_PROMPT },
          { role: 'user', content: solveUserMessage(problem.problem) },
        ]),
      );
      let response = text;
      if (mode === 'code') {
        stage = 'rewrite';
        response = cutAfterAnswer(
          await this.complete([
            { role: 'system', content: REWRITE_SYSTEM_PROMPT },
            { role: 'user', content: rewriteUserMessage(problem.problem, text) },
          ]),
        );
      }
      return { problemId: problem.id, mode, teacher: this.name, response, seededDefect: null, selfCorrection: false };
    } catch (error) {
      const message = error instanceof RequestError ? error.message : `${this.shownUrl}: ${(error as Error).message}`;
      return { problemId: problem.id, error: this.redact(`${stage} request: ${message}`) };
    }
  }

  async close(): Promise<void> {}
}
