import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Vitest's own order, less its "projects run sequential" rule. Vitest 4 runs every project of one
 * `sequence.groupOrder` through one pool of `maxWorkers` (2 here, for the whole run), but its
 * BaseSequencer sorts by project name first: every integration file (a Temporal server, training,
 * Chromium) would queue before every unit file, so the two workers would pair heavy files with
 * each other on two cores. This order interleaves the projects as the suite did before it was
 * split: known-failed first, then the longest by the last run's timings (the largest file when
 * there are none, as in a fresh clone).
 */
export class OneQueueSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { cache, config } = this.ctx;
    const key = (s: TestSpecification) => `${s.project.name}:${relative(config.root, s.moduleId)}`;
    return [...files].sort((a, b) => {
      const order = a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder;
      if (order !== 0) return order;
      const ra = cache.getFileTestResults(key(a));
      const rb = cache.getFileTestResults(key(b));
      if (!ra || !rb) {
        const sa = cache.getFileStats(key(a));
        const sb = cache.getFileStats(key(b));
        if (!sa || !sb) return !sa && sb ? -1 : !sb && sa ? 1 : 0;
        return sb.size - sa.size;
      }
      if (ra.failed !== rb.failed) return ra.failed ? -1 : 1;
      return rb.duration - ra.duration;
    });
  }
}
