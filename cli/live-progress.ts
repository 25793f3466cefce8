// Live progress of a run in the terminal: one bar per stage (per arm in an experiment) with
// step/total, ETA and the latest metrics. Without a terminal it prints a line per stage change
// and, while training, the step every half minute.
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { ArmStatus, RunStatus } from './status.js';

const HEARTBEAT_STAGE: Record<string, string[]> = {
  sft: ['sft'],
  rl: ['rl'],
  'cold-start': ['cold-start'],
  eval: ['base-eval', 'sft-eval', 'final-eval'],
};

export function formatEta(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 90) return `ETA ${Math.round(seconds)} s`;
  if (seconds < 5400) return `ETA ${Math.round(seconds / 60)} min`;
  return `ETA ${(seconds / 3600).toFixed(1)} h`;
}

/** Three significant digits, in exponent form below 0.01 (a learning rate of 2e-4 is not "0.000"). */
export function formatNumber(v: number): string {
  if (v !== 0 && Math.abs(v) < 0.01) return v.toExponential(1);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .slice(0, 3)
    .map(([k, v]) => `${k} ${formatNumber(v)}`)
    .join(' ');
}

interface StageView {
  key: string;
  label: string;
  status: string;
  step: number;
  total: number;
  note: string;
}

function stageViews(arm: ArmStatus, prefix: string): StageView[] {
  return arm.stages
    .filter((s) => s.status !== 'pending')
    .map((s) => {
      const beat = arm.current && HEARTBEAT_STAGE[arm.current.stage]?.includes(s.name) && s.status === 'running' ? arm.current : null;
      const total = beat?.total || 1;
      const step = s.status === 'running' ? Math.min(beat?.step ?? 0, total) : total;
      const note =
        s.status === 'running'
          ? [arm.paused ? 'paused' : '', beat ? formatEta(beat.etaSeconds) : 'running', beat ? formatMetrics(beat.metrics) : '']
              .filter(Boolean)
              .join('  ')
          : `${s.status}${s.seconds !== null ? ` in ${Math.round(s.seconds)} s` : ''}${s.detail ? ` (${s.detail})` : ''}`;
      return { key: `${prefix}${s.name}`, label: `${prefix}${s.name}`, status: s.status, step, total, note };
    });
}

export function liveProgress(stream: NodeJS.WriteStream = process.stderr) {
  const tty = Boolean(stream.isTTY);
  const multi = tty
    ? new MultiBar(
        { format: '{label} [{bar}] {value}/{total} {note}', stream, hideCursor: true, clearOnComplete: false, barsize: 24 },
        Presets.shades_classic,
      )
    : null;
  const bars = new Map<string, SingleBar>();
  const lastStatus = new Map<string, string>();
  const lastLine = new Map<string, number>();
  return {
    update(status: RunStatus) {
      const many = status.arms.length > 1;
      for (const arm of status.arms) {
        for (const v of stageViews(arm, many ? `${arm.arm}/` : '')) {
          const label = v.label.padEnd(many ? 16 : 11);
          if (multi) {
            const bar = bars.get(v.key) ?? multi.create(v.total, 0, { label, note: '' });
            bars.set(v.key, bar);
            bar.setTotal(v.total);
            bar.update(v.step, { label, note: v.note });
          } else if (
            lastStatus.get(v.key) !== v.status ||
            (v.status === 'running' && v.total > 1 && Date.now() - (lastLine.get(v.key) ?? 0) > 30_000)
          ) {
            stream.write(`${v.label}: ${v.status === 'running' && v.total > 1 ? `${v.step}/${v.total} ` : ''}${v.note}\n`);
            if (v.status === 'running') lastLine.set(v.key, Date.now());
          }
          lastStatus.set(v.key, v.status);
        }
      }
    },
    stop() {
      multi?.stop();
    },
  };
}
