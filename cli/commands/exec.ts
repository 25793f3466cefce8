import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import type { Language } from '../../engine/sandbox/index.js';
import { emit, parseNumber, type CommonOptions } from '../output.js';

type ExecOptions = CommonOptions & { lang: Language; timeoutMs?: number; memoryMb?: number; stdinFile?: string; renderBytes: number };

export function execCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('exec'))
    .description('run code from stdin in the sandbox and print the result (exit 0 only when it ran ok)')
    .addOption(new Option('--lang <lang>', 'language').choices(['python', 'javascript']).default('python'))
    .option('--timeout-ms <n>', 'wall-clock limit', parseNumber('--timeout-ms'))
    .option('--memory-mb <n>', 'memory limit', parseNumber('--memory-mb'))
    .option('--stdin-file <file>', 'file fed to the program as its stdin')
    .option('--render-bytes <n>', 'size of the model-facing rendering', parseNumber('--render-bytes'), 1024)
    .action(async (opts: ExecOptions) => {
      const code = readFileSync(0, 'utf8');
      let stdin = '';
      if (opts.stdinFile) {
        try {
          stdin = readFileSync(opts.stdinFile, 'utf8');
        } catch (err) {
          throw new BadInputError(`--stdin-file ${opts.stdinFile}: ${(err as Error).message}`);
        }
      }
      const { Sandbox, renderForModel } = await import('../../engine/sandbox/index.js');
      const sandbox = new Sandbox({ poolSize: 1 });
      try {
        const limits = { ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.memoryMb ? { memoryMb: opts.memoryMb } : {}) };
        const result = await sandbox.run({ lang: opts.lang, code, stdin, limits });
        const rendered = renderForModel(result, opts.renderBytes);
        emit(opts, { ...result, rendered, isolation: sandbox.isolation.mode }, () => {
          if (result.stderr) process.stderr.write(result.stderr.endsWith('\n') ? result.stderr : `${result.stderr}\n`);
          const tail =
            result.status === 'ok'
              ? ''
              : `\n[${result.status}${result.reason ? `: ${result.reason}` : ''}${result.exitCode !== null ? `, exit ${result.exitCode}` : ''}]`;
          return `${result.stdout.replace(/\n$/, '')}${tail}`;
        });
        if (result.status !== 'ok') process.exitCode = 1;
      } finally {
        await sandbox.close();
      }
    });
}
