/** How often a child says it is alive; a silence much longer than this means its thread is busy or stuck. */
export const ALIVE_INTERVAL_MS = 1000;
/** How often the worker heartbeats a running activity (the SDK throttles what reaches the server). */
export const HEARTBEAT_INTERVAL_MS = 2000;
/**
 * A child silent for longer than max(this floor, STALL_FACTOR x its longest silence since its
 * first step) is stuck: a kernel that never returns, a deadlock, a stopped process. The floor
 * covers loading the model and the first step; the factor lets a model whose steps take minutes
 * keep training.
 */
export const DEFAULT_STALL_FLOOR_MS = 5 * 60_000;
export const STALL_FACTOR = 10;
/** Added to the worker's nice value for its stage processes: below the worker, the server and interactive commands. */
export const STAGE_NICENESS = 10;
