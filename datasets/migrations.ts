/**
 * Schema migrations of the DuckDB store, applied in order inside one transaction each.
 * Append new migrations; never edit one that has shipped (stores in the wild already ran it).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE SEQUENCE dataset_id_seq START 1;
      CREATE TABLE datasets (
        id INTEGER PRIMARY KEY DEFAULT nextval('dataset_id_seq'),
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        params JSON,
        row_count BIGINT NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        UNIQUE (name, version)
      );
      -- Lineage: which datasets a derived dataset was made from, and how.
      CREATE TABLE dataset_parents (
        child_id INTEGER NOT NULL,
        parent_id INTEGER NOT NULL,
        relation VARCHAR NOT NULL,
        PRIMARY KEY (child_id, parent_id)
      );
      -- Bulk tables carry no index: DuckDB's zone maps on dataset_id serve the lookups, and
      -- an ART index would halve import speed.
      CREATE TABLE problems (
        dataset_id INTEGER NOT NULL,
        row_idx BIGINT NOT NULL,
        id VARCHAR NOT NULL,
        problem VARCHAR NOT NULL,
        answer VARCHAR NOT NULL,
        family VARCHAR,
        level INTEGER,
        split VARCHAR,
        extra JSON
      );
      -- Reasoning traces (cold-start data): text, and segments with their roles.
      CREATE TABLE traces (
        dataset_id INTEGER NOT NULL,
        row_idx BIGINT NOT NULL,
        problem_id VARCHAR NOT NULL,
        mode VARCHAR NOT NULL,            -- code | text
        teacher VARCHAR,
        text VARCHAR NOT NULL,
        segments JSON,                    -- [{role: prompt|model|interpreter, text}]
        verified BOOLEAN NOT NULL,
        reject_reason VARCHAR,
        answer VARCHAR
      );
      CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        workflow_id VARCHAR,
        kind VARCHAR NOT NULL,            -- pipeline | experiment | sft | rl | eval | synth
        preset VARCHAR,
        config JSON,
        status VARCHAR NOT NULL,
        backend VARCHAR,
        started_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        finished_at TIMESTAMPTZ,
        summary JSON
      );
      -- One row per trajectory, turns included.
      CREATE TABLE rollouts (
        run_id VARCHAR NOT NULL,
        step INTEGER NOT NULL,
        sample_idx INTEGER NOT NULL,
        problem_id VARCHAR NOT NULL,
        response VARCHAR NOT NULL,
        turns JSON,
        answer VARCHAR,
        reward DOUBLE,
        correct BOOLEAN,
        tool_calls INTEGER,
        response_tokens INTEGER,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
      );
      CREATE TABLE evaluations (
        run_id VARCHAR NOT NULL,
        eval_id VARCHAR NOT NULL,
        step INTEGER,
        dataset_id INTEGER,
        problem_id VARCHAR NOT NULL,
        sample_idx INTEGER NOT NULL,
        tools BOOLEAN NOT NULL,
        response VARCHAR NOT NULL,
        answer VARCHAR,
        correct BOOLEAN NOT NULL,
        metrics JSON,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
      );
      CREATE TABLE metrics (
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        step INTEGER NOT NULL,
        name VARCHAR NOT NULL,
        value DOUBLE,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
      );
      CREATE TABLE checkpoints (
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        step INTEGER NOT NULL,
        path VARCHAR NOT NULL,
        metrics JSON,
        good BOOLEAN NOT NULL DEFAULT true,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (run_id, stage, step)
      );
    `,
  },
  {
    version: 2,
    name: 'trace provenance',
    sql: `
      -- What a trace answers and how its verification went, readable without joins.
      ALTER TABLE traces ADD COLUMN problem VARCHAR;
      ALTER TABLE traces ADD COLUMN family VARCHAR;
      ALTER TABLE traces ADD COLUMN level INTEGER;
      ALTER TABLE traces ADD COLUMN gold VARCHAR;
      ALTER TABLE traces ADD COLUMN reject_stage VARCHAR;
      ALTER TABLE traces ADD COLUMN reject_detail VARCHAR;
      ALTER TABLE traces ADD COLUMN seeded_defect VARCHAR;
      ALTER TABLE traces ADD COLUMN self_correction BOOLEAN;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
