import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { requestOfJob } from './processor.js';

describe('requestOfJob', () => {
  it('decodes the three modes, user ids to bigint, fix false by default', () => {
    expect(requestOfJob({ name: 'reconcile', data: { mode: 'sample' } })).toEqual({ mode: 'sample', fix: false });
    expect(requestOfJob({ name: 'reconcile', data: { mode: 'users', userIds: ['9007199254740993', 7], fix: true } })).toEqual({ mode: 'users', userIds: [9007199254740993n, 7n], fix: true });
    expect(requestOfJob({ name: 'reconcile', data: { mode: 'full', trigger: 'cli' } })).toEqual({ mode: 'full', fix: false, trigger: 'cli' });
  });

  it('fails a wrong payload with UnrecoverableError naming the field', () => {
    const attempt = () => requestOfJob({ name: 'reconcile', data: { mode: 'users', userIds: ['1', '-2'] } });
    expect(attempt).toThrow(UnrecoverableError);
    expect(attempt).toThrow('Invalid reconcile job: userIds.1: must be a decimal user id');
    expect(() => requestOfJob({ name: 'reconcile', data: null })).toThrow(/^Invalid reconcile job: mode: /);
    expect(() => requestOfJob({ name: 'settle', data: { mode: 'full' } })).toThrow('Invalid reconcile job: name: is "settle", expected "reconcile"');
  });
});
