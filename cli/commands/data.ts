import { Command, Option } from 'commander';
import { BadInputError, describeZodError } from '../../domain/errors.js';
import type { DatasetInfo } from '../../datasets/schemas.js';
import { ImportOptionsSchema } from '../../datasets/import-options.js';
import { FAMILIES } from '../../domain/synth/index.js';
import { emit, parseList, parseNumber, progressBar, runTraceVerification, table, type CommonOptions } from '../output.js';
import { PRESETS } from '../../workflows/config.js';
import { addSchemaFlags, parseSchemaFlags, type Flags } from '../schema-flags.js';
import { loadConfig, runWithProgress } from './run.js';

// The store (DuckDB) and what reads and writes it load in the actions, not when the CLI starts.
const loadStore = () => import('../../datasets/store.js');

type Opts = CommonOptions & Record<string, unknown>;

function describe(d: DatasetInfo): string {
  const splits = Object.entries(d.splits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const parents = d.parents.map((p) => `${p.name}@${p.version} (${p.relation})`).join(', ');
  return `${d.name}@${d.version}: ${d.rowCount} ${d.kind} [${splits}] from ${d.source}${parents ? `, derived from ${parents}` : ''}`;
}

/** `retool data import`'s flags: fields of the import's schema, which holds their types and defaults. */
const IMPORT_FLAGS = {
  name: { help: 'dataset name', arg: 'name', required: true },
  problemField: { help: 'field holding the problem text', arg: 'field' },
  answerField: { help: 'field holding the ground-truth answer', arg: 'field' },
  idField: { help: 'field holding a unique id (default: "id" if present, else a hash)', arg: 'field' },
  splitField: { help: 'field holding train/test (default: "split" if present)', arg: 'field' },
  split: 'put every row in this split',
  format: 'override the format the extension implies',
  newVersion: 'add a version when the name exists',
} satisfies Flags<typeof ImportOptionsSchema>;

/** `retool data import FILE --kind traces`: every row verified in the sandbox, then stored (all or none). */
async function importTraceFile(file: string, opts: Opts): Promise<void> {
  if (opts.retrain)
    throw new BadInputError('--retrain retrains on problems; import traces without it and name them in `retool sft --dataset`');
  if (opts.split || opts.splitField || opts.problemField)
    throw new BadInputError('--kind traces takes the problem from the user turn: --split, --split-field and --problem-field do not apply');
  const { TraceImportOptionsSchema } = await import('../../datasets/trace-import.js');
  const parsed = TraceImportOptionsSchema.safeParse({
    file,
    name: opts.name,
    messagesField: opts.messagesField,
    answerField: opts.answerField,
    idField: opts.idField,
    format: opts.format,
    limit: opts.limit,
    newVersion: opts.newVersion,
  });
  if (!parsed.success) throw new BadInputError(`retool data import --kind traces: ${describeZodError(parsed.error)}`);
  const { withStore } = await loadStore();
  const { importTraces } = await import('../../stages/import-traces.js');
  await runTraceVerification(
    opts,
    'verify',
    (sandbox, onProgress) => withStore(opts.home, (store) => importTraces(store, sandbox, parsed.data, onProgress)),
    (s) =>
      `${s.dataset}: kept ${s.kept} of ${s.rows} traces from ${s.file} (${s.graded} with a gold answer, ${s.codeTraces} with code; ${s.seconds.toFixed(1)} s)`,
  );
}

export function dataCommand(common: (cmd: Command) => Command): Command {
  const data = new Command('data').description('the DuckDB dataset store: import, export, list, show, synthesise, split');
  addSchemaFlags(
    common(data.command('import').argument('<file>', 'a .jsonl, .json, .csv or .parquet file')).description(
      "import problems, or traces (--kind traces: conversation rows, verified like the cold start's), with DuckDB's readers (all rows or none)",
    ),
    ImportOptionsSchema,
    IMPORT_FLAGS,
  )
    .addOption(
      new Option('--kind <kind>', 'problems, or traces: rows of messages (system, user, assistant with <code>/<interpreter>)')
        .choices(['problems', 'traces'])
        .default('problems'),
    )
    .option('--messages-field <field>', 'with --kind traces: the field holding the messages', 'messages')
    .option('--limit <n>', 'with --kind traces: the first N rows only', parseNumber('--limit'))
    .option('--retrain', 'then retrain on it: a pipeline run from the latest good model (splits an unsplit file 80/20)', false)
    .addOption(new Option('--preset <name>', "with --retrain: the run's settings").choices(Object.keys(PRESETS)))
    .option('--config <file>', 'with --retrain: a JSON file of settings laid over the preset')
    .option('--detach', 'with --retrain: start the run and return', false)
    .option('--task-queue <queue>', 'with --retrain: the task queue to run on')
    .option('--workers <n>', 'with --retrain: worker processes while it waits', parseNumber('--workers'), 1)
    .action(async (file: string, opts: Opts) => {
      if (opts.kind === 'traces') return importTraceFile(file, opts);
      const options = parseSchemaFlags(ImportOptionsSchema, opts, IMPORT_FLAGS, { file });
      const { withStore } = await loadStore();
      if (opts.retrain) {
        const config = loadConfig(opts.preset as string | undefined, opts.config as string | undefined);
        const { prepareData } = await import('../../datasets/prepare.js');
        const imported = await withStore(opts.home, (store) => prepareData(store, { ...options, source: 'import' }));
        if (!opts.json) process.stderr.write(`imported ${describe(imported.dataset)}; retraining on it\n`);
        await runWithProgress(
          { ...config, data: { source: 'stored', name: imported.dataset.name, version: imported.dataset.version }, startFrom: 'latest' },
          opts,
        );
        return;
      }
      const { importProblems } = await import('../../datasets/problems-io.js');
      const result = await withStore(opts.home, (store) => importProblems(store, options));
      emit(
        opts,
        result,
        () =>
          `imported ${describe(result.dataset)}${result.duplicateProblems ? ` (${result.duplicateProblems} duplicate problem texts)` : ''}`,
      );
    });

  common(data.command('export').argument('<dataset>', 'NAME[@VERSION][:train|test]'))
    .description('write a dataset to .parquet or .jsonl (readable by pandas and HF datasets)')
    .requiredOption('--out <file>', 'output file (.parquet or .jsonl)')
    .action(async (ref: string, opts: Opts) => {
      const { withStore } = await loadStore();
      const { exportProblems } = await import('../../datasets/problems-io.js');
      const result = await withStore(opts.home, (store) => exportProblems(store, ref, opts.out as string));
      emit(opts, result, () => `wrote ${result.rows} rows of ${result.dataset.name}@${result.dataset.version} to ${result.file}`);
    });

  common(data.command('list'))
    .description('datasets with versions, sizes, splits and lineage')
    .action(async (opts: Opts) => {
      const { withStore } = await loadStore();
      const { listDatasets } = await import('../../datasets/registry.js');
      const datasets = await withStore(opts.home, (store) => listDatasets(store));
      emit(opts, datasets, () =>
        datasets.length === 0
          ? 'no datasets yet: retool data import FILE --name NAME, or retool data synth --name NAME --count N --seed S'
          : table(
              datasets.map((d) => ({
                dataset: `${d.name}@${d.version}`,
                kind: d.kind,
                rows: d.rowCount,
                splits: Object.entries(d.splits)
                  .map(([k, v]) => `${k}:${v}`)
                  .join(' '),
                source: d.source,
                parents: d.parents.map((p) => `${p.name}@${p.version}`).join(' '),
                created: d.createdAt,
              })),
              ['dataset', 'kind', 'rows', 'splits', 'source', 'parents', 'created'],
            ),
      );
    });

  common(data.command('show').argument('<dataset>', 'NAME[@VERSION][:train|test]'))
    .description('rows of a dataset')
    .option('--limit <n>', 'rows to show', parseNumber('--limit'), 10)
    .option('--offset <n>', 'rows to skip', parseNumber('--offset'), 0)
    .action(async (ref: string, opts: Opts) => {
      const { withStore } = await loadStore();
      const { readDatasetRows } = await import('../../datasets/show.js');
      const shown = await withStore(opts.home, (store) => readDatasetRows(store, ref, opts.limit as number, opts.offset as number));
      const columns = {
        problems: ['id', 'split', 'family', 'level', 'answer', 'problem'],
        traces: ['problemId', 'verified', 'rejectReason', 'problem', 'response'],
        evaluations: ['id', 'sample', 'correct', 'answer', 'response'],
      }[shown.dataset.kind as 'problems'] ?? ['id'];
      emit(opts, shown, () => `${describe(shown.dataset)}\n\n${table(shown.rows as Record<string, unknown>[], columns)}`);
    });

  common(data.command('synth'))
    .description("generate synthetic problems with exact answers (the built-in model's world)")
    .requiredOption('--name <name>', 'dataset name')
    .requiredOption('--count <n>', 'number of problems', parseNumber('--count'))
    .requiredOption('--seed <n>', 'random seed', parseNumber('--seed'))
    .option('--families <list>', `comma-separated subset of: ${FAMILIES.join(', ')}`, parseList)
    .option('--levels <list>', 'comma-separated difficulty levels 1-4', (t: string) => parseList(t).map(parseNumber('--levels')))
    .option('--test-fraction <f>', 'share of problems in the test split', parseNumber('--test-fraction'), 0.2)
    .option('--new-version', 'add a version when the name exists', false)
    .option('--via-temporal', 'run as the prepareData workflow on Temporal (visible in the UI)', false)
    .action(async (opts: Opts) => {
      const spec = {
        name: opts.name as string,
        count: opts.count as number,
        seed: opts.seed as number,
        families: opts.families as (typeof FAMILIES)[number][] | undefined,
        levels: opts.levels as number[] | undefined,
        testFraction: opts.testFraction as number,
        newVersion: Boolean(opts.newVersion),
      };
      for (const f of spec.families ?? []) {
        if (!(FAMILIES as readonly string[]).includes(f))
          throw new BadInputError(`--families: unknown family "${f}" (known: ${FAMILIES.join(', ')})`);
      }
      if (opts.viaTemporal) {
        const { prepareViaTemporal } = await import('../local-temporal.js');
        const result = await prepareViaTemporal(
          { source: 'synth', ...spec },
          {
            home: opts.home,
            onStarted: (id, url) => !opts.json && process.stderr.write(`started workflow ${id}${url ? `: ${url}` : ''}\n`),
          },
        );
        emit(
          opts,
          result,
          () => `synthesised ${describe(result.dataset)}\nworkflow ${result.workflowId}${result.uiUrl ? `: ${result.uiUrl}` : ''}`,
        );
        return;
      }
      const { withStore } = await loadStore();
      const { synthesizeDataset } = await import('../../datasets/derive.js');
      const bar = progressBar(opts, 'synth');
      const dataset = await withStore(opts.home, (store) => synthesizeDataset(store, spec, bar.update)).finally(bar.stop);
      emit(opts, dataset, () => `synthesised ${describe(dataset)}`);
    });

  common(data.command('split').argument('<dataset>', 'NAME[@VERSION]'))
    .description('assign train/test by a hash of the problem text, as a new version')
    .option('--test-fraction <f>', 'share of problems in the test split', parseNumber('--test-fraction'), 0.2)
    .action(async (ref: string, opts: Opts) => {
      const { withStore } = await loadStore();
      const { splitDataset } = await import('../../datasets/derive.js');
      const dataset = await withStore(opts.home, (store) =>
        splitDataset(store, { dataset: ref, testFraction: opts.testFraction as number }),
      );
      emit(opts, dataset, () => `split ${describe(dataset)}`);
    });

  return data;
}
