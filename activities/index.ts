import { createDataActivities, type DataActivityOptions } from './data.js';
import { createPipelineActivities } from './pipeline.js';
import { createStageActivities } from './stages.js';

export type ActivityOptions = DataActivityOptions;

/** Every activity the worker registers, bound to one store. */
export function createActivities(options: ActivityOptions = {}) {
  return { ...createDataActivities(options), ...createStageActivities(options), ...createPipelineActivities(options) };
}

export type Activities = ReturnType<typeof createActivities>;
