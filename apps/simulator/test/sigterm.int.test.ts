/**
 * The simulator stops within seconds of SIGTERM, also while it lingers after sending
 * (--linger-ms keeps the replay endpoint up; the wait must end with the stop signal).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pull } from 'zeromq';
import { ROOT, freePort, waitFor } from '@settlement/testing';

const MAIN = path.join('apps', 'simulator', 'src', 'main.ts');
/** How soon after SIGTERM the process must be gone, ms. */
const STOP_MS_MAX = 5_000;

describe('simulator SIGTERM', () => {
  it('exits 0 within seconds of SIGTERM while lingering with --linger-ms 10 minutes', { timeout: 60_000 }, async () => {
    const [pullPort, replayPort] = [await freePort(), await freePort()];
    const pull = new Pull();
    await pull.bind(`tcp://127.0.0.1:${pullPort}`);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, '--messages', '200', '--rate', '0', '--endpoint', `tcp://127.0.0.1:${pullPort}`,
        '--replay-bind', `tcp://127.0.0.1:${replayPort}`, '--linger-ms', '600000'],
      { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      // Drain the stream so the sender finishes, then wait until it says so: it is now lingering.
      let frames = 0;
      const draining = (async () => {
        for await (const _frame of pull) frames += 1;
      })();
      await waitFor('the simulator to finish sending', async () => /"msg":"sent"/.test(output), 30_000);
      expect(frames).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 500));
      expect(child.exitCode).toBeNull();

      const stopAt = Date.now();
      child.kill('SIGTERM');
      const result = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_MS_MAX))]);
      expect(result, `still running ${STOP_MS_MAX} ms after SIGTERM; output: ${output.slice(-2000)}`).not.toBe('timeout');
      expect(result).toEqual({ code: 0, signal: null });
      expect(Date.now() - stopAt).toBeLessThan(STOP_MS_MAX);
      expect(output).toMatch(/"msg":"stopping"/);
      pull.close();
      await draining.catch(() => undefined);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (!pull.closed) pull.close();
    }
  });
});
