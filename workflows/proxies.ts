// Activity proxies shared by the pipeline workflows: short bookkeeping steps, and long training
// stages that heartbeat (a silent worker is replaced after `heartbeatTimeout`) and whose
// cancellation waits for the activity to reach a step boundary and save its checkpoint.
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { BAD_INPUT } from '../domain/errors.js';

const retry = { maximumAttempts: 5, nonRetryableErrorTypes: [BAD_INPUT] };

export function activitiesFor(heartbeatTimeout: string) {
  return {
    brief: proxyActivities<Activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: '5 minutes', retry }),
    long: proxyActivities<Activities>({
      startToCloseTimeout: '7 days',
      heartbeatTimeout: heartbeatTimeout as '10 minutes',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry,
    }),
  };
}
