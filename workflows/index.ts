// The workflow bundle's entry: every workflow the worker registers.
export { prepareDataWorkflow, prepareDataProgress } from './prepare-data.js';
export { retoolPipeline, pipelineProgress } from './pipeline.js';
export { retoolRl, rlProgress } from './rl-rounds.js';
export { retoolExperiment, experimentProgress } from './experiment.js';
