// The OpenAI API's request bodies this server accepts, and its error body. Fields the server
// does not implement are accepted when they ask for the default (n: 1) and refused otherwise,
// so a client never silently gets something other than what it asked for.
import { z } from 'zod';

const Sampling = {
  model: z.string().min(1),
  max_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  n: z.literal(1).nullable().optional(),
  user: z.string().optional(),
};

const Content = z.union([
  z.string(),
  // The array form: text parts only (no images).
  z.array(z.object({ type: z.literal('text'), text: z.string() })).transform((parts) => parts.map((p) => p.text).join('')),
]);

export const ChatRequestSchema = z
  .object({
    ...Sampling,
    messages: z.array(z.object({ role: z.enum(['system', 'developer', 'user', 'assistant']), content: Content })).min(1),
    max_completion_tokens: z.number().int().positive().nullable().optional(),
    /** Run the model's <code> blocks in the sandbox as it writes them (ReTool's loop); the reply holds the whole trajectory. */
    tools_in_sandbox: z.boolean().optional(),
  })
  .passthrough();
export type ChatRequest = z.output<typeof ChatRequestSchema>;

export const CompletionRequestSchema = z
  .object({
    ...Sampling,
    prompt: z.union([
      z.string(),
      z
        .array(z.string())
        .length(1)
        .transform((p) => p[0]!),
    ]),
    tools_in_sandbox: z.boolean().optional(),
  })
  .passthrough();
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: 'invalid_request_error' | 'not_found_error' | 'server_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(err: z.ZodError): ApiError {
  const first = err.issues[0]!;
  const param = first.path.join('.') || null;
  return new ApiError(400, `${param ?? 'body'}: ${first.message}`, 'invalid_request_error', param, 'invalid_value');
}
