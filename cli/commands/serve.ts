import { Command } from 'commander';
import { BadInputError } from '../../domain/errors.js';
import { emit, parseNumber, type CommonOptions } from '../output.js';

interface ServeFlags extends CommonOptions {
  model: string;
  adapter?: string;
  host: string;
  port: number;
  maxBatch: number;
  name?: string;
  maxTokens: number;
}

export function serveCommand(common: (cmd: Command) => Command): Command {
  return common(new Command('serve'))
    .description('an OpenAI-compatible server for a model: /v1/models, /v1/chat/completions, /v1/completions (streaming too)')
    .requiredOption('--model <dir>', 'model directory (or a LoRA adapter directory)')
    .option('--adapter <dir>', 'a LoRA adapter to put on --model')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', parseNumber('--port'), 8000)
    .option('--max-batch <n>', 'requests decoded together at most', parseNumber('--max-batch'), 8)
    .option('--max-tokens <n>', 'reply length when a request names none', parseNumber('--max-tokens'), 256)
    .option('--name <name>', 'the model name /v1/models lists (default: the directory name)')
    .action(async (opts: ServeFlags) => {
      const { basename, resolve } = await import('node:path');
      const { backendLabel, initBackend } = await import('../../engine/tensor/backend.js');
      const { openModel, attachAdapterDir } = await import('../../engine/model/checkpoint.js');
      const { OpenAiServer } = await import('../../engine/serve/server.js');
      const { Sandbox } = await import('../../engine/sandbox/index.js');
      await initBackend();
      // The sandbox starts before the model loads: a process holding a real model's gigabytes may
      // no longer be allowed to fork (ENOMEM).
      let sandbox: InstanceType<typeof Sandbox> | null = null;
      try {
        sandbox = new Sandbox();
        await sandbox.warm();
      } catch (err) {
        process.stderr.write(`retool serve: tools_in_sandbox is off: ${(err as Error).message}\n`);
        await sandbox?.close();
        sandbox = null;
      }
      const { model, tokenizer } = openModel(opts.model);
      if (!tokenizer) throw new BadInputError(`${opts.model}: no tokenizer.json, so requests cannot be encoded`);
      if (opts.adapter) {
        try {
          attachAdapterDir(model, opts.adapter);
        } catch (err) {
          throw new BadInputError(`--adapter: ${(err as Error).message}`);
        }
      }
      const name = opts.name ?? basename(resolve(opts.adapter ?? opts.model));
      const server = new OpenAiServer({
        model,
        tokenizer,
        modelName: name,
        host: opts.host,
        port: opts.port,
        maxBatch: opts.maxBatch,
        defaultMaxTokens: opts.maxTokens,
        sandbox,
      });
      const address = await server.listen();
      const url = `http://${address.address}:${address.port}/v1`;
      emit(opts, { url, model: name, backend: backendLabel() }, () => `serving ${name} at ${url} [backend ${backendLabel()}]`);
      await new Promise<void>((done) => {
        const stop = () => void server.close().then(done);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      model.dispose();
    });
}
