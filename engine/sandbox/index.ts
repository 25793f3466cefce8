import { cpus } from 'node:os';
import { detectIsolation, type Isolation } from './isolation.js';
import { runNodeOnce } from './oneshot.js';
import { PythonPool } from './python-pool.js';
import { ExecRequestSchema, SandboxLimitsSchema, type ExecRequest, type ExecResult, type SandboxLimits } from './types.js';

export { renderForModel, truncateMiddle, cleanOutput, lastErrorLine } from './output.js';
export * from './types.js';
export { detectIsolation } from './isolation.js';

export interface SandboxOptions {
  /** Warm Python interpreters; default 2 x cores. */
  poolSize?: number;
  preload?: string[];
  lazyPreload?: string[];
  maxQueue?: number;
  /** Limits for runs that give none. */
  defaults?: Partial<SandboxLimits>;
  /** Called once with what isolation is missing (default: a warning on stderr). */
  warn?: (message: string) => void;
}

/** Runs untrusted code: Python through the warm fork-server pool, JavaScript one process per run. */
export class Sandbox {
  readonly isolation: Isolation;
  private readonly pool: PythonPool;
  private readonly defaults: SandboxLimits;

  constructor(opts: SandboxOptions = {}) {
    this.isolation = detectIsolation();
    if (this.isolation.missing.length > 0) {
      (opts.warn ?? ((m: string) => process.stderr.write(`${m}\n`)))(`WARNING: the code sandbox runs without isolation: ${this.isolation.missing.join('; ')}`);
    }
    this.defaults = SandboxLimitsSchema.parse(opts.defaults ?? {});
    this.pool = new PythonPool({ size: opts.poolSize ?? 2 * cpus().length, preload: opts.preload, lazyPreload: opts.lazyPreload, maxQueue: opts.maxQueue });
  }

  warm(): Promise<void> {
    return this.pool.warm();
  }

  async run(request: ExecRequest): Promise<ExecResult> {
    const req = ExecRequestSchema.parse(request);
    const limits = { ...this.defaults, ...req.limits };
    return req.lang === 'python' ? this.pool.run(req.code, req.stdin, limits) : runNodeOnce(req.code, req.stdin, limits);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
