import { Context } from '@temporalio/activity';
import { prepareData, type PrepareDataInput, type PrepareDataResult } from '../datasets/prepare.js';
import { withStore } from '../datasets/store.js';
import { guarded } from './failures.js';

export interface DataActivityOptions {
  /** The store's folder (RETOOL_HOME); the worker's default when absent. */
  home?: string;
}

export function createDataActivities({ home }: DataActivityOptions = {}) {
  return {
    /** Import or synthesise, then split. Retries are safe: the workflow id makes it idempotent. */
    async prepareData(input: PrepareDataInput): Promise<PrepareDataResult> {
      const ctx = Context.current();
      const run = ctx.info.workflowExecution;
      const requestId = input.requestId ?? (run ? `${run.workflowId}/${run.runId}` : ctx.info.activityId);
      ctx.heartbeat({ phase: 'start' });
      return guarded(() =>
        withStore(home, (store) =>
          prepareData(store, { ...input, requestId }, (done, total) => ctx.heartbeat({ phase: 'write', done, total })),
        ),
      );
    },
  };
}

export type DataActivities = ReturnType<typeof createDataActivities>;
