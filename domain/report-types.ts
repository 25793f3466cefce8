// What a run report shows, gathered from the store by datasets/report-data.ts and rendered by
// engine/report (no store or Temporal access here).

/** One arm of a run: the tool-integrated ReTool arm, or the text-only baseline. */
export interface ReportArm {
  /** "ReTool (code)" or "text-only". */
  name: string;
  tools: boolean;
  /** Workflow or run id the arm's rows belong to. */
  runId: string;
  /** Held-out accuracy (0..1) of the SFT model, before RL; null when not evaluated. */
  sftAccuracy: number | null;
  /** Held-out accuracy after RL (final evaluation); null while the run is not finished. */
  finalAccuracy: number | null;
  /** Final accuracy per difficulty level ("1".."4"). */
  byLevel: Record<string, number>;
  rlSteps: number;
  /** Periodic held-out evaluation during RL (step 0 = the SFT model): the paper's Fig. 1 curve. */
  accuracyCurve: { step: number; accuracy: number }[];
  /**
   * Behaviour over training from the periodic greedy evaluations (paper Fig. 3): per step,
   * metric name -> value. Names used: response_length, code_ratio, code_invocation_position.
   */
  evalBehaviour: { step: number; values: Record<string, number> }[];
  /**
   * Per RL step training statistics (sampled rollouts): reward_mean, accuracy, response_length,
   * code_ratio, tool_calls, entropy, kl, ... (any subset).
   */
  trainBehaviour: { step: number; values: Record<string, number> }[];
}

/** One stored evaluation of an arm's model: the paper's table row (accuracy and behaviour). */
export interface ReportEvaluation {
  arm: string;
  /** Which model: the base (zero-shot), after cold-start SFT, or the final one (after RL). */
  model: 'base' | 'sft' | 'final';
  /** `held-out` (the run's own test split) or a benchmark name such as aime24. */
  set: string;
  evaluation: string;
  tools: boolean;
  k: number;
  temperature: number;
  problems: number;
  avgAtK: number;
  passAtK: number;
  /** avg@k per difficulty level, with its problem count. */
  byLevel: Record<string, { avgAtK: number; problems: number }>;
  responseLength: number | null;
  codeRatio: number | null;
  codeInvocationPosition: number | null;
  codePassRate: number | null;
  /** Lines per code block, blocks that ran without error (the paper's "correct code"), and the share of correct responses that fixed a failing block. */
  codeLines: number | null;
  passingCodeBlocks: number | null;
  selfCorrectionRate: number | null;
  /** Code blocks by purpose over the set (engine/eval/code-purpose.ts); empty for evaluations stored before it. */
  codePurposes: Record<string, number>;
}

/** Problems the final model answers right and the SFT model wrong (gained), and the reverse (lost). */
export interface PairedChange {
  arm: string;
  set: string;
  problems: number;
  gained: number;
  lost: number;
}

export interface LineageEntry {
  kind: 'dataset' | 'traces' | 'checkpoint' | 'model' | 'evaluation';
  name: string;
  /** e.g. "12000 rows", "step 40", "accuracy 55.7%". */
  detail: string;
  /** Names of what this was made from. */
  from: string[];
}

export interface SampleTrajectory {
  arm: string;
  problemId: string;
  problem: string;
  expected: string;
  answer: string | null;
  correct: boolean;
  /** role: prompt | model | interpreter; interpreter text is the code's output. */
  turns: { role: string; text: string }[];
}

export interface ReportData {
  title: string;
  runId: string;
  /** ISO time the report was made. */
  createdAt: string;
  status: string;
  preset: string | null;
  config: unknown;
  arms: ReportArm[];
  evaluations: ReportEvaluation[];
  /** RL's effect on each arm's answers per evaluated set, paired problem by problem (McNemar's test). */
  rlVsSft: PairedChange[];
  lineage: LineageEntry[];
  samples: SampleTrajectory[];
  /** Wall-clock seconds per stage when known. */
  stageSeconds: Record<string, number>;
  /** Isolation modes the run's model code ran under (from its RL and evaluation runs). */
  sandbox: string[];
  /** Tensor backends its stages computed on, e.g. "node (TensorFlow 2.12.1, cpu, 2 threads)". */
  backends: string[];
}
