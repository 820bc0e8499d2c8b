/**
 * `<app> --help`: what each process is and the config keys it reads. runApp prints it and exits 0
 * before reading the config or opening a connection, so asking for help never starts anything.
 */
import { configHelp } from '@settlement/config';

interface AppHelp {
  readonly usage: string;
  readonly description: string;
  /** Config sections (top-level names or dotted keys) the process reads. */
  readonly sections: readonly string[];
}

const STORES = ['scylladb', 'redis', 'assets', 'symbols', 'fee_account_user_id', 'log_level'] as const;

export const APP_HELP: Readonly<Record<string, AppHelp>> = {
  ingestor: {
    usage: 'npx tsx apps/ingestor/src/main.ts   (or node dist/apps/ingestor/main.js)',
    description:
      "Receives the matching engine's ZeroMQ stream, validates and sequences it, and adds settlement jobs to the shards' BullMQ queues. SIGTERM drains the sockets, flushes what it holds and exits 0.",
    sections: [...STORES, 'zmq', 'data_dir', 'backup', 'funding_numbering', 'sequence_scope', 'batch', 'ingestor', 'settler.completed_jobs_retained_max', 'settler.completed_jobs_retained_s'],
  },
  settler: {
    usage: 'npx tsx apps/settler/src/main.ts   (or node dist/apps/settler/main.js)',
    description:
      "Settles the shards' queues into Cassandra (one job per shard at a time, shard leases shared among the settler processes). SIGTERM finishes the current batches and exits 0.",
    sections: [...STORES, 'settler'],
  },
  reconciler: {
    usage: 'npx tsx apps/reconciler/src/main.ts   (or node dist/apps/reconciler/main.js)',
    description: 'Runs reconcile jobs (the scheduled run and those asked for on demand): recomputes balances from history and records what differs. SIGTERM exits 0.',
    sections: [...STORES, 'reconciliation', 'settler.completed_jobs_retained_max'],
  },
  simulator: {
    usage: 'npx tsx apps/simulator/src/main.ts [flags above]',
    description: 'A matching-engine stand-in sending a deterministic trade stream over ZeroMQ. SIGTERM stops it within a second, also with --linger-ms.',
    sections: ['simulator', 'zmq', 'assets', 'symbols', 'fee_account_user_id', 'log_level'],
  },
  dashboard: {
    usage: 'npx tsx apps/dashboard/src/main.ts   (or node dist/apps/dashboard/main.js; with a command it is the settle CLI: main.js help)',
    description: 'Serves bull-board (/queues), the overview page (/overview), the JSON API (/v1) and /metrics on dashboard.host:dashboard.port. SIGTERM exits 0.',
    sections: [...STORES, 'dashboard', 'reconciliation.sample_size', 'zmq'],
  },
};

/** True when the command line asks for help (`--help` or `-h` anywhere). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h');
}

export function appHelpText(app: string): string {
  const help = APP_HELP[app];
  if (help === undefined) return `${app}: no help text\n`;
  return configHelp({ name: app, ...help });
}
