import { describe, expect, it } from 'vitest';
import { isAuthorized } from './auth.js';

const options = { user: 'admin', token: 'correct-horse-battery' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('isAuthorized', () => {
  it('accepts the bearer token and basic auth with the configured user', () => {
    expect(isAuthorized('Bearer correct-horse-battery', options)).toBe(true);
    expect(isAuthorized('bearer correct-horse-battery', options)).toBe(true);
    expect(isAuthorized(basic('admin', 'correct-horse-battery'), options)).toBe(true);
  });

  it('rejects a missing header, a wrong token, a wrong user and unknown schemes', () => {
    expect(isAuthorized(undefined, options)).toBe(false);
    expect(isAuthorized('Bearer wrong-token-value', options)).toBe(false);
    expect(isAuthorized('Bearer', options)).toBe(false);
    expect(isAuthorized(basic('root', 'correct-horse-battery'), options)).toBe(false);
    expect(isAuthorized(basic('admin', 'nope'), options)).toBe(false);
    expect(isAuthorized(`Basic ${Buffer.from('no-colon').toString('base64')}`, options)).toBe(false);
    expect(isAuthorized('Digest abc', options)).toBe(false);
  });

  it('a password containing colons is kept whole', () => {
    const token = 'a:b:c:d:e:f:g:h';
    expect(isAuthorized(basic('admin', token), { user: 'admin', token })).toBe(true);
  });

  it('is open when no token is configured (loopback only, enforced by the config schema)', () => {
    expect(isAuthorized(undefined, { user: 'admin', token: undefined })).toBe(true);
  });
});
