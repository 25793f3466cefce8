import { cpus } from 'node:os';
import { detectIsolation, type Isolation, type IsolationMode } from './isolation.js';
import { runNodeOnce } from './oneshot.js';
import { PythonPool } from './python-pool.js';
import { ExecRequestSchema, SandboxLimitsSchema, type ExecRequest, type ExecResult, type SandboxLimits } from './types.js';

export { renderForModel, truncateMiddle, cleanOutput, lastErrorLine } from './output.js';
export * from './types.js';
export { availableModes, detectIsolation, SandboxUnavailableError, type Isolation, type IsolationMode } from './isolation.js';

export interface SandboxOptions {
  /** Warm Python interpreters; default 2 x cores. */
  poolSize?: number;
  preload?: string[];
  lazyPreload?: string[];
  maxQueue?: number;
  /** Limits for runs that give none. */
  defaults?: Partial<SandboxLimits>;
  /** Isolation to use (default: the best this machine gives, or RETOOL_SANDBOX's). */
  isolation?: IsolationMode;
}

/** Runs untrusted code: Python through the warm fork-server pool, JavaScript one process per run. */
export class Sandbox {
  readonly isolation: Isolation;
  private readonly pool: PythonPool;
  private readonly defaults: SandboxLimits;

  constructor(opts: SandboxOptions = {}) {
    // Throws SandboxUnavailableError on a machine with no isolation: model code must not run there.
    this.isolation = detectIsolation(opts.isolation);
    this.defaults = SandboxLimitsSchema.parse(opts.defaults ?? {});
    this.pool = new PythonPool({
      isolation: this.isolation,
      size: opts.poolSize ?? 2 * cpus().length,
      preload: opts.preload,
      lazyPreload: opts.lazyPreload,
      maxQueue: opts.maxQueue,
    });
  }

  warm(): Promise<void> {
    return this.pool.warm();
  }

  async run(request: ExecRequest): Promise<ExecResult> {
    const req = ExecRequestSchema.parse(request);
    const limits = { ...this.defaults, ...req.limits };
    return req.lang === 'python'
      ? this.pool.run(req.code, req.stdin, limits, req.seed)
      : runNodeOnce(this.isolation, req.code, req.stdin, limits, req.seed);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
