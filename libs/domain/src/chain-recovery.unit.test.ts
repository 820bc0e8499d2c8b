import { describe, expect, it } from 'vitest';
import { planChainRecovery, type RetainedJob } from './chain-recovery.js';

const job = (prevLastSeq: bigint, lastSeq: bigint, jobId = `s-${prevLastSeq + 1n}-${lastSeq}`): RetainedJob => ({ jobId, prevLastSeq, lastSeq });

describe('planChainRecovery', () => {
  it('applies the job as it is when the watermark reached what is required', () => {
    expect(planChainRecovery({ watermark: 50n, requiredSeq: 50n, retained: [], jobsMax: 10 })).toEqual({ kind: 'in-order' });
    expect(planChainRecovery({ watermark: 60n, requiredSeq: 50n, retained: [], jobsMax: 10 })).toEqual({ kind: 'in-order' });
  });

  it('re-applies the retained jobs storage lost, in chain order, whatever order Redis lists them in', () => {
    // Shard sequences have holes (one global counter across symbols): 0 → 12 → 31 → 40.
    const retained = [job(31n, 40n), job(0n, 12n), job(12n, 31n), job(40n, 55n)];
    expect(planChainRecovery({ watermark: 12n, requiredSeq: 40n, retained, jobsMax: 10 })).toEqual({ kind: 're-apply', jobIds: ['s-13-31', 's-32-40'] });
    expect(planChainRecovery({ watermark: 0n, requiredSeq: 55n, retained, jobsMax: 10 })).toEqual({ kind: 're-apply', jobIds: ['s-1-12', 's-13-31', 's-32-40', 's-41-55'] });
  });

  it('continues from a watermark in the middle of a job (a job partly written before the loss)', () => {
    expect(planChainRecovery({ watermark: 20n, requiredSeq: 31n, retained: [job(0n, 12n), job(12n, 31n)], jobsMax: 10 })).toEqual({ kind: 're-apply', jobIds: ['s-13-31'] });
  });

  it('prefers the job that follows the position directly over an older one that also covers it', () => {
    const retained = [job(0n, 31n, 'old'), job(12n, 31n, 'direct')];
    expect(planChainRecovery({ watermark: 12n, requiredSeq: 31n, retained, jobsMax: 10 })).toEqual({ kind: 're-apply', jobIds: ['direct'] });
  });

  it('halts naming the range no retained job covers, after the jobs that can still apply', () => {
    const retained = [job(12n, 31n), job(40n, 55n)];
    expect(planChainRecovery({ watermark: 12n, requiredSeq: 55n, retained, jobsMax: 10 })).toEqual({ kind: 'halt', afterSeq: 31n, throughSeq: 55n, jobIds: ['s-13-31'] });
    expect(planChainRecovery({ watermark: 0n, requiredSeq: 12n, retained: [], jobsMax: 10 })).toEqual({ kind: 'halt', afterSeq: 0n, throughSeq: 12n, jobIds: [] });
  });

  it('applies at most jobsMax jobs in one recovery', () => {
    const retained = [job(0n, 1n), job(1n, 2n), job(2n, 3n)];
    expect(planChainRecovery({ watermark: 0n, requiredSeq: 3n, retained, jobsMax: 2 })).toEqual({ kind: 'halt', afterSeq: 2n, throughSeq: 3n, jobIds: ['s-1-1', 's-2-2'] });
  });
});
