// What a teacher is: given problems, it writes reasoning traces, either text-only or
// code-integrated (code blocks followed by the sandbox's real output). A teacher may be wrong:
// verification, not the teacher, decides what is kept.
import type { z } from 'zod';
import type { TraceModeSchema } from './options.js';

export type TraceMode = z.infer<typeof TraceModeSchema>;

export interface TeacherProblem {
  id: string;
  problem: string;
  answer: string;
  family: string | null;
  level: number | null;
}

/** The defects the built-in teacher seeds on purpose, recorded so verification can be audited. */
export const SEEDED_DEFECTS = ['malformed_tags', 'syntax_error', 'wrong_code', 'wrong_answer'] as const;
export type SeededDefect = (typeof SEEDED_DEFECTS)[number];

export interface TeacherTrace {
  problemId: string;
  mode: TraceMode;
  teacher: string;
  /** The model's turn: reasoning, code blocks with their interpreter output, the final answer. */
  response: string;
  /** Set by a teacher that knows it made a mistake on purpose (the built-in one). */
  seededDefect: SeededDefect | null;
  selfCorrection: boolean;
  /** How the trace goes about the problem, where the teacher chose (the built-in `paper` style). */
  strategy?: string;
}

/** A trace the teacher could not write at all (request failed, family unknown, ...). */
export interface TeacherFailure {
  problemId: string;
  error: string;
}

export interface Teacher {
  readonly name: string;
  write(problem: TeacherProblem, mode: TraceMode): Promise<TeacherTrace | TeacherFailure>;
  close?(): Promise<void>;
}

export function isFailure(t: TeacherTrace | TeacherFailure): t is TeacherFailure {
  return 'error' in t;
}
