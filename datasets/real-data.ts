/**
 * The real evaluation data shipped in this repository (datasets/real/, see its README.md), located
 * from this module so that a clone anywhere finds it: never an absolute path of one machine.
 */
import { fileURLToPath } from 'node:url';

/** The folder that holds the shipped files. */
export const REAL_DATA_DIR = fileURLToPath(new URL('./real/', import.meta.url));
/** The 30 AIME 2024 problems (`input`: problem in LaTeX, `output`: integer answer as a string). */
export const AIME24_FILE = fileURLToPath(new URL('./real/aime24.jsonl', import.meta.url));
/** The 30 AIME 2025 problems, same fields as AIME24_FILE. */
export const AIME25_FILE = fileURLToPath(new URL('./real/aime25.jsonl', import.meta.url));
/** The ReTool authors' evaluation-time rollout prompt (`{ "retool": "... {query} ..." }`). */
export const RETOOL_PROMPT_TEMPLATE_FILE = fileURLToPath(new URL('./real/retool_prompt_template.json', import.meta.url));
