import { MarketCatalog, parseWireMessage, encodeSettlementJob } from '@settlement/domain';
import { loadConfig } from '@settlement/config';
import { createSimulator, marketFromConfig } from '../../simulator/src/index.js';
import { IngestPipeline } from '../src/pipeline.js';
import { IngestCounts } from '../src/counters.js';
import { encodeJobData } from '../src/job-encoding.js';
const config = loadConfig({ env: {} });
const catalog = new MarketCatalog(config);
const N = 200_000;
const sim = createSimulator({ market: marketFromConfig(config), messages: N, users: 10000, seed: 1 });
const frames = sim.schedule.entries.map((_e, i) => Buffer.from(sim.frameAt(i, Date.now())));
function cpu(label: string, fn: () => void) {
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage(); fn(); const c = process.cpuUsage(c0);
    console.log(label, ((c.user + c.system) / N).toFixed(2), 'µs/msg');
  }
}
cpu('parse', () => { for (const f of frames) parseWireMessage(f, catalog); });
cpu('JSON.parse', () => { for (const f of frames) JSON.parse(f.toString()); });
cpu('pipeline+cut+encode+stringify', () => {
  const p = new IngestPipeline({ catalog, sequenceScope: 'global', batchMessagesMax: 50, batchWaitMs: 5, reorderWindowMs: 20, frameBytesMax: 1 << 20, state: new Map(), counts: new IngestCounts(), onRejected: () => undefined });
  let n = 0;
  for (const f of frames) { p.ingest(f, 0, 'live'); if (++n % 500 === 0) { const c = p.cut(0, false, 1000); for (const j of c?.jobs ?? []) JSON.stringify(encodeJobData(j.shard, j.prevLastSeq, j.messages)); } }
});
cpu('pipeline only', () => {
  const p = new IngestPipeline({ catalog, sequenceScope: 'global', batchMessagesMax: 50, batchWaitMs: 5, reorderWindowMs: 20, frameBytesMax: 1 << 20, state: new Map(), counts: new IngestCounts(), onRejected: () => undefined });
  let n = 0;
  for (const f of frames) { p.ingest(f, 0, 'live'); if (++n % 500 === 0) p.cut(0, false, 1000); }
});
const p = new IngestPipeline({ catalog, sequenceScope: 'global', batchMessagesMax: 50, batchWaitMs: 5, reorderWindowMs: 20, frameBytesMax: 1 << 20, state: new Map(), counts: new IngestCounts(), onRejected: () => undefined });
for (const f of frames) p.ingest(f, 0, 'live');
const jobs = p.cut(0, true, 100000)!.jobs;
cpu('encodeSettlementJob+stringify', () => { for (const j of jobs) JSON.stringify(encodeSettlementJob(j.shard, j.prevLastSeq, j.messages)); });
cpu('encodeJobData+stringify', () => { for (const j of jobs) JSON.stringify(encodeJobData(j.shard, j.prevLastSeq, j.messages)); });
