/**
 * Authentication for the dashboard, its API and /metrics: HTTP Basic (user + token as the
 * password, which a browser asks for by itself) or `Authorization: Bearer <token>` for scripts.
 * Without a configured token the dashboard is open, which the config schema allows only on a
 * loopback address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

export interface AuthOptions {
  readonly user: string;
  /** Bearer token and basic-auth password; undefined = no authentication (loopback only). */
  readonly token: string | undefined;
  /** Realm shown by the browser's login prompt. */
  readonly realm?: string;
}

/** Compares in constant time: the digests have one length whatever the inputs are. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Whether an Authorization header value carries valid credentials. */
export function isAuthorized(header: string | undefined, options: AuthOptions): boolean {
  if (options.token === undefined) return true;
  if (header === undefined) return false;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (value === undefined) return false;
  switch (scheme?.toLowerCase()) {
    case 'bearer':
      return sameSecret(value, options.token);
    case 'basic': {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return false;
      // Both halves are always compared, so a wrong user takes as long as a wrong password.
      const userOk = sameSecret(decoded.slice(0, colon), options.user);
      const passwordOk = sameSecret(decoded.slice(colon + 1), options.token);
      return userOk && passwordOk;
    }
    default:
      return false;
  }
}

export function authenticate(options: AuthOptions): RequestHandler {
  const realm = options.realm ?? 'settlement dashboard';
  return (req, res, next) => {
    if (isAuthorized(req.headers.authorization, options)) {
      next();
      return;
    }
    res
      .status(401)
      .set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`)
      .json({ error: { code: 'UNAUTHORIZED', message: 'credentials required: HTTP basic auth (dashboard.user + token) or Authorization: Bearer <token>' } });
  };
}
