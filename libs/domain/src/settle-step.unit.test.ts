import { describe, expect, it } from 'vitest';
import { FUNDING_SHARD } from './catalog.js';
import type { FundingMessage } from './messages.js';
import { decideSettleStep, goneWatermarkJob, type SettleStepInput } from './settle-step.js';

function deposit(seq: bigint): FundingMessage {
  return { kind: 'funding', shard: FUNDING_SHARD, seq, userId: 7n, sequenceId: seq, eventType: 'DEPOSIT', amount: 10n, currency: 1, relatedId: 0n, createdAt: 0n };
}

/** Job funding-21-30: messages 21, 24, 27, 30 after a predecessor ending at 20. */
function input(overrides: Partial<SettleStepInput> = {}): SettleStepInput {
  return {
    stored: { lastSeq: 20n, lastJobId: 'funding-11-20' },
    trusted: true,
    jobId: 'funding-21-30',
    prevLastSeq: 20n,
    messages: [deposit(21n), deposit(24n), deposit(27n), deposit(30n)],
    rejected: [],
    acknowledgedSeq: 20n,
    recovering: false,
    watermarkJobChecked: true,
    ...overrides,
  };
}

const seqs = (step: ReturnType<typeof decideSettleStep>) => (step.kind === 'apply' ? step.pending.map((m) => m.seq) : []);

describe('decideSettleStep', () => {
  it('applies a job that continues the stored watermark in full', () => {
    const step = decideSettleStep(input());
    expect(step).toMatchObject({ kind: 'apply', floor: 20n, resumed: false, skipped: 0 });
    expect(seqs(step)).toEqual([21n, 24n, 27n, 30n]);
  });

  it('skips what the watermark already holds (a job delivered again, partly or wholly settled)', () => {
    const step = decideSettleStep(input({ stored: { lastSeq: 24n, lastJobId: 'other' }, trusted: false }));
    expect(step).toMatchObject({ kind: 'apply', floor: 24n, resumed: false, skipped: 2 });
    expect(seqs(step)).toEqual([27n, 30n]);
    const rejected = [{ seq: 22n, code: 'INVALID_MESSAGE', reason: 'x', field: 'amount', raw: '{}' }, { seq: 28n, code: 'INVALID_MESSAGE', reason: 'y', field: 'amount', raw: '{}' }];
    const withRejected = decideSettleStep(input({ stored: { lastSeq: 24n }, trusted: false, rejected }));
    expect(withRejected).toMatchObject({ kind: 'apply', skipped: 3, rejected: [rejected[1]] });
    expect(decideSettleStep(input({ stored: { lastSeq: 30n }, trusted: false }))).toMatchObject({ kind: 'apply', pending: [], skipped: 4 });
  });

  it('resumes a job whose own batch wrote the watermark, unseen by this settler: again from its start, through row versions', () => {
    const stored = { lastSeq: 27n, lastJobId: 'funding-21-30' };
    const step = decideSettleStep(input({ stored, trusted: false }));
    expect(step).toMatchObject({ kind: 'apply', floor: 20n, resumed: true, skipped: 0 });
    expect(seqs(step)).toEqual([21n, 24n, 27n, 30n]);
    // Seen acknowledged by this very settler (trusted): nothing of it can still be in flight.
    expect(decideSettleStep(input({ stored, trusted: true, acknowledgedSeq: 27n }))).toMatchObject({ kind: 'apply', floor: 27n, resumed: false });
  });

  it('applies the job that wrote the watermark again first when the view was read after a doubt (storage may have kept its batch in part)', () => {
    const doubt = { stored: { lastSeq: 20n, lastJobId: 'funding-11-20' }, trusted: false, watermarkJobChecked: false };
    expect(decideSettleStep(input(doubt))).toEqual({ kind: 'reapply-watermark-job', watermarkJobId: 'funding-11-20' });
    // Before a chain repair too: the repair goes on from that watermark.
    expect(decideSettleStep(input({ ...doubt, stored: { lastSeq: 12n, lastJobId: 'funding-1-12' } }))).toEqual({ kind: 'reapply-watermark-job', watermarkJobId: 'funding-1-12' });
    // Once per doubt; not when nothing is in doubt, not within a recovery, not for the job in hand itself (it is resumed).
    expect(decideSettleStep(input({ ...doubt, watermarkJobChecked: true }))).toMatchObject({ kind: 'apply', floor: 20n });
    expect(decideSettleStep(input({ ...doubt, trusted: true }))).toMatchObject({ kind: 'apply', floor: 20n });
    expect(decideSettleStep(input({ ...doubt, recovering: true }))).toMatchObject({ kind: 'apply', floor: 20n });
    expect(decideSettleStep(input({ ...doubt, stored: { lastSeq: 27n, lastJobId: 'funding-21-30' } }))).toMatchObject({ kind: 'apply', resumed: true });
    // Unknown watermark job (a watermark written before it was kept): nothing to apply again.
    expect(decideSettleStep(input({ ...doubt, stored: { lastSeq: 20n } }))).toMatchObject({ kind: 'apply', floor: 20n });
  });

  it('applies the watermark\'s job again from its own start when asked to (resume)', () => {
    const step = decideSettleStep(input({ stored: { lastSeq: 30n, lastJobId: 'funding-21-30' }, trusted: true, recovering: true, resume: true }));
    expect(step).toMatchObject({ kind: 'apply', floor: 20n, resumed: true, skipped: 0 });
    expect(seqs(step)).toEqual([21n, 24n, 27n, 30n]);
  });

  it('repairs the chain first when storage is behind the job\'s predecessor (a failed or lost earlier job)', () => {
    expect(decideSettleStep(input({ stored: { lastSeq: 12n }, trusted: false }))).toEqual({ kind: 'recover', requiredSeq: 20n });
  });

  it('repairs the chain first when storage lost batches this settler saw acknowledged (kill -9 with a periodic commit log)', () => {
    // The job in hand was delivered again after the loss: its predecessor is stored, but this
    // settler had settled up to 45 before the node came back without its last batches.
    expect(decideSettleStep(input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 45n }))).toEqual({ kind: 'recover', requiredSeq: 45n });
    // A job applied by that recovery only needs its own predecessor.
    expect(decideSettleStep(input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 45n, recovering: true }))).toMatchObject({ kind: 'apply', floor: 20n });
  });

  it('applies a job that continues the stored watermark and itself carries everything acknowledged (re-sent after Redis lost the queue)', () => {
    // Storage lost 21-30 after this settler saw them acknowledged; the engine re-sent them as this job.
    expect(decideSettleStep(input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 30n }))).toMatchObject({ kind: 'apply', floor: 20n });
    expect(seqs(decideSettleStep(input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 27n })))).toEqual([21n, 24n, 27n, 30n]);
    // A rejected message at the end is carried too (it is dead-lettered in order).
    const withRejectedTail = input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 31n, rejected: [{ seq: 31n, code: 'INVALID_MESSAGE', reason: 'bad', field: 'amount', raw: '{}' }] });
    expect(decideSettleStep(withRejectedTail)).toMatchObject({ kind: 'apply', floor: 20n });
    // One sequence past what it carries: the rest must be applied first.
    expect(decideSettleStep(input({ stored: { lastSeq: 20n }, trusted: false, acknowledgedSeq: 31n }))).toEqual({ kind: 'recover', requiredSeq: 31n });
  });

  it('refuses a job whose messages do not follow its predecessor in order', () => {
    expect(() => decideSettleStep(input({ messages: [deposit(21n), deposit(21n)] }))).toThrow('Invalid settlement job funding-21-30: messages.seq: 21 is not above 21');
    expect(() => decideSettleStep(input({ prevLastSeq: 25n }))).toThrow('messages.seq: 21 is not above 25');
  });

  describe('goneWatermarkJob (the watermark\'s job is to be applied again but Redis no longer holds it)', () => {
    const hourMs = 3_600_000;
    const gone = (overrides: Partial<Parameters<typeof goneWatermarkJob>[0]> = {}) =>
      goneWatermarkJob({ shard: 'btc_usdt', watermarkJobId: 'btc_usdt-101-150', writtenAtMs: 1_000_000, nowMs: 1_060_000, retainedMs: hourMs, engineCanResend: true, ...overrides });

    it('has the engine re-send the job\'s range when it was written within the retention (Redis came back empty)', () => {
      expect(gone()).toEqual({ kind: 'redrive', afterSeq: 100n, throughSeq: 150n });
      // A re-sent job's id carries a suffix; a write time unknown is taken as recent; a writer's clock ahead too.
      expect(gone({ watermarkJobId: 'btc_usdt-101-150-redrive.17' })).toEqual({ kind: 'redrive', afterSeq: 100n, throughSeq: 150n });
      expect(gone({ writtenAtMs: undefined })).toMatchObject({ kind: 'redrive' });
      expect(gone({ writtenAtMs: 1_180_000 })).toMatchObject({ kind: 'redrive' });
    });

    it('takes a batch written longer ago than the retention as synced', () => {
      expect(gone({ nowMs: 1_000_000 + hourMs + 1 })).toEqual({ kind: 'durable', ageMs: hourMs + 1 });
      expect(gone({ nowMs: 1_000_000 + hourMs })).toMatchObject({ kind: 'redrive' });
    });

    it('reports, not halts, when nothing can re-send it (no replay endpoint)', () => {
      expect(gone({ engineCanResend: false })).toEqual({ kind: 'no-replay', afterSeq: 100n, throughSeq: 150n });
    });

    it('cannot re-drive what is not a settlement job of the shard', () => {
      expect(gone({ watermarkJobId: 'rc-btc_usdt-0123456789abcdef' })).toEqual({ kind: 'not-a-settlement-job' });
      expect(gone({ watermarkJobId: 'eth_usdt-101-150' })).toEqual({ kind: 'not-a-settlement-job' });
    });
  });
});
