// Command-line flags derived from a stage's zod schema: the type, the choices and the default shown
// in --help come from the schema, so a knob's default is written once (in the schema) and the
// parsed options are the schema's own output, with no casts. Commander does the parsing of the
// text; zod does the validation, and its complaints name the flag the user typed.
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { BadInputError } from '../domain/errors.js';
import type { RolloutOptionsSchema } from '../engine/rollout/options.js';
import { parseList, parseNumber } from './output.js';

/** How one schema field appears on the command line. */
export interface Flag {
  help: string;
  /** The flag without its dashes (default: the field's name in kebab-case). */
  name?: string;
  /** The value's placeholder in --help (`<dir>`, `<ref>`); by default from its type. */
  arg?: string;
  /** A boolean as `--flag on|off` rather than a bare switch. */
  onOff?: boolean;
  required?: boolean;
}

type FieldsOf<S extends z.ZodObject> = keyof z.input<S> & string;
export type Flags<S extends z.ZodObject> = Partial<Record<FieldsOf<S>, Flag | string>>;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const specOf = (flag: Flag | string): Flag => (typeof flag === 'string' ? { help: flag } : flag);
const flagName = (key: string, flag: Flag) => flag.name ?? kebab(key);

/** The type under `.default()`, `.optional()`, `.nullable()` and `.prefault()`. */
function inner(field: z.ZodType): z.ZodType {
  let t: z.ZodType = field;
  while (t instanceof z.ZodDefault || t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodPrefault) {
    t = t.unwrap() as z.ZodType;
  }
  return t;
}

/** The schema's default for a field, as --help shows it; undefined when it has none. */
function defaultOf(field: z.ZodType): unknown {
  const parsed = field.safeParse(undefined);
  return parsed.success ? parsed.data : undefined;
}

function shown(value: unknown, onOff: boolean): string {
  if (onOff && typeof value === 'boolean') return value ? 'on' : 'off';
  return Array.isArray(value) ? value.join(',') : String(value);
}

function optionFor(key: string, field: z.ZodType, flag: Flag): Option {
  const name = flagName(key, flag);
  const type = inner(field);
  const fallback = defaultOf(field);
  const help = fallback === undefined || fallback === false ? flag.help : `${flag.help} (default: ${shown(fallback, Boolean(flag.onOff))})`;
  let option: Option;
  if (type instanceof z.ZodBoolean) {
    option = flag.onOff ? new Option(`--${name} <on|off>`, help).choices(['on', 'off']) : new Option(`--${name}`, help);
  } else if (type instanceof z.ZodNumber) {
    option = new Option(`--${name} <${flag.arg ?? 'n'}>`, help).argParser(parseNumber(`--${name}`));
  } else if (type instanceof z.ZodEnum) {
    option = new Option(`--${name} <${name}>`, help).choices(type.options.map(String));
  } else if (type instanceof z.ZodArray) {
    const numbers = inner(type.element as z.ZodType) instanceof z.ZodNumber;
    option = new Option(`--${name} <${flag.arg ?? 'list'}>`, help).argParser((text: string) =>
      numbers ? parseList(text).map(parseNumber(`--${name}`)) : parseList(text),
    );
  } else {
    option = new Option(`--${name} <${flag.arg ?? 'value'}>`, help);
  }
  if (flag.required) option.makeOptionMandatory();
  return option;
}

/** The rollout's flags, as `retool rl` and `retool eval` both show them (fields of RolloutOptionsSchema). */
export const ROLLOUT_FLAGS = {
  topP: 'nucleus sampling: keep the smallest set of tokens holding this much probability',
  contextTokens: "prompt, response and interpreter outputs together at most (default: the model's context)",
  maxToolCalls: 'code executions per response at most',
  maxResponseTokens: { name: 'max-tokens', help: 'sampled tokens per response at most' },
  maxInterpreterTokens: 'tokens of one interpreter output at most (cut in the middle)',
  timeoutMs: 'wall-clock limit of one code run in the sandbox, ms',
  memoryMb: 'memory limit of one code run in the sandbox, MiB',
} satisfies Flags<typeof RolloutOptionsSchema>;

/** Adds one option per listed field of `schema`, in the order listed. */
export function addSchemaFlags<S extends z.ZodObject>(command: Command, schema: S, flags: Flags<S>): Command {
  for (const [key, flag] of Object.entries(flags) as [string, Flag | string][]) {
    const field = schema.shape[key] as z.ZodType | undefined;
    if (!field) throw new Error(`no field "${key}" in the schema behind --${kebab(key)}`);
    command.addOption(optionFor(key, field, specOf(flag)));
  }
  return command;
}

/**
 * The parsed options: the values of the listed flags the user gave, with `given` (values the
 * command decides itself), validated by `schema`. Errors name the flags.
 */
export function parseSchemaFlags<S extends z.ZodObject>(
  schema: S,
  opts: Record<string, unknown>,
  flags: Flags<S>,
  given: Partial<z.input<S>> = {},
): z.output<S> {
  const raw: Record<string, unknown> = { ...given };
  const flagOf: Record<string, string> = {};
  for (const [key, flag] of Object.entries(flags) as [string, Flag | string][]) {
    const spec = specOf(flag);
    const name = flagName(key, spec);
    flagOf[key] = `--${name}`;
    const value = opts[camel(name)];
    if (value === undefined) continue;
    raw[key] = spec.onOff ? value === 'on' : value;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const [head, ...rest] = issue.path.map(String);
    const where = head === undefined ? '(options)' : [flagOf[head] ?? head, ...rest].join('.');
    return `${where}: ${issue.message}`;
  });
  throw new BadInputError(`invalid options: ${lines.join('; ')}`);
}
