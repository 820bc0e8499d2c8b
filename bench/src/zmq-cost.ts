/**
 * npm run bench:zmq-cost — what one paced ZMQ message costs on this machine, on each side.
 *
 * A PUSH socket in this process sends frames the size of a trade at a steady rate to a PULL
 * socket in a child process that only receives them (what the ingestor's receive loop does
 * before parsing); CPU of both processes is read from /proc. It is the floor of the engine's
 * and the ingestor's cost per message: every message wakes the ZMQ I/O threads and the
 * receiving event loop, and at low rates each message pays that alone.
 *
 * Flags: USAGE below (`--help`).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pull, Push } from 'zeromq';
import { parseScriptArgs } from '@settlement/tools';
import { cpuSeconds } from './cpu.js';
import { formatTable } from './table.js';

const USAGE = `
npm run bench:zmq-cost [-- FLAGS]: CPU per paced ZMQ message, on the sender and the receiver

  --rates 500,1000,2000,4000   messages/s, one measurement each
  --seconds 8                  seconds per rate
  -h, --help                   this text
`;

const ENDPOINT = 'tcp://127.0.0.1:5597';
/** About the size of a MatchExecData frame. */
const FRAME = Buffer.alloc(450, 'x');

async function receiveAll(count: number): Promise<void> {
  const socket = new Pull();
  await socket.bind(ENDPOINT);
  process.send!('ready');
  let received = 0;
  for await (const _frames of socket) if (++received === count) break;
  process.send!('done');
  socket.close();
}

async function measure(rate: number, seconds: number): Promise<{ rate: number; senderUsPerMessage: number; receiverUsPerMessage: number }> {
  const count = rate * seconds;
  const child = fork(fileURLToPath(import.meta.url), ['--receive', String(count)], { execArgv: ['--import', 'tsx'] });
  await new Promise((resolve) => child.once('message', resolve));
  const socket = new Push();
  socket.connect(ENDPOINT);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const done = new Promise((resolve) => child.once('message', resolve));
  const sender0 = cpuSeconds(process.pid)!;
  const receiver0 = cpuSeconds(child.pid!)!;
  const started = performance.now();
  for (let sent = 0; sent < count; ) {
    const due = Math.min(count, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    for (; sent < due; sent++) await socket.send(FRAME);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await done;
  const senderUs = ((cpuSeconds(process.pid)! - sender0) * 1e6) / count;
  const receiverUs = ((cpuSeconds(child.pid!)! - receiver0) * 1e6) / count;
  socket.close();
  child.kill();
  return { rate, senderUsPerMessage: Math.round(senderUs), receiverUsPerMessage: Math.round(receiverUs) };
}

async function main(): Promise<void> {
  // --receive N: the child's side (not in USAGE: only this script starts it).
  const values = parseScriptArgs(USAGE, { rates: { type: 'string', default: '500,1000,2000,4000' }, seconds: { type: 'string', default: '8' }, receive: { type: 'string' } });
  if (values.receive !== undefined) return receiveAll(Number(values.receive));
  const rates = values.rates!.split(',').map(Number);
  const seconds = Number(values.seconds);
  if (rates.some((r) => !Number.isInteger(r) || r < 1) || !(seconds >= 1)) throw new Error('--rates must be positive integers and --seconds at least 1');
  const rows = [];
  for (const rate of rates) rows.push(await measure(rate, seconds));
  process.stdout.write(`${formatTable(['msgs/s', 'sender µs/msg', 'receiver µs/msg'], rows.map((r) => [r.rate, r.senderUsPerMessage, r.receiverUsPerMessage]))}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[zmq-cost] error: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
