/**
 * The operator's overview at /overview (and its data as JSON at /v1/overview), behind the same
 * authentication as bull-board: halted shards first, then per shard lag, queue depth, settled
 * messages/s and the settler process, the last hour as charts, a balance / trade lookup, the
 * last reconciliations with the errors they found, and dead letters by reason. Rendered on the
 * server (no script); the page reloads itself every `REFRESH_S`.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { Ops } from '../ops/context.js';
import { InputError } from '../ops/input-error.js';
import { buildOverview, type Overview } from '../ops/overview.js';
import { SAMPLES_KEPT_MS } from '../ops/overview-samples.js';
import { parseInput, symbolSchema, tradeIdSchema, userIdSchema } from '../ops/params.js';
import { haltedWarnings } from '../ops/shards.js';
import { balanceViews, tradeView } from '../ops/views.js';
import { escapeXml as esc, formatValue, lineChart, type ChartSeries } from './svg-chart.js';

export const OVERVIEW_PATH = '/overview';
/** The page reloads itself this often, s. */
const REFRESH_S = 10;

export function createOverviewRouter(ops: Ops, links: { board: string }): Router {
  const router = Router();
  router.get('/v1/overview', async (_req, res) => {
    res.json(await buildOverview(ops));
  });
  router.get(OVERVIEW_PATH, async (req, res) => {
    const [overview, lookup] = await Promise.all([buildOverview(ops), renderLookup(ops, req.query)]);
    res.type('html').set('cache-control', 'no-store').send(renderPage(overview, lookup, links.board));
  });
  return router;
}

function one(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The lookup's answer: balances of `user`, or trade `trade` of `symbol`; errors name the field. */
async function renderLookup(ops: Ops, query: Record<string, unknown>): Promise<string> {
  const user = one(query['user']);
  const symbol = one(query['symbol']);
  const trade = one(query['trade']);
  try {
    if (user !== undefined) {
      const { userId } = parseInput(z.object({ userId: userIdSchema }), { userId: user }, 'lookup');
      const balances = balanceViews(await ops.balances.getUserBalances(userId), ops.catalog);
      if (balances.length === 0) return `<p id="lookup-result">user ${esc(userId.toString())} has no balances</p>`;
      return (
        `<table id="lookup-result" data-user="${esc(userId.toString())}"><caption>balances of user ${esc(userId.toString())}</caption>` +
        '<tr><th>asset</th><th>available</th><th>frozen</th><th>total</th><th>minor units (available/frozen)</th></tr>' +
        balances
          .map((b) => `<tr data-asset="${esc(b.asset)}"><td>${esc(b.asset)}</td><td class="n">${b.display.available}</td><td class="n">${b.display.frozen}</td><td class="n">${b.display.total}</td><td class="n">${b.available}/${b.frozen}</td></tr>`)
          .join('') +
        '</table>'
      );
    }
    if (symbol !== undefined || trade !== undefined) {
      const args = parseInput(z.object({ symbol: symbolSchema(ops.catalog), tradeId: tradeIdSchema }), { symbol: symbol ?? '', tradeId: trade ?? '' }, 'lookup');
      const found = await ops.trades.getTrade(args.symbol, args.tradeId);
      if (found === undefined) return `<p id="lookup-result">trade ${esc(args.tradeId.toString())} of ${esc(args.symbol)} not found</p>`;
      const view = tradeView(found, ops.catalog);
      const { display, ...fields } = view;
      const rows = Object.entries(fields as Record<string, unknown>).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : String(v)]);
      rows.push(['price (display)', display.price], ['quantity (display)', display.quantity], ['quote amount (display)', display.quoteAmount]);
      return `<table id="lookup-result"><caption>trade ${esc(args.tradeId.toString())} of ${esc(args.symbol)}</caption>${rows.map(([k, v]) => `<tr><th>${esc(k!)}</th><td>${esc(v!)}</td></tr>`).join('')}</table>`;
    }
  } catch (error) {
    if (error instanceof InputError) return `<p id="lookup-result" class="bad">${esc(error.message)}</p>`;
    throw error;
  }
  return '';
}

function cell(value: string, field: string, numeric = true): string {
  return `<td data-field="${field}"${numeric ? ' class="n"' : ''}>${esc(value)}</td>`;
}

function renderPage(o: Overview, lookup: string, board: string): string {
  const now = o.generatedAt.getTime();
  const hour = new Map(o.hour.map((h) => [h.shard, h]));
  const halts = haltedWarnings(o.shards);
  const series = (pick: (h: Overview['hour'][number]) => ChartSeries['points']): ChartSeries[] => o.hour.map((h) => ({ name: h.shard, points: pick(h) }));
  // The last hour, or less while the samples cover less (a dashboard started minutes ago).
  const firstSample = Math.min(now, ...o.hour.flatMap((h) => (h.samples.length === 0 ? [] : [h.samples[0]!.t])));
  const chartRange = { fromMs: Math.max(now - SAMPLES_KEPT_MS, firstSample), toMs: now };
  const charts = [
    lineChart(series((h) => h.settledPerSecond.map((p) => ({ t: p.t, v: p.perSecond }))), { title: 'settled messages/s', unit: 'msg/s', ...chartRange }),
    lineChart(series((h) => h.samples.map((s) => ({ t: s.t, v: Number(s.lag) }))), { title: 'lag (enqueued − applied)', unit: 'msgs', ...chartRange }),
    lineChart(series((h) => h.samples.map((s) => ({ t: s.t, v: s.depth }))), { title: 'queue depth', unit: 'jobs', ...chartRange }),
  ];

  const shardRows = o.shards
    .map((s) => {
      const rate = hour.get(s.shard)?.settledPerSecondLastMinute;
      return (
        `<tr data-shard="${esc(s.shard)}"${s.halted ? ' class="halted"' : ''}><th>${esc(s.shard)}</th>` +
        cell(s.appliedSeq?.toString() ?? '-', 'appliedSeq') +
        cell(s.enqueuedSeq?.toString() ?? '-', 'enqueuedSeq') +
        cell(s.lag.toString(), 'lag') +
        cell(String(s.depth), 'depth') +
        cell(String(s.jobs.failed), 'failed') +
        cell(rate === null || rate === undefined ? '-' : formatValue(rate), 'settledPerSecond') +
        cell(s.settledBy.length === 0 ? 'none' : s.settledBy.join(', '), 'settledBy', false) +
        cell(s.updatedAt?.toISOString().replace('T', ' ').slice(0, 19) ?? '-', 'updatedAt', false) +
        cell(s.halted === null ? '-' : `HALTED after ${s.halted.afterSeq} through ${s.halted.throughSeq}`, 'halted', false) +
        '</tr>'
      );
    })
    .join('');

  const reconciliations = o.reconciliations
    .map((r) => {
      const findings =
        r.findings.length === 0
          ? ''
          : `<tr class="findings"><td colspan="8"><table><tr><th>kind</th><th>user</th><th>asset</th><th>shard</th><th>expected avail / frozen</th><th>stored avail / frozen</th><th>fixed</th><th>message</th></tr>${r.findings
              .map((f) => {
                const shown = (p: { available: unknown; frozen: unknown } | null) => (p === null ? '-' : `${String(p.available)} / ${String(p.frozen)}`);
                return `<tr class="${f.error ? 'bad' : 'warn'}" data-kind="${esc(f.kind)}"><td>${esc(f.kind)}</td><td>${esc(f.userId?.toString() ?? '-')}</td><td>${esc(f.asset ?? '-')}</td><td>${esc(f.shard ?? '-')}</td><td class="n">${esc(shown(f.display?.expected ?? f.expected))}</td><td class="n">${esc(shown(f.display?.stored ?? f.stored))}</td><td>${f.fixed ? 'yes' : 'no'}</td><td>${esc(f.message)}</td></tr>`;
              })
              .join('')}${r.findingsTruncated ? `<tr><td colspan="8">… more: settle reconcile-status ${esc(r.id)}</td></tr>` : ''}</table></td></tr>`;
      return (
        `<tr data-reconciliation="${esc(r.id)}"${r.errors ? ' class="bad"' : ''}><td>${esc(r.id)}</td><td>${esc(r.state)}</td><td>${esc(r.trigger ?? '-')}</td><td>${esc(r.mode ?? '-')}</td>` +
        `<td>${esc(r.enqueuedAt.toISOString().replace('T', ' ').slice(0, 19))}</td><td>${esc(r.finishedAt?.toISOString().replace('T', ' ').slice(0, 19) ?? '-')}</td>` +
        `<td class="n">${r.usersChecked ?? '-'}</td><td class="n" data-field="errors">${r.errors ?? '-'}${r.failedReason ? ` (failed: ${esc(r.failedReason)})` : ''}</td></tr>${findings}`
      );
    })
    .join('');

  const deadLetters = o.deadLetters.byReason
    .map((d) => `<tr><td class="n" data-field="count">${d.count}</td><td>${esc(d.shard)}</td><td>${esc(d.field ?? '-')}</td><td>${esc(d.reason)}</td><td>${esc(d.newestAt?.toISOString().replace('T', ' ').slice(0, 19) ?? '-')}</td></tr>`)
    .join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${REFRESH_S}">
<title>Settlement overview</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px 24px;color:#111827}
h1{font-size:18px;margin:0 0 4px}h2{font-size:14px;margin:18px 0 6px}
nav a{margin-right:12px}table{border-collapse:collapse;margin:4px 0}th,td{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6b7280}
#halted{background:#b91c1c;color:#fff;padding:10px 14px;font-size:15px;font-weight:600;border-radius:4px}
#halted p{margin:4px 0}tr.halted{background:#fee2e2}tr.bad td{color:#b91c1c}tr.warn td{color:#92400e}p.bad{color:#b91c1c}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #e5e7eb;background:#fff}
tr.findings>td{padding-left:28px}form{display:inline-block;margin-right:18px}input{width:9em}
</style></head><body>
<h1>Settlement overview</h1>
<nav><a href="${esc(board)}">queues (bull-board)</a><a href="/v1/overview">JSON</a><a href="/metrics">metrics</a>
<span class="muted">at ${esc(o.generatedAt.toISOString())}, reloads every ${REFRESH_S} s; samples every ${o.sampleIntervalMs / 1000} s</span></nav>
${halts.length === 0 ? '<p id="no-halts" class="muted">no shard halted</p>' : `<div id="halted" role="alert">${halts.map((h) => `<p>${esc(h)}</p>`).join('')}</div>`}
<h2>Shards</h2>
<table id="shards"><tr><th>shard</th><th>applied seq</th><th>enqueued seq</th><th>lag</th><th>queue depth</th><th>failed jobs</th><th>settled msg/s (1 min)</th><th>settled by</th><th>last batch (UTC)</th><th>halted</th></tr>${shardRows}</table>
<h2>Last hour</h2>
<div class="charts" id="charts">${charts.join('')}</div>
<h2>Lookup</h2>
<form method="get" action="${OVERVIEW_PATH}"><label>user <input name="user" inputmode="numeric"></label> <button>balances</button></form>
<form method="get" action="${OVERVIEW_PATH}"><label>symbol <input name="symbol"></label> <label>trade id <input name="trade" inputmode="numeric"></label> <button>trade</button></form>
<div id="lookup">${lookup}</div>
<h2>Last reconciliations</h2>
${o.reconciliations.length === 0 ? '<p class="muted">none yet</p>' : `<table id="reconciliations"><tr><th>id</th><th>state</th><th>trigger</th><th>mode</th><th>enqueued (UTC)</th><th>finished (UTC)</th><th>users</th><th>balance errors</th></tr>${reconciliations}</table>`}
<h2>Dead letters by reason</h2>
${o.deadLetters.byReason.length === 0 ? '<p id="no-dead-letters" class="muted">no dead letters</p>' : `<table id="dead-letters"><tr><th>count</th><th>shard</th><th>field</th><th>reason</th><th>newest (UTC)</th></tr>${deadLetters}</table>${o.deadLetters.truncated ? `<p class="muted">grouped from the newest ${o.deadLetters.read}; settle dead-letters list for all</p>` : ''}`}
</body></html>`;
}
