import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rlCommand } from '../cli/commands/rl.js';
import { addSchemaFlags, parseSchemaFlags, type Flags } from '../cli/schema-flags.js';
import { BadInputError } from '../domain/errors.js';
import { RlOptionsSchema } from '../stages/options.js';

const Schema = z.object({
  steps: z.number().int().positive().default(20),
  algo: z.enum(['ppo', 'grpo']).default('grpo'),
  tools: z.boolean().default(true),
  resume: z.boolean().default(false),
  levels: z.array(z.number().int()).optional(),
  promptsPerStep: z.number().int().positive().default(16),
  runId: z.string().optional(),
});
const FLAGS = {
  steps: 'RL steps',
  algo: 'algorithm',
  tools: { help: 'the interpreter', onOff: true },
  resume: 'continue',
  levels: 'levels',
  promptsPerStep: { name: 'prompts', help: 'problems per step' },
  runId: { help: 'name', arg: 'id' },
} satisfies Flags<typeof Schema>;

function parse(argv: string[]) {
  const command = addSchemaFlags(new Command('t').exitOverride().configureOutput({ writeErr: () => {} }), Schema, FLAGS);
  command.parse(argv, { from: 'user' });
  return parseSchemaFlags(Schema, command.opts(), FLAGS);
}

describe('flags derived from a stage schema', () => {
  it('leaves what the user did not give to the schema, and converts what they gave', () => {
    expect(parse([])).toEqual(Schema.parse({}));
    expect(
      parse(['--steps', '3', '--algo', 'ppo', '--tools', 'off', '--resume', '--levels', '3,4', '--prompts', '2', '--run-id', 'r1']),
    ).toEqual({
      steps: 3,
      algo: 'ppo',
      tools: false,
      resume: true,
      levels: [3, 4],
      promptsPerStep: 2,
      runId: 'r1',
    });
  });

  it('names the flag the user typed when the schema refuses a value', () => {
    expect(() => parse(['--prompts', '0'])).toThrow(BadInputError);
    expect(() => parse(['--prompts', '0'])).toThrow(/--prompts: /);
    expect(() => parse(['--steps', '2.5'])).toThrow(/--steps: .*int/);
    expect(() => parse(['--steps', 'many'])).toThrow(/--steps must be a number, got "many"/);
    expect(() => parse(['--algo', 'dpo'])).toThrow(/Allowed choices are ppo, grpo/);
  });

  it('refuses a flag for a field the schema does not have', () => {
    expect(() => addSchemaFlags(new Command('t'), Schema, { nope: 'x' } as Flags<typeof Schema>)).toThrow(/no field "nope"/);
  });

  it('retool rl shows each default of the RL stage schema in --help', () => {
    const help = rlCommand((c) => c)
      .helpInformation()
      .replace(/\s+/g, ' ');
    const defaults = RlOptionsSchema.parse({ model: 'm', dataset: 'd', out: 'o' });
    expect(help).toContain(`--steps <n> RL steps (default: ${defaults.steps})`);
    expect(help).toContain(`(default: ${defaults.algo})`);
    expect(help).toContain(`--lr <n> policy learning rate (default: ${defaults.lr})`);
    expect(help).toContain(`--timeout-ms <n> wall-clock limit of one code run in the sandbox, ms (default: ${defaults.timeoutMs})`);
  });
});
