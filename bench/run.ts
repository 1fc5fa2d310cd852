/**
 * Runs every benchmark in turn (a few minutes on a 2-core machine) and writes bench/RESULTS.md:
 * the machine, the date, every figure, every ratio against its same-run baseline, and each
 * target met or its gap with what limits it.
 *   npm run bench                      (make bench)
 *   npm run bench -- --only ingest,round
 *   npm run bench -- --only files       (needs root: network namespaces, tmpfs)
 *   npm run bench -- --quick           shorter windows, prints only (RESULTS.md untouched unless --out)
 *   npm run bench -- --profile         also CPU-profile the managers (ingest, scale) into /tmp and summarise them
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EVENT_LOOP_RESOLUTION_MS } from '../agent/app.js';
import { type FootprintResult, formatFootprint, runFootprint } from './agent-footprint.js';
import {
  ensureOpenFiles,
  fx,
  machine,
  mib,
  musterBinary,
  openFileLimit,
  progress,
  ROOT,
  waitForQuiet,
} from './common.js';
import { type ExecFanoutResult, formatExecFanout, runExecFanout } from './exec-fanout.js';
import { FILES_TARGET, type FilesPushResult, formatFilesPush, runFilesPush } from './files-push.js';
import { selfCheck } from './fleet.js';
import { formatIngest, type IngestResult, runIngest } from './ingest.js';
import { formatScale, growth, runScale, type ScaleResult } from './manager-scale.js';
import { formatPlacement, type PlacementResult, runPlacement } from './placement.js';
import { summarise } from './profile-top.js';
import { formatRound, type RoundResult, type RoundSide, runRound } from './round.js';
import { formatWsScale, runWsScale, type WsScaleResult } from './ws-scale.js';

const BENCHES = ['ingest', 'round', 'footprint', 'scale', 'placement', 'exec', 'wsscale', 'files'] as const;
type BenchName = (typeof BENCHES)[number];

/** Targets (the Target column of bench/README.md). */
const TARGET = {
  ingestRatio: 0.8,
  /** Round at N = 5,000: the manager's last report stored within this × the bare server's, none lost. */
  roundBareRatio: 1.1,
  roundBareN: 5000,
  /** Manager start (new and known boards) at this N: within 2 rounds + window + 1 s, 0 failures. */
  startN: 5000,
  /** Marginal manager RSS per 1,000 boards held. */
  rssPerKBytes: 40 * 1024 * 1024,
  roundSlackMs: 200,
  roundN: 1000,
  agentRssBytes: 64 * 1024 * 1024,
  agentRssIdleRatio: 1.5,
  agentCpuPercent: 0.5,
  buildP50Ms: 1,
  eventLoopP99Ms: 20,
  placementsPerS: 5000,
  reconcileCpuMs: 1000,
  execStoredSlackMs: 1500,
  execLineP99Ms: 100,
  wsAllBackMs: 60_000,
};

interface Results {
  ingest?: IngestResult;
  round?: RoundResult;
  footprint?: FootprintResult;
  scale?: ScaleResult;
  placement?: PlacementResult;
  exec?: ExecFanoutResult;
  wsscale?: WsScaleResult;
  files?: FilesPushResult;
  errors: Partial<Record<BenchName, string>>;
}

const yes = (ok: boolean) => (ok ? '**met**' : '**not met**');

/** One row of the summary table. */
interface Row {
  what: string;
  measured: string;
  baseline: string;
  ratio: string;
  target: string;
  met: string;
  /** Cores other processes used while this figure was measured. */
  load?: number;
}

function table(rows: Row[]): string {
  const head =
    '| Benchmark / figure | Measured | Baseline (same run) | Ratio | Target | Result | Other load |\n|---|---|---|---|---|---|---|';
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.what} | ${r.measured} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met} | ${r.load === undefined ? '—' : `${fx(r.load, 2)} cores`} |`,
    ),
  ].join('\n');
}

/** The top of the manager's CPU profiles written under `dir` (run with --profile), as Markdown lines. */
function profileNotes(dir: string | undefined, what: string): string[] {
  if (!dir || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const s = summarise(path.join(dir, f));
    if (!s.areas.some(([a]) => a.startsWith('manager'))) continue; // a bare server's or another process's
    const busy = 1 - (s.areas.find(([a]) => a === '(idle)')?.[1] ?? 0);
    const pct = (x: number) => `${fx((x / busy) * 100, 1)} %`;
    out.push(
      `- CPU profile of the manager during ${what} (\`--cpu-prof\`, ${path.join(dir, f)}, not in git; shares of its busy time): ` +
        s.areas
          .filter(([a]) => a !== '(idle)')
          .slice(0, 10)
          .map(([a, x]) => `${a} ${pct(x)}`)
          .join(', ') +
        '; top functions: ' +
        s.functions
          .filter(([k]) => k !== '(idle)')
          .slice(0, 10)
          .map(([k, x]) => `\`${k.replace(/\|/g, '/')}\` ${pct(x)}`)
          .join(', ') +
        '.',
    );
  }
  return out;
}

function roundWithin(s: RoundSide): boolean {
  return s.max <= s.jitterMs + TARGET.roundSlackMs && s.lost === 0;
}

function render(
  r: Results,
  meta: {
    started: Date;
    ms: number;
    quietOthers: number;
    fileLimit: number;
    check: string;
    /** Where the managers' CPU profiles went, per benchmark (--profile). */
    profiles?: Partial<Record<BenchName, string>>;
  },
) {
  const m = machine();
  const bin = musterBinary();
  const rows: Row[] = [];
  const notes: string[] = [];

  // --- ingest ---
  const ig = r.ingest;
  if (ig) {
    rows.push({
      what: 'a. ingest: /resource reports/s accepted and stored',
      measured: `${fx(ig.manager.rate, 0)}/s (manager)`,
      baseline: `${fx(ig.bare.rate, 0)}/s (bare node:http)`,
      ratio: fx(ig.ratio, 2),
      target: `ratio ≥ ${TARGET.ingestRatio}`,
      met: yes(ig.ratio >= TARGET.ingestRatio),
      load: ig.othersCores,
    });
    rows.push({
      what: 'a. ingest: server CPU per report',
      measured: `${fx(ig.manager.cpuUsPerReport, 0)} µs`,
      baseline: `${fx(ig.bare.cpuUsPerReport, 0)} µs`,
      ratio: `${fx(ig.cpuRatio, 2)} (bare/manager)`,
      target: '—',
      met: 'context',
      load: ig.othersCores,
    });
    if (ig.ratio < TARGET.ingestRatio)
      notes.push(
        `- **Ingest gap**: the manager reached ${fx(ig.ratio, 2)} of the bare server's rate (target ${TARGET.ingestRatio}); ` +
          `it spends ${fx(ig.manager.cpuUsPerReport, 0)} µs of CPU per report against ${fx(ig.bare.cpuUsPerReport, 0)} µs for parse-only ` +
          `(other processes: ${fx(ig.othersCores, 2)} cores). The report routes no longer go through fastify (the lean path, ` +
          'manager/routes/reports-lean.ts); what is left beyond the bare server is the depth scan and the validation of ~190 fields, ' +
          'the registry, components, alerts and recent-history work on each report, and the young-generation GC of what it keeps ' +
          "(each board's report text survives scavenges until the next report). See the issue 13 section above (and the profile below, with --profile).",
      );
    notes.push(
      ...profileNotes(
        meta.profiles?.ingest,
        'the ingest benchmark (both sides; the manager idles during the bare slices)',
      ),
    );
  } else if (r.errors.ingest) notes.push(`- **Ingest not measured**: ${r.errors.ingest}`);

  // --- round ---
  const rd = r.round;
  if (rd) {
    for (const s of rd.sizes) {
      if (!s.manager) {
        rows.push({
          what: `b. round N = ${s.n}`,
          measured: 'not measured',
          baseline: '—',
          ratio: '—',
          target: s.n === TARGET.roundN ? `≤ jitter + ${TARGET.roundSlackMs} ms, none lost` : '—',
          met: s.error ? `could not run: ${s.error}` : 'could not run',
        });
        continue;
      }
      const mg = s.manager;
      const b = s.bare;
      const target = s.n === TARGET.roundN;
      const bareTarget = s.n === TARGET.roundBareN;
      const bareOkRatio = b !== null && b !== undefined && mg.max <= TARGET.roundBareRatio * b.max && mg.lost === 0;
      rows.push({
        what: `b. round N = ${s.n}: p50 / p99 / max arrival, lost (jitter ${mg.jitterMs} ms)`,
        measured: `${fx(mg.p50, 0)} / ${fx(mg.p99, 0)} / ${fx(mg.max, 0)} ms, lost ${mg.lost}/${mg.stored + mg.lost}`,
        baseline: b ? `${fx(b.p50, 0)} / ${fx(b.p99, 0)} / ${fx(b.max, 0)} ms, lost ${b.lost}` : 'not measured',
        ratio: b ? `p99 ${fx(mg.p99 / b.p99, 2)}, max ${fx(mg.max / b.max, 2)}` : '—',
        target: target
          ? `max ≤ ${mg.jitterMs + TARGET.roundSlackMs} ms, none lost`
          : bareTarget
            ? `max ≤ ${TARGET.roundBareRatio} × bare, none lost`
            : '—',
        met: target
          ? yes(roundWithin(mg))
          : bareTarget
            ? yes(bareOkRatio)
            : roundWithin(mg)
              ? 'within jitter + 200 ms'
              : 'beyond jitter + 200 ms',
        load: Math.max(mg.othersCores, b?.othersCores ?? 0),
      });
      if (!roundWithin(mg) && (target || s.n > TARGET.roundN)) {
        const bareOk = b ? roundWithin(b) : false;
        const busy = mg.othersCores > 0.3;
        notes.push(
          `- **Round ${target ? 'gap' : 'figure'} at N = ${s.n}**: the last report was stored ${fx(mg.max - mg.jitterMs, 0)} ms after the ${mg.jitterMs} ms window closed ` +
            `(allowed ${TARGET.roundSlackMs} ms), lost ${mg.lost}; p99 ${fx(mg.p99, 0)} ms. ` +
            (b
              ? bareOk
                ? `The bare server, answered by the same fleet, finished within ${fx(b.max - b.jitterMs, 0)} ms of the window, so the excess is queueing in the manager: ` +
                  `at its ~${ig ? fx(ig.manager.cpuUsPerReport, 0) : '90'} µs of CPU per report, a window of ${s.n} resource reports plus the heartbeat round running alongside ` +
                  'comes close to one core, and on this 2-core machine the fleet process playing the agents takes the other ' +
                  `(fleet event-loop p99 ${fx(mg.fleetLoopP99, 0)} ms against the manager, ${fx(b.fleetLoopP99, 0)} ms against the bare server). ` +
                  (busy
                    ? `Other processes also used ${fx(mg.othersCores, 2)} cores during the manager's rounds, so part of the excess is the shared machine.`
                    : 'Real agents run on their own boards, so on a dedicated manager host this figure is an upper bound.')
                : `The bare server also took ${fx(b.max - b.jitterMs, 0)} ms past the window with the same fleet, so the fleet process and the shared machine ` +
                  `(other processes: ${fx(mg.othersCores, 2)} cores; fleet event-loop p99 ${fx(mg.fleetLoopP99, 0)} ms) limit this figure as much as the manager.`
              : ''),
        );
      }
      if (s.error) notes.push(`- Round N = ${s.n}: ${s.error}`);
    }
  } else if (r.errors.round) notes.push(`- **Round latency not measured**: ${r.errors.round}`);

  // --- footprint ---
  const fp = r.footprint;
  if (fp) {
    const a = fp.agent;
    const b = a.build['/resource'];
    const h = a.build['/heartbeat'];
    rows.push(
      {
        what: `c. agent RSS (mean; bundle, MUSTER_NODE_FLAGS=${fp.nodeFlags || 'none'})`,
        measured: mib(a.rssMean),
        baseline: `${mib(fp.idle.rssMean)} (idle node)`,
        ratio: fx(a.rssMean / fp.idle.rssMean, 2),
        target: `≤ 64 MiB and ≤ ${TARGET.agentRssIdleRatio} × idle`,
        met: yes(a.rssMean <= TARGET.agentRssBytes && a.rssMean <= TARGET.agentRssIdleRatio * fp.idle.rssMean),
      },
      {
        what: 'c. agent CPU (% of one core)',
        measured: `${fx(a.cpuPercent, 2)} %`,
        baseline: `${fx(fp.idle.cpuPercent, 2)} % (idle node)`,
        ratio: fp.idle.cpuPercent > 0 ? fx(a.cpuPercent / fp.idle.cpuPercent, 1) : 'idle ≈ 0',
        target: `≤ ${TARGET.agentCpuPercent} %`,
        met: yes(a.cpuPercent <= TARGET.agentCpuPercent),
      },
      {
        what: 'c. report build p50 / p99 (resource; heartbeat)',
        measured: `${fx(b.p50, 3)} / ${fx(b.p99, 3)} ms; ${fx(h.p50, 3)} / ${fx(h.p99, 3)} ms`,
        baseline: '—',
        ratio: '—',
        target: `p50 ≤ ${TARGET.buildP50Ms} ms`,
        met: yes(Math.max(b.p50Upper, h.p50Upper) <= TARGET.buildP50Ms),
      },
      {
        what: 'c. agent event-loop delay p99',
        measured: `${fx(a.eventLoopP99Ms, 2)} ms`,
        baseline: `${fx(fp.idleEventLoopP99Ms, 2)} ms (idle node, same ${EVENT_LOOP_RESOLUTION_MS} ms-resolution histogram)`,
        ratio: fx(a.eventLoopP99Ms / fp.idleEventLoopP99Ms, 2),
        target: `≤ ${TARGET.eventLoopP99Ms} ms`,
        met: yes(a.eventLoopP99Ms <= TARGET.eventLoopP99Ms),
      },
    );
    if (a.rssMean > TARGET.agentRssBytes || a.rssMean > TARGET.agentRssIdleRatio * fp.idle.rssMean) {
      const top = fp.importCosts
        .slice(0, 6)
        .map(([k, v]) => `${k} +${mib(v)}`)
        .join(', ');
      notes.push(
        `- **Agent RSS gap**: ${mib(a.rssMean)} (bundle, MUSTER_NODE_FLAGS=${fp.nodeFlags || 'none'}) against 64 MiB and ` +
          `${TARGET.agentRssIdleRatio} × the idle node = ${mib(TARGET.agentRssIdleRatio * fp.idle.rssMean)}; V8 heap used ${mib(fp.heapUsed)} of ${mib(fp.heapTotal)}. ` +
          `The same agent from the checkout's compiled modules without flags holds ${mib(fp.checkout.rssMean)}` +
          (Number.isFinite(fp.moduleFloorRss) ? ` (a node only importing them: ${mib(fp.moduleFloorRss)})` : '') +
          `: per-module cost of Node's ESM loader and the JIT. RSS each dependency adds to a bare node when imported alone ` +
          `(they overlap, so they do not sum): ${top}. See bench/RESULTS.md's agent section for the profile and what is left.`,
      );
    }
    if (a.cpuPercent > TARGET.agentCpuPercent) {
      const top = Object.entries(fp.collectorMsPerS).sort((x, y) => y[1] - x[1]);
      notes.push(
        `- **Agent CPU gap**: ${fx(a.cpuPercent, 2)} % of one core (target ${TARGET.agentCpuPercent} %). The silent agent, which hears no query ` +
          `and only samples, uses ${fx(fp.silent.cpuPercent, 2)} %, so answering ~1.2 queries/s costs ${a.cpuPercent - fp.silent.cpuPercent > 0.05 ? `about ${fx(a.cpuPercent - fp.silent.cpuPercent, 2)} %` : 'nothing measurable'}; ` +
          `collector wall time per second: ${top.map(([k, v]) => `${k} ${fx(v, 2)} ms`).join(', ')}.`,
      );
    }
    if (a.eventLoopP99Ms > TARGET.eventLoopP99Ms)
      notes.push(
        `- **Event-loop gap**: p99 ${fx(a.eventLoopP99Ms, 2)} ms (idle reference ${fx(fp.idleEventLoopP99Ms, 2)} ms on the same machine, ` +
          `other processes ${fx(fp.othersCores, 2)} cores): a busy shared machine delays every timer; compare with the idle reference.`,
      );
  } else if (r.errors.footprint) notes.push(`- **Agent footprint not measured**: ${r.errors.footprint}`);

  // --- scale ---
  const sc = r.scale;
  if (sc) {
    for (const p of sc.points) {
      if (p.error) {
        rows.push({
          what: `d. manager N = ${p.n}`,
          measured: 'not measured',
          baseline: '—',
          ratio: '—',
          target: '—',
          met: `could not run: ${p.error}`,
        });
        continue;
      }
      const g = growth(sc, p);
      const k = p.n / 1000;
      const startTarget = p.n === TARGET.startN;
      const startOk = p.startupMs <= p.startupTargetMs && p.startupFailed === 0;
      const restartOk = p.restartMs <= p.startupTargetMs && p.restartFailed === 0;
      rows.push(
        {
          what: `d. manager N = ${p.n}: RSS, heap used, CPU (per 1,000 boards)`,
          measured: `${mib(p.rss)}, ${mib(p.heapUsed)}, ${fx(p.cpuPercent, 1)} % (${mib(p.rss / k)}, ${mib(p.heapUsed / k)}, ${fx(p.cpuPercent / k, 1)} %)`,
          baseline: `N = ${sc.points[0]?.n}`,
          ratio: `RSS ×${fx(g.rssRatio, 2)}, heap ×${fx(g.heapRatio, 2)}, CPU ×${fx(g.cpuRatio, 2)}`,
          target: '— (growth)',
          met:
            p.stored < p.answered
              ? `**${p.answered - p.stored} answered 200 but not stored**`
              : `every 200 stored${p.failedInWindow ? `; ${p.failedInWindow} fleet failures in the window` : ''}`,
          load: p.othersCores,
        },
        {
          what: `d. start with ${p.n} new boards; restart with them known: all stored`,
          measured: `${fx(p.startupMs / 1000, 1)} s, ${p.startupFailed} failures; restart ${fx(p.restartMs / 1000, 1)} s, ${p.restartFailed} failures`,
          baseline: `${fx(p.startupTargetMs / 1000, 1)} s (2 rounds + ${p.jitterMs} ms window + 1 s)`,
          ratio: `${fx(p.startupMs / p.startupTargetMs, 2)}; ${fx(p.restartMs / p.startupTargetMs, 2)}`,
          target: startTarget ? 'within 2 rounds + window + 1 s, 0 failures' : '—',
          met: startTarget
            ? `start ${yes(startOk)}, restart ${yes(restartOk)}`
            : `start ${startOk ? 'within' : 'beyond'}, restart ${restartOk ? 'within' : 'beyond'}`,
          load: p.othersCores,
        },
      );
      if ((!startOk || !restartOk) && p.n >= TARGET.startN)
        notes.push(
          `- **Manager start at N = ${p.n}**: all online ${fx(p.startupMs / 1000, 1)} s after the process start with ${p.startupFailed} fleet failures ` +
            `(${JSON.stringify(p.failures)}); restart with the boards known ${fx(p.restartMs / 1000, 1)} s, ${p.restartFailed} failures; ` +
            `target ${fx(p.startupTargetMs / 1000, 1)} s, 0 failures. During the start the manager used ${fx(p.startupManagerCpu, 0)} % of a core ` +
            `and the fleet process ${fx(p.startupFleetCpu, 0)} % (fleet event-loop p99 ${fx(p.startupFleetLoopP99, 0)} ms; its reports left late by p99 ${fx(p.startupFleetSendLagP99, 0)} ms), other processes ` +
            `${fx(p.othersCores, 2)} cores; the kernel dropped ${p.startupListenOverflows} connections for a full accept queue ` +
            `(restart: ${p.restartListenOverflows}): ${
              p.startupFleetCpu >= 90
                ? 'the fleet process, one core playing every agent, ran out of CPU first: its reports left late and timed out at the agents.'
                : p.startupManagerCpu >= 90
                  ? "the manager's event loop ran out of CPU first (one core): reports queued in its accept and socket buffers past the agents' 2 s timeout."
                  : p.startupListenOverflows > 0 || p.restartListenOverflows > 0
                    ? 'neither process saturated a core on average; the accept queue overflowed (docs/operations.md "Sizing": raise net.core.somaxconn).'
                    : "neither process saturated a core on average and no accept queue overflowed: both sides work in bursts, the manager's (every new board's first heartbeat, then its first resource report with its components' rows and history, each within a 1 s reply window, on code not yet optimised) and the fleet's (its report timers fire late, as said), and requests queue past the agent's 2 s limit in them."
            }`,
        );
    }
    const last = [...sc.points].reverse().find((p) => !p.error);
    if (last && sc.points.length > 1 && last !== sc.points[0]) {
      const g = growth(sc, last);
      rows.push({
        what: `d. manager memory per 1,000 boards held (marginal, N = ${sc.points[0]?.n} → ${last.n}), 30-min history on`,
        measured: `RSS ${mib(g.rssPerExtraKFull)} with the history rings full (${mib(g.rssPerExtraK)} measured + ${mib(last.ringToFull * 1000)} the rings grow by over 30 min), heap used ${mib(g.heapPerExtraK)}`,
        baseline: `N = ${sc.points[0]?.n}`,
        ratio: '—',
        target: `≤ ${mib(TARGET.rssPerKBytes)}`,
        met: yes(g.rssPerExtraKFull <= TARGET.rssPerKBytes),
        load: last.othersCores,
      });
    }
    notes.push(
      ...profileNotes(meta.profiles?.scale, 'the scale benchmark (start, steady state and restart, every size)'),
    );
  } else if (r.errors.scale) notes.push(`- **Manager scale not measured**: ${r.errors.scale}`);

  // --- placement ---
  const pl = r.placement;
  if (pl) {
    rows.push(
      {
        what: `e. placement decisions/s, ${pl.boards} boards, binpack (one core)`,
        measured: `${fx(pl.rates.binpack, 0)}/s (${fx(pl.usPerDecision, 0)} µs each)`,
        baseline: `${fx(pl.bareScans, 0)} bare registry passes/s`,
        ratio: `${fx(pl.rates.binpack / pl.bareScans, 2)} decisions per bare pass`,
        target: `≥ ${TARGET.placementsPerS}/s`,
        met: yes(pl.rates.binpack >= TARGET.placementsPerS),
      },
      {
        what: 'e. placement decisions/s: spread; 2 constraints + distinct',
        measured: `${fx(pl.rates.spread, 0)}/s; ${fx(pl.rates.constrained, 0)}/s`,
        baseline: `${fx(pl.bareScans, 0)} bare passes/s`,
        ratio: `${fx(pl.rates.spread / pl.bareScans, 2)}; ${fx(pl.rates.constrained / pl.bareScans, 2)}`,
        target: '—',
        met: 'context',
      },
      {
        what: `e. reconcile of ${pl.instances} instances (${pl.components} components), steady state`,
        measured: `${fx(pl.reconcileMs, 1)} ms CPU per pass, ${pl.reconcileActions} actions`,
        baseline: '—',
        ratio: `${fx(pl.reconcileMs / TARGET.reconcileCpuMs, 3)} of the bound`,
        target: `≤ ${TARGET.reconcileCpuMs} ms CPU`,
        met: yes(pl.reconcileMs <= TARGET.reconcileCpuMs && pl.reconcileActions === 0),
      },
    );
    if (pl.rates.binpack < TARGET.placementsPerS)
      notes.push(
        `- **Placement gap**: ${fx(pl.rates.binpack, 0)} decisions/s against ${TARGET.placementsPerS}: each decision visits every one of the ${pl.boards} nodes ` +
          `(${fx((pl.usPerDecision * 1000) / pl.boards, 0)} ns per node: the cached view's checks, the resource sums and a score); a shared machine moves this figure.`,
      );
  } else if (r.errors.placement) notes.push(`- **Placement not measured**: ${r.errors.placement}`);
  // --- exec ---
  const ex = r.exec;
  if (ex) {
    const slack = ex.storedMs - ex.commandMs;
    rows.push(
      {
        what: `e. exec fan-out to ${ex.n} boards: all results stored, beyond the command's ${ex.commandMs} ms; lost`,
        measured: `${fx(slack, 0)} ms, lost ${ex.lost}/${ex.n}`,
        baseline: `${fx(ex.bareMs - ex.commandMs, 0)} ms (the same calls direct, nothing stored)`,
        ratio: fx((ex.storedMs - ex.commandMs) / Math.max(1, ex.bareMs - ex.commandMs), 2),
        target: `≤ ${TARGET.execStoredSlackMs} ms, none lost`,
        met: yes(slack <= TARGET.execStoredSlackMs && ex.lost === 0),
      },
      {
        what: 'e. exec fan-out: manager CPU per board',
        measured: `${fx(ex.cpuUsPerBoard, 0)} µs`,
        baseline: `${fx(ex.bareCpuUsPerBoard, 0)} µs (direct calls)`,
        ratio: fx(ex.cpuUsPerBoard / Math.max(1, ex.bareCpuUsPerBoard), 2),
        target: '— (stated)',
        met: 'context',
      },
      {
        what: `e. exec live lines at ${ex.line.rate}/s: board → SSE reader p99`,
        measured: `${fx(ex.line.p99, 1)} ms`,
        baseline: `${fx(ex.lineBare.p99, 1)} ms (direct long poll)`,
        ratio: fx(ex.line.p99 / Math.max(1, ex.lineBare.p99), 2),
        target: `≤ ${TARGET.execLineP99Ms} ms`,
        met: yes(ex.line.p99 <= TARGET.execLineP99Ms && ex.line.count > 0),
      },
    );
  } else if (r.errors.exec) notes.push(`- **Exec fan-out not measured**: ${r.errors.exec}`);

  // --- WebSocket link scale ---
  const ws = r.wsscale;
  if (ws) {
    const x = ws.restart;
    rows.push(
      {
        what: `f. WebSocket link, ${ws.n} nodes heartbeating every ${fx(ws.heartbeatMs / 1000, 0)} s: memory per connection; CPU`,
        measured: `RSS ${fx(ws.rssPerConnection / 1024, 1)} KiB, heap ${fx(ws.heapPerConnection / 1024, 1)} KiB; ${fx(ws.steady.cpuPercent, 1)} % of one core`,
        baseline: `the idle manager (RSS ${mib(ws.baseline.rss)})`,
        ratio: '—',
        target: '— (stated)',
        met: 'context',
      },
      {
        what: `f. WebSocket link: manager restart with ${ws.n} linked nodes, all registered again; reconnect attempts/s`,
        measured: `${fx(x.allBackMs / 1000, 1)} s; peak ${x.duePeakPerSecond}/s`,
        baseline: `the backoff's peak with this fleet's measured delays ${x.fleetModelPeakPerSecond}/s (ideal ${x.modelPeakPerSecond}/s; downtime ${fx(x.downtimeMs / 1000, 1)} s)`,
        ratio: fx(x.duePeakPerSecond / Math.max(1, x.fleetModelPeakPerSecond), 2),
        target: `≤ ${TARGET.wsAllBackMs / 1000} s; within the backoff's bound`,
        met: yes(x.allBackMs <= TARGET.wsAllBackMs && x.duePeakPerSecond <= x.fleetModelPeakPerSecond * 1.1),
      },
    );
  } else if (r.errors.wsscale) notes.push(`- **WebSocket link scale not measured**: ${r.errors.wsscale}`);

  // --- files ---
  const fpu = r.files;
  if (fpu) {
    const agentGrowth = Math.max(...fpu.rss.agents.map((a) => a.max - a.idle));
    const mgrGrowth = fpu.rss.manager.max - fpu.rss.manager.idle;
    rows.push(
      {
        what: `g. files push: ${mib(fpu.bytes)} to ${fpu.agents} agents in namespaces, aggregate throughput`,
        measured: `${fx(fpu.muster.mibPerS, 0)} MiB/s`,
        baseline: `${fx(fpu.bare.mibPerS, 0)} MiB/s (plain node:http PUTs, same concurrency)`,
        ratio: fx(fpu.ratio, 2),
        target: `≥ ${FILES_TARGET.ratio}`,
        met: yes(fpu.ratio >= FILES_TARGET.ratio && fpu.hashesOk),
      },
      {
        what: 'g. files push: RSS growth over idle, manager / largest agent',
        measured: `+${mib(mgrGrowth)} / +${mib(agentGrowth)}`,
        baseline: `idle ${mib(fpu.rss.manager.idle)} / ${mib(Math.max(...fpu.rss.agents.map((a) => a.idle)))}`,
        ratio: '—',
        target: `each ≤ +${mib(FILES_TARGET.rssSlackBytes)}`,
        met: yes(mgrGrowth <= FILES_TARGET.rssSlackBytes && agentGrowth <= FILES_TARGET.rssSlackBytes),
      },
    );
  } else if (r.errors.files) notes.push(`- **Files push not measured**: ${r.errors.files}`);

  const sections: string[] = [];
  if (ig) sections.push('### a. Ingest', '```', formatIngest(ig), '```');
  if (rd) sections.push('### b. Round latency', '```', formatRound(rd), '```');
  if (fp) sections.push('### c. Agent footprint', '```', formatFootprint(fp), '```');
  if (ex) sections.push('### e. Exec fan-out and live output', '```', formatExecFanout(ex), '```');
  if (sc) {
    sections.push('### d. Manager scale', '```', formatScale(sc), '```');
    const last = sc.points[sc.points.length - 1];
    if (last && !last.error && sc.points.length > 1) {
      const g = growth(sc, last);
      sections.push(
        '',
        `Marginal cost per 1,000 extra boards (N = ${sc.points[0]?.n} → ${last.n}): RSS ${mib(g.rssPerExtraK)}, ` +
          `heap used ${mib(g.heapPerExtraK)}, CPU ${fx(g.cpuPerExtraK, 1)} % of one core. Heap used is sampled live ` +
          '(garbage not yet collected included); RSS includes one keep-alive socket per board.',
      );
    }
  }

  if (pl) sections.push('### e. Placement and reconcile', '```', formatPlacement(pl), '```');
  if (ws) sections.push('### f. WebSocket node link at scale', '```', formatWsScale(ws), '```');
  if (fpu) sections.push('### g. Files push', '```', formatFilesPush(fpu), '```');

  return `# muster benchmark results

Written by \`make bench\` (\`bench/run.ts\`); see bench/README.md for what each figure means.

## Machine and run

| | |
|---|---|
| Date | ${meta.started.toISOString()} (run took ${fx(meta.ms / 60000, 1)} min) |
| CPU | ${m.cpu}, ${m.cores} cores |
| Memory | ${m.memory} |
| Node | ${m.node} |
| Kernel | ${m.kernel} |
| Open-file limit | ${meta.fileLimit} (raised with prlimit when lower; one socket per simulated agent on each side) |
| muster binary | ${bin.kind}: ${bin.note} |
| Fleet self-check | ${meta.check} |
| Other load | other processes used ${fx(meta.quietOthers, 2)} cores when the run started; each benchmark below states its own figure |

The machine is shared (other engineers' tests run on it), so absolute figures move between runs; every
ratio compares against a baseline measured in the same run, and the ingest sides alternate in 2 s slices.

## Summary

${table(rows)}

## Gaps and what limits them

${notes.length ? notes.join('\n') : 'Every target was met.'}

## Details

${sections.join('\n')}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
    },
  });
  // --profile: every manager started by the ingest and scale benchmarks writes a CPU profile
  // (node --cpu-prof) into a directory of its own under the system's temporary directory, never
  // in the repository; RESULTS.md summarises the top entries next to the gaps.
  const profileRoot = values.profile ? mkdtempSync(path.join(os.tmpdir(), 'muster-bench-prof-')) : undefined;
  const profiles: Partial<Record<BenchName, string>> = {};
  const profiling = (name: BenchName) => {
    if (!profileRoot) return;
    profiles[name] = path.join(profileRoot, name);
    process.env.MUSTER_BENCH_PROFILE_DIR = profiles[name];
  };
  const notProfiling = () => {
    delete process.env.MUSTER_BENCH_PROFILE_DIR;
  };
  const only = new Set((values.only?.split(',') ?? BENCHES) as BenchName[]);
  const quick = values.quick;
  const out = values.out ?? (quick ? undefined : path.join(ROOT, 'bench', 'RESULTS.md'));
  const started = new Date();
  const t0 = performance.now();

  // Figures are compared with baselines of this run only, and with RESULTS.md of earlier runs:
  // both sides must be the pinned runtime and the current sources (docs/operations.md#runtime).
  const pinned = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(path.join(ROOT, 'scripts', 'runtime.env'), 'utf8'))?.[1];
  if (pinned && process.version !== `v${pinned}`) {
    throw new Error(
      `bench runs on ${process.version}, not the pinned runtime v${pinned} (scripts/runtime.env): ` +
        'run it through make bench (scripts/node.sh) so that the figures compare',
    );
  }
  if (musterBinary().kind === 'source') {
    throw new Error(
      'no build of the current sources could be made (dist/ is stale and the private build failed): refusing to measure an out-of-date or tsx-loaded muster',
    );
  }
  const c = selfCheck();
  const check = `bodies pass common/protocol.ts (HeartbeatBody, ResourceBody via common/validate.ts compile); heartbeat ${c.heartbeatBytes} B, resource ${c.resourceBytes.min}–${c.resourceBytes.max} B`;
  progress(`fleet self-check: ${check}`);
  const fileLimit = ensureOpenFiles(16_384);
  progress(`open-file limit ${openFileLimit()}; muster binary: ${musterBinary().kind}`);
  const quietOthers = values['no-wait'] ? 0 : await waitForQuiet(0.3, 90_000);

  const r: Results = { errors: {} };
  const attempt = async <T>(name: BenchName, fn: () => Promise<T>, fmt: (x: T) => string): Promise<T | undefined> => {
    if (!only.has(name)) return undefined;
    try {
      const x = await fn();
      process.stdout.write(`${fmt(x)}\n\n`);
      return x;
    } catch (err) {
      r.errors[name] = (err as Error).message.split('\n')[0];
      progress(`${name} failed: ${(err as Error).stack ?? (err as Error).message}`);
      return undefined;
    }
  };
  profiling('ingest');
  r.ingest = await attempt('ingest', () => runIngest({ seconds: quick ? 4 : 10 }), formatIngest);
  notProfiling();
  r.round = await attempt(
    'round',
    () => runRound(quick ? { sizes: [100, 1000], rounds: 2 } : { sizes: [100, 1000, 5000], rounds: 3 }),
    formatRound,
  );
  r.footprint = await attempt('footprint', () => runFootprint({ seconds: quick ? 20 : 60 }), formatFootprint);
  profiling('scale');
  r.scale = await attempt(
    'scale',
    () => runScale(quick ? { sizes: [100, 1000], seconds: 8 } : { sizes: [100, 1000, 5000, 10_000], seconds: 20 }),
    formatScale,
  );
  notProfiling();

  r.placement = await attempt(
    'placement',
    () => runPlacement(quick ? { decisions: 5000, instances: 300 } : { decisions: 20_000, instances: 1000 }),
    formatPlacement,
  );
  r.exec = await attempt('exec', () => runExecFanout({ n: 1000, lineSeconds: quick ? 2 : 5 }), formatExecFanout);
  r.wsscale = await attempt(
    'wsscale',
    () => runWsScale(quick ? { n: 1000, heartbeatMs: 5000 } : { n: 5000, heartbeatMs: 30_000 }),
    formatWsScale,
  );
  r.files = await attempt(
    'files',
    () => runFilesPush(quick ? { sizeMiB: 64, agents: 8, rounds: 1 } : { sizeMiB: 256, agents: 8, rounds: 2 }),
    formatFilesPush,
  );

  const md = render(r, { started, ms: performance.now() - t0, quietOthers, fileLimit, check, profiles });
  if (out) {
    writeFileSync(out, md);
    progress(`wrote ${path.relative(process.cwd(), out)}`);
  } else process.stdout.write(md);
}

main()
  .then(() => process.exit(0))
  .catch((err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
