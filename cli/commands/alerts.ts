/**
 * Alerts over the manager's REST API (GET /api/v1/alerts, /api/v1/alert-rules, /api/v1/metrics-catalog):
 *   muster alerts [list] [--open] [--node id] [--since T] [--kind k] [--severity s] [--limit N] [--before ID] [--all]
 *   muster alerts rules                         the threshold rules, from the config file and the API
 *   muster alerts rule set <name> --metric M --op '>' --threshold N [--for 30s] [--severity s] [--disable]
 *   muster alerts rule rm <name>
 *   muster alerts metrics                       the metric names a rule may use
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  ALERT_KINDS,
  type AlertKind,
  type AlertView,
  RULE_NAME_PATTERN,
  RULE_OPS,
  type RuleOp,
  type RuleView,
} from '../../common/api/alerts.js';
import { SEVERITIES, type Severity } from '../../common/api/primitives.js';
import { parseDuration } from '../../common/time.js';
import { api, managerUrl } from '../client.js';
import { id, limit, listPages, MAX_LIMIT, moreHint, nodeId, since, terminalColumns } from '../list.js';
import { type CatalogMetric, describeRule, renderAlerts, renderMetrics, renderRules } from '../render.js';

/** `--op`: the rule's comparison, or a word for it that needs no shell quoting. */
const OP_WORDS: Record<string, RuleOp> = { gt: '>', ge: '>=', gte: '>=', lt: '<', le: '<=', lte: '<=' };

function op(v: string): RuleOp {
  const t = v.trim();
  const o = (RULE_OPS as readonly string[]).includes(t) ? (t as RuleOp) : OP_WORDS[t.toLowerCase()];
  if (!o) throw new InvalidArgumentError("expected '>', '>=', '<', '<=' (quoted in a shell) or gt, ge, lt, le");
  return o;
}

function threshold(v: string): number {
  const n = v.trim() === '' ? Number.NaN : Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number in the metric's unit, e.g. 85 or 0.5");
  return n;
}

function hold(v: string): number {
  let ms: number;
  try {
    ms = parseDuration(v, '--for');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--for: /, ''));
  }
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError('too long');
  return ms;
}

function ruleName(v: string): string {
  if (!new RegExp(RULE_NAME_PATTERN).test(v))
    throw new InvalidArgumentError('expected a lower-case name of letters, digits and _ (e.g. gpu_hot), at most 64');
  return v;
}

const severityOption = (help: string) => new Option('--severity <severity>', help).choices(SEVERITIES);

interface ListOptions {
  open?: boolean;
  resolved?: boolean;
  node?: string;
  since?: string;
  kind?: AlertKind;
  severity?: Severity;
  limit?: number;
  before?: number;
  all?: boolean;
  json?: boolean;
}

/** The flags of a list call that select what is listed, for the `more:` line and the query. */
function selection(o: ListOptions): { args: (string | number)[]; query: URLSearchParams } {
  const args: (string | number)[] = [];
  const query = new URLSearchParams();
  if (o.open) {
    args.push('--open');
    query.set('open', 'true');
  }
  if (o.resolved) {
    args.push('--resolved');
    query.set('open', 'false');
  }
  for (const k of ['node', 'since', 'kind', 'severity', 'limit'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    args.push(`--${k}`, v);
    query.set(k, String(v));
  }
  return { args, query };
}

/** Registers `alerts` (list) with its `rules`, `rule set|rm` and `metrics` subcommands on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);

  const alerts = p
    .command('alerts')
    .description(
      'list alerts, newest first (alerts list); manage the threshold rules (alerts rules, alerts rule set|rm)',
    )
    .addHelpText(
      'after',
      '\n`muster alerts [options]` is `muster alerts list [options]`: see `muster alerts list --help`.',
    );

  // The list is the default subcommand: `muster alerts --open` is `muster alerts list --open`. So
  // `alerts` itself has no options, and a subcommand's --json or --severity stays the subcommand's.
  alerts
    .command('list', { isDefault: true })
    .description('list alerts, newest first (the default: `muster alerts [options]`)')
    .addOption(new Option('--open', 'only open alerts').conflicts('resolved'))
    .option('--resolved', 'only resolved alerts')
    .option('--node <id>', 'only this node (box-slot-cpu)', nodeId)
    .option('--since <time>', 'only alerts seen since: 30m, 2h, 7d, an ISO date-time, ms since the epoch', since)
    .addOption(new Option('--kind <kind>', 'only this kind').choices(ALERT_KINDS))
    .addOption(severityOption('only this severity'))
    .option('--limit <n>', `alerts per page, 1-${MAX_LIMIT} (default 50; with --all ${MAX_LIMIT})`, limit)
    .option('--before <id>', 'the page of alerts older than this id (from the `more:` line)', id)
    .option('--all', 'follow the pages to the oldest alert')
    .option('--json', 'print { alerts, next } as JSON')
    .action(async (o: ListOptions) => {
      const { args, query } = selection(o);
      if (o.all && o.limit === undefined) query.set('limit', String(MAX_LIMIT));
      const page = await listPages<AlertView>(base(), '/api/v1/alerts', 'alerts', query, o.before, o.all === true);
      if (o.json) {
        console.log(JSON.stringify({ alerts: page.items, next: page.next }, null, 2));
        return;
      }
      console.log(renderAlerts(page.items, { columns: terminalColumns() }));
      if (page.next !== null) console.log(`\n${moreHint(['alerts'], args, page.next, p.opts().manager)}`);
    });

  alerts
    .command('rules')
    .description('list the threshold rules: from the config file (source config) and the API (source api)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<{ rules: RuleView[] }>(base(), 'GET', '/api/v1/alert-rules');
      console.log(o.json ? JSON.stringify(r, null, 2) : renderRules(r.rules));
    });

  const rule = alerts.command('rule').description('add, change or remove a threshold rule kept by the manager');

  rule
    .command('set')
    .description('add or replace a rule: it fires when `metric op threshold` has held for --for on a node')
    .argument('<name>', 'rule name: lower-case letters, digits and _, e.g. gpu_hot', ruleName)
    .requiredOption('--metric <metric>', 'a metric from `muster alerts metrics`, e.g. gpu.temperature')
    .requiredOption('--op <op>', "comparison: '>', '>=', '<', '<=' (quote them) or gt, ge, lt, le", op)
    .requiredOption('--threshold <n>', "in the metric's unit (%, °C, V, A, W, bytes)", threshold)
    .option('--for <duration>', 'hold time: 500ms, 30s, 5m (default 0: the first report that crosses fires)', hold)
    .addOption(severityOption('severity; the manager makes it warning when left out'))
    .option('--disable', 'keep the rule but do not evaluate it')
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        name: string,
        o: {
          metric: string;
          op: RuleOp;
          threshold: number;
          for?: number;
          severity?: Severity;
          disable?: boolean;
          json?: boolean;
        },
      ) => {
        const body = {
          metric: o.metric,
          op: o.op,
          threshold: o.threshold,
          ...(o.for !== undefined ? { for_ms: o.for } : {}),
          ...(o.severity !== undefined ? { severity: o.severity } : {}),
          enabled: o.disable !== true,
        };
        const r = await api<{ rule: RuleView }>(base(), 'PUT', `/api/v1/alert-rules/${encodeURIComponent(name)}`, body);
        console.log(o.json ? JSON.stringify(r, null, 2) : describeRule(r.rule));
      },
    );

  rule
    .command('rm')
    .description('remove a rule added with `rule set` (rules from the config file change there)')
    .argument('<name>', 'rule name', ruleName)
    .action(async (name: string) => {
      await api(base(), 'DELETE', `/api/v1/alert-rules/${encodeURIComponent(name)}`, undefined);
      console.log(`removed rule ${name}`);
    });

  alerts
    .command('metrics')
    .description('list the metric names a threshold rule may use, with their units')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<{ metrics: CatalogMetric[] }>(base(), 'GET', '/api/v1/metrics-catalog');
      console.log(o.json ? JSON.stringify(r, null, 2) : renderMetrics(r.metrics, { columns: terminalColumns() }));
    });
}
