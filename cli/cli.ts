import { Command, CommanderError } from 'commander';
import { artifactsCommand } from './commands/artifacts.js';
import { benchCommand } from './commands/bench.js';
import { dataCommand } from './commands/data.js';
import { execCommand } from './commands/exec.js';
import { gradeCommand } from './commands/grade.js';
import { modelCommand } from './commands/model.js';
import { controlCommand, reportCommand, runCommand, statusCommand } from './commands/run.js';
import { scheduleCommand } from './commands/schedule.js';
import { serverCommand, workerCommand } from './commands/temporal.js';
import { rlCommand } from './commands/rl.js';
import { serveCommand } from './commands/serve.js';
import { evalCommand, sftCommand, synthCommand } from './commands/train.js';
import { withBackendOption } from './backend-option.js';
import { reportError } from './output.js';

/** Every command takes --json and --home; options are read merged with the program's. */
function common(cmd: Command): Command {
  return cmd.option('--json', 'machine-readable output', false).option('--home <dir>', 'state folder (default: RETOOL_HOME or ./.retool)');
}

const program = new Command('retool')
  .description('ReTool on Temporal: data, sandbox, model, SFT, RL and evaluation as durable workflows')
  .showHelpAfterError()
  .exitOverride();

for (const cmd of [
  runCommand(common),
  statusCommand(common),
  controlCommand(common, 'pause'),
  controlCommand(common, 'resume'),
  controlCommand(common, 'stop'),
  reportCommand(common),
  scheduleCommand(common),
  serverCommand(common),
  workerCommand(common),
  dataCommand(common),
  synthCommand(common),
  sftCommand(common),
  rlCommand(common),
  evalCommand(common),
  execCommand(common),
  modelCommand(common),
  serveCommand(common),
  artifactsCommand(common),
  gradeCommand(common),
  benchCommand(common),
]) {
  program.addCommand(cmd);
}

/** The commands that compute with tensors, here or in the workers they start. */
const COMPUTING = [
  'run',
  'worker',
  'sft',
  'rl',
  'eval',
  'model init',
  'model logits',
  'model generate',
  'model backend',
  'model merge',
  'serve',
  'bench stages',
  'bench rl',
  'bench serve',
];
for (const path of COMPUTING) {
  const found = path.split(' ').reduce<Command | undefined>((cmd, name) => cmd?.commands.find((c) => c.name() === name), program);
  if (!found) throw new Error(`cli.ts: no command "${path}" to give --backend`);
  withBackendOption(found);
}

try {
  await program.parseAsync(process.argv);
  // stdout to a pipe is asynchronous: exiting before it drains would cut long --json output.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  // Temporal's native runtime and DuckDB keep handles; a finished command should not linger.
  process.exit(process.exitCode ?? 0);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.exit(reportError(err));
}
