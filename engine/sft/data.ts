// SFT examples: prompt + response tokens with a role each, and the loss mask derived from the
// roles (model tokens only), then batches padded to their longest row with the mask carried per
// token. Padding, not packing: the model has no document mask, so packed examples would attend
// to each other.
import { promptText } from '../trace/prompt.js';
import { tokenizeWithRoles, type Role } from '../trace/format.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { TokenBatch } from '../train/step.js';

export interface SftExample {
  ids: number[];
  roles: Role[];
}

export interface BuiltExamples {
  examples: SftExample[];
  /** Traces longer than the context: dropped, never cut (a cut trace teaches an answerless turn). */
  tooLong: number;
}

export function buildExamples(tokenizer: TextTokenizer, traces: { problem: string; response: string }[], maxLength: number): BuiltExamples {
  const examples: SftExample[] = [];
  let tooLong = 0;
  for (const t of traces) {
    const { ids, roles } = tokenizeWithRoles(tokenizer, promptText(tokenizer, t.problem), t.response);
    ids.push(tokenizer.eosId);
    roles.push('model');
    if (ids.length > maxLength) tooLong += 1;
    else examples.push({ ids, roles });
  }
  return { examples, tooLong };
}

/** 1 where the token is the model's own; prompt and interpreter tokens get 0. */
export function lossMask(roles: Role[]): number[] {
  return roles.map((r) => (r === 'model' ? 1 : 0));
}

export function padBatch(examples: SftExample[], padId: number): TokenBatch {
  const T = Math.max(...examples.map((e) => e.ids.length));
  return {
    ids: examples.map((e) => [...e.ids, ...Array(T - e.ids.length).fill(padId)]),
    lossMask: examples.map((e) => [...lossMask(e.roles), ...Array(T - e.ids.length).fill(0)]),
    valid: examples.map((e) => [...e.ids.map(() => 1), ...Array(T - e.ids.length).fill(0)]),
  };
}
