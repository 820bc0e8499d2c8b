/**
 * The chaos run's faults, injected one after the other as the plan (chaos-fault-plan.ts) says:
 * processes killed or paused, Redis restarted, Cassandra stopped or killed (a ring node on a
 * ring, chaos-ring.ts). Every random choice comes from the run's seeded generator, in a fixed
 * order, so the same seed replays the same run.
 */
import type { Logger } from 'pino';
import { startLocalCassandra, stopLocalCassandra } from '@settlement/tools';
import type { NodeAbsence } from './chaos-ring.js';
import type { FaultKind, PlannedFault } from './chaos-fault-plan.js';
import { killLocalCassandra, STALLED_INTERVAL_MS, type PrivateStack } from './chaos-stack.js';
import type { ChaosApps, Supervised } from './chaos-supervisor.js';
import type { FaultRecord } from './chaos-types.js';
import { sleep, within } from './chaos-wait.js';
import { describeWatermarks, type WatermarkProbe } from './chaos-watermarks.js';

/**
 * Longest a ring fault waits for the hints of the node that was away to be delivered, ms.
 * Cassandra 2.1 hands hints over when gossip sees the node come back, else every 10 minutes (a
 * node SIGSTOPped for 8 s is often never marked down): hints still pending after three commit-log
 * sync periods (10 s each) are synced on the nodes holding them, and so are the writes they stand
 * for, so a kill -9 of one of those no longer loses them.
 */
const HINTS_WAIT_MS = 30_000;

export interface FaultInjectorOptions {
  /** The run's seeded generator, uniform in [0, 1). */
  readonly random: () => number;
  readonly stack: PrivateStack;
  readonly apps: ChaosApps;
  readonly watermarks: WatermarkProbe;
  /** Since the stream started, ms. */
  readonly sinceStreamMs: () => number;
  readonly log: Logger;
  /** Called as each fault is done (it is also logged). */
  readonly onFault?: (fault: FaultRecord) => void;
}

/** What one fault hit, and what it did to the stores. */
interface FaultOutcome {
  readonly target: string;
  readonly detail?: string;
}

export class FaultInjector {
  /** Each fault done, in order. */
  readonly faults: FaultRecord[] = [];
  /** On a ring: when each node was away. */
  readonly absences: NodeAbsence[] = [];
  /** Ring node kills so far: the nodes are killed in turn. */
  private nodeKills = 0;
  /** Set when the run is abandoned: no further fault, nothing started again. */
  private halted = false;

  constructor(private readonly options: FaultInjectorOptions) {}

  halt(): void {
    this.halted = true;
  }

  /**
   * Runs the plan against the stream's expected send time. Faults run one after the other; one
   * that is due while another still runs starts right after it.
   */
  async run(plan: readonly PlannedFault[], expectedSendMs: number): Promise<void> {
    const { sinceStreamMs, log } = this.options;
    log.info({ plan: plan.map((p) => `${p.kind}@${((p.at * expectedSendMs) / 1000).toFixed(1)}s`) }, 'fault plan');
    for (const { kind, at } of plan) {
      const waitMs = at * expectedSendMs - sinceStreamMs();
      if (waitMs > 0) await sleep(waitMs);
      if (this.halted) return;
      // Chosen before the clock starts: the lookup may wait for a Redis that is coming back.
      const hit = kind === 'kill-settler' || kind === 'pause-settler' ? await this.settlerToHit() : undefined;
      const atMs = sinceStreamMs();
      const t0 = Date.now();
      const { target, detail } = await this.inject(kind, hit);
      const record: FaultRecord = { atMs, kind, target, durationMs: Date.now() - t0, ...(detail === undefined ? {} : { detail }) };
      this.faults.push(record);
      log.info(record, 'fault injected');
      this.options.onFault?.(record);
    }
  }

  private async inject(kind: FaultKind, hit: Supervised | undefined): Promise<FaultOutcome> {
    const { apps, stack } = this.options;
    switch (kind) {
      case 'kill-settler':
        return this.killAndRestart(hit!, 300, 1500);
      case 'kill-ingestor':
        return this.killAndRestart(apps.ingestor, 300, 1500);
      case 'kill-reconciler':
        return this.killAndRestart(apps.reconciler, 200, 800);
      case 'restart-redis':
        return this.restartRedis();
      case 'pause-node':
        return this.ringNodeFault(kind);
      case 'restart-cassandra':
      case 'kill-cassandra':
        return stack.ring !== undefined ? this.ringNodeFault(kind) : this.singleNodeCassandraFault(kind);
      case 'pause-settler':
        return this.pauseSettler(hit!);
    }
  }

  /**
   * The settler a fault should hit: the one running a settlement job now or, when every queue is
   * idle, the one that finished the latest. Hitting a standby would test nothing. Another one
   * is taken one time in four, so standbys are hit too; a random one when Redis does not say.
   */
  private async settlerToHit(): Promise<Supervised> {
    const { random, stack } = this.options;
    const settlers = this.options.apps.settlers;
    const busy = await within(
      (async () => {
        const votes = new Map<number, number>();
        for (const queue of stack.queues) {
          const [job] = [...(await queue.getActive(0, 0)), ...(await queue.getCompleted(0, 0))];
          const pid = Number(/:(\d+)$/.exec(job?.processedBy ?? '')?.[1]);
          if (Number.isInteger(pid)) votes.set(pid, (votes.get(pid) ?? 0) + 1);
        }
        const top = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
        return settlers.find((s) => s.pid === top);
      })(),
      2000,
      undefined,
    );
    const others = settlers.filter((s) => s !== busy);
    if (busy === undefined || (others.length > 0 && random() < 0.25)) return (others.length > 0 ? others : settlers)[Math.floor(random() * (others.length || settlers.length))]!;
    return busy;
  }

  /** SIGKILL, then started again after `minDownMs` plus up to `spreadMs` more. */
  private async killAndRestart(app: Supervised, minDownMs: number, spreadMs: number): Promise<FaultOutcome> {
    await app.kill();
    await sleep(minDownMs + this.options.random() * spreadMs);
    if (!this.halted) app.start();
    return { target: app.name };
  }

  /**
   * Redis killed and restarted. Without persistence (the default, like the machine's Redis) it
   * comes back empty: every queue, job chain and position gone. With an fsynced AOF it keeps
   * everything.
   */
  private async restartRedis(): Promise<FaultOutcome> {
    const { redis, redisPersistence, harnessRedis } = this.options.stack;
    const target = redisPersistence === 'none' ? 'redis (kill -9, comes back empty)' : 'redis (kill -9, AOF fsynced always)';
    const keysBefore = await within(harnessRedis.dbsize(), 1000, -1);
    await redis.kill();
    if (redisPersistence === 'none') redis.deleteData();
    await sleep(1000 + this.options.random() * 2000);
    if (this.halted) return { target, detail: 'not started again: the run was abandoned' };
    await redis.start();
    const keysAfter = await within(harnessRedis.dbsize(), 5000, -1);
    return { target, detail: `keys ${keysBefore} before, ${keysAfter} after the restart` };
  }

  /**
   * The single node stopped cleanly (SIGTERM) or crashed (kill -9), then started again. With the
   * periodic commit log, a crash loses what was acknowledged since the last sync: the service
   * must re-apply it.
   */
  private async singleNodeCassandraFault(kind: 'restart-cassandra' | 'kill-cassandra'): Promise<FaultOutcome> {
    const { cassandraOptions, quiet } = this.options.stack;
    const crash = kind === 'kill-cassandra';
    const target = crash ? 'cassandra (kill -9)' : 'cassandra (SIGTERM)';
    const before = await this.options.watermarks.read(3000);
    if (crash) await killLocalCassandra(cassandraOptions);
    else await stopLocalCassandra(cassandraOptions, quiet);
    await sleep(500 + this.options.random() * 1500);
    if (this.halted) return { target, detail: 'not started again: the run was abandoned' };
    await startLocalCassandra(cassandraOptions, quiet);
    const after = await this.options.watermarks.read(15_000);
    return { target, detail: describeWatermarks(before, after) };
  }

  /**
   * A ring node away, one at a time: kill -9 (the nodes in turn, so three kills hit each once)
   * until it is back in the ring, or SIGSTOP for longer than the client's request timeout.
   */
  private async ringNodeFault(kind: FaultKind): Promise<FaultOutcome> {
    const { random, stack, watermarks, sinceStreamMs } = this.options;
    const ring = stack.ring;
    if (ring === undefined) throw new Error(`${kind} needs a ring`);
    const kill = kind !== 'pause-node';
    const node = kill ? (this.nodeKills++ % ring.replicationFactor) + 1 : 1 + Math.floor(random() * ring.replicationFactor);
    const before = await watermarks.read(3000);
    const fromMs = sinceStreamMs();
    if (kill) {
      const pid = ring.killNode(node);
      // Until the killed JVM is gone: on a loaded machine its teardown took over 2 s (seed 2,
      // 3 Dec), and restartNode took the dying process, whose CQL port still answered, for a
      // running node ("already running"), did not start it, and the ring never became whole.
      const gone = Date.now() + 30_000;
      while (ring.pidOf(node) === pid && Date.now() < gone) await sleep(100);
      await sleep(500 + random() * 1500);
      if (this.halted) return { target: `node ${node}`, detail: 'not started again: the run was abandoned' };
      await ring.restartNode(node, stack.quiet);
    } else {
      ring.pauseNode(node);
      await sleep(stack.config.scylladb.request_timeout_ms + 2000 + random() * 2000);
      ring.resumeNode(node);
    }
    const toMs = sinceStreamMs();
    this.absences.push({ kind: kill ? 'kill -9' : 'SIGSTOP', node, fromMs, toMs });
    // One node at a time means one node behind at a time: the next fault waits until the writes
    // this node missed were handed to it (ring.ts, waitForHintsDelivered).
    const hints = await ring.waitForHintsDelivered(HINTS_WAIT_MS);
    const caughtUp = hints.pending === 0 ? `hints delivered ${(hints.waitedMs / 1000).toFixed(1)} s later` : `hints still pending after ${(hints.waitedMs / 1000).toFixed(0)} s`;
    const after = await watermarks.read(15_000);
    return { target: `node ${node} ${ring.hosts[node - 1]} (${kill ? 'kill -9' : 'SIGSTOP'})`, detail: `away ${((toMs - fromMs) / 1000).toFixed(1)} s, ${caughtUp}; ${describeWatermarks(before, after)}` };
  }

  /**
   * A settler frozen (SIGSTOP) longer than its lock and its lease, plus two stalled checks:
   * another settler takes the shards and the job over while this one is frozen; then it wakes
   * up mid-job.
   */
  private async pauseSettler(settler: Supervised): Promise<FaultOutcome> {
    settler.signal('SIGSTOP');
    const { lock_duration_ms: lockMs, shard_lease_ms: leaseMs } = this.options.stack.config.settler;
    await sleep(Math.max(lockMs, leaseMs) + 2 * STALLED_INTERVAL_MS + 1000 + this.options.random() * 1500);
    settler.signal('SIGCONT');
    return { target: settler.name };
  }
}
