import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { BAD_INPUT } from '../domain/errors.js';
import type { PrepareDataInput, PrepareDataResult } from '../datasets/prepare.js';
import { RetoolDataset, RetoolStage } from './search-attributes.js';

export interface PrepareDataProgress {
  stage: 'prepare-data' | 'done' | 'failed';
  dataset: string;
  result?: PrepareDataResult;
}

export const prepareDataProgress = defineQuery<PrepareDataProgress>('progress');

const { prepareData } = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: [BAD_INPUT] },
  summary: 'import or synthesise problems, then split train/test',
});

/** Stage 0 of the pipeline: a named, versioned problem set in the store, split into train and test. */
export async function prepareDataWorkflow(input: PrepareDataInput): Promise<PrepareDataResult> {
  const progress: PrepareDataProgress = { stage: 'prepare-data', dataset: input.name };
  setHandler(prepareDataProgress, () => progress);
  upsertSearchAttributes([
    { key: RetoolStage, value: 'prepare-data' },
    { key: RetoolDataset, value: input.name },
  ]);
  try {
    progress.result = await prepareData(input);
  } catch (err) {
    progress.stage = 'failed';
    upsertSearchAttributes([{ key: RetoolStage, value: 'failed' }]);
    throw err;
  }
  progress.stage = 'done';
  upsertSearchAttributes([{ key: RetoolStage, value: 'done' }]);
  return progress.result;
}
