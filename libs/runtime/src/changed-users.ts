/**
 * Users whose balances changed, per hour, in Redis: the settlers record the users of every
 * acknowledged batch, and the scheduled reconciliation checks exactly those, so a wrong balance
 * of any user written in the last hour is found within the hour — not only in a sample (issue
 * 22). One set per hour (changedUsersKey), expiring after `retainHours`; a
 * set past `usersMaxPerHour` marks the hour as overflowed, and the run checks everyone instead.
 */
import type { Redis } from 'ioredis';
import { changedUsersKey } from '@settlement/domain';

export const HOUR_MS = 3_600_000;

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS);
}

export interface ChangedUsersOptions {
  readonly redis: Redis;
  readonly prefix: string;
  /** Hours a set is kept. Default 48. */
  readonly retainHours?: number;
}

/**
 * How often the hour's set gets its expiry set again, ms: once per hour key would do, but a
 * Redis that came back empty recreates the set without one.
 */
const EXPIRE_REFRESH_MS = 60_000;

export class ChangedUsers {
  private readonly retainSeconds: number;
  /** The key whose expiry this process last set, and when. */
  private expired: { readonly key: string; readonly atMs: number } | undefined;

  constructor(private readonly options: ChangedUsersOptions) {
    this.retainSeconds = (options.retainHours ?? 48) * 3600;
  }

  /**
   * Records users whose rows a batch just changed (one round trip): a plain SADD, with the
   * expiry set again only when the hour changes or once a minute (a MULTI with EXPIRE on every
   * batch cost the settlers ~30 µs of CPU per message, profiled at 1,000 msgs/s).
   */
  async record(userIds: Iterable<bigint>, nowMs = Date.now()): Promise<void> {
    const members = [...new Set([...userIds].map(String))];
    if (members.length === 0) return;
    const key = changedUsersKey(this.options.prefix, hourOf(nowMs));
    const expired = this.expired;
    if (expired !== undefined && expired.key === key && nowMs - expired.atMs < EXPIRE_REFRESH_MS) {
      await this.options.redis.sadd(key, ...members);
      return;
    }
    await this.options.redis.multi().sadd(key, ...members).expire(key, this.retainSeconds).exec();
    this.expired = { key, atMs: nowMs };
  }

  /**
   * The users changed in the hours `fromHour`..`toHour` (inclusive), or 'overflow' when they
   * are more than `usersMax` (then a full run is the cheaper check).
   */
  async between(fromHour: number, toHour: number, usersMax: number): Promise<bigint[] | 'overflow'> {
    const keys: string[] = [];
    for (let hour = fromHour; hour <= toHour; hour += 1) keys.push(changedUsersKey(this.options.prefix, hour));
    if (keys.length === 0) return [];
    const sizes = await Promise.all(keys.map((key) => this.options.redis.scard(key)));
    if (sizes.reduce((a, b) => a + b, 0) > usersMax) return 'overflow';
    const users = new Set<string>();
    for (const key of keys) for (const member of await this.options.redis.smembers(key)) users.add(member);
    return [...users].filter((u) => /^\d{1,19}$/.test(u)).map((u) => BigInt(u)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
