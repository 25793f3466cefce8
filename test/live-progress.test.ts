// The numbers beside `retool run`'s progress bars: readable at any scale.
import { describe, expect, it } from 'vitest';
import { formatNumber } from '../cli/live-progress.js';

describe('progress metrics', () => {
  it('keep three decimals, drop them past 100, and switch to exponent form for small values such as a learning rate', () => {
    expect(formatNumber(0.052)).toBe('0.052');
    expect(formatNumber(1234.5)).toBe('1235');
    expect(formatNumber(2e-4)).toBe('2.0e-4');
    expect(formatNumber(-3e-5)).toBe('-3.0e-5');
    expect(formatNumber(0)).toBe('0.000');
  });
});
