/**
 * Test hosts in Linux network namespaces: a private LAN of namespaces joined by one bridge, with
 * link cuts, netem faults and nftables query loss. Nothing is created in the root namespace, so no
 * test traffic can leave the machine. Needs root and iproute2 (`ip`, `tc`); loss needs `nft`.
 */
import { execFileSync } from 'node:child_process';

/** Options of {@link createLan}. */
export interface LanOptions {
  /** Prefix of every namespace name: `${prefix}-br` and `${prefix}-${host}`. */
  prefix: string;
  /** Host names, in address order; each is also the bridge-side veth name (at most 15 characters). */
  hosts: string[];
  /** IPv4 subnet `a.b.c.d/len` the hosts are numbered from (host i gets address i + 1); default 198.18.0.0/24. */
  subnet?: string;
}

/** A LAN of namespaced hosts on one bridge, made by {@link createLan}. */
export interface Lan {
  /** The namespace prefix. */
  readonly prefix: string;
  /** The host names, in address order. */
  readonly hosts: readonly string[];
  /** The namespace holding the bridge `br0`. */
  readonly bridgeNs: string;
  /** The namespace name of `host` (for `ip netns exec`). @throws for an unknown host */
  ns(host: string): string;
  /** The IPv4 address of `host` on its `eth0` (without the prefix length). @throws for an unknown host */
  ip(host: string): string;
  /** Cuts `host` off the LAN: sets its bridge-side veth down (its `eth0` loses carrier). */
  cut(host: string): void;
  /** Undoes {@link Lan.cut}: sets the bridge-side veth up again. */
  restore(host: string): void;
  /**
   * Applies netem on the bridge-side veth of `host` (traffic from the LAN towards the host):
   * `tc qdisc replace dev <veth> root netem <args>`, e.g. `['delay', '200ms']` or `['loss', '30%']`.
   */
  netem(host: string, args: string[]): void;
  /** Removes the netem qdisc of `host`, if any. */
  clearNetem(host: string): void;
  /**
   * Drops `percent` % of the UDP datagrams to port `port` (default 3980, the multicast queries)
   * arriving at `host`, at random, with an nftables rule in the host's own namespace (input hook,
   * table `inet muster_loss`). Replaces an earlier loss rule of the host. Works without netem.
   * @param percent integer 0..100
   */
  loss(host: string, percent: number, port?: number): void;
  /** Removes the loss rule of `host`, if any. */
  clearLoss(host: string): void;
  /** Datagrams to the loss port `host` has seen and dropped since {@link Lan.loss}; null without a rule. */
  lossCounters(host: string): LossCounters | null;
  /** Deletes every namespace this LAN made (and with them the bridge and veths). Idempotent. */
  destroy(): void;
}

/** What a loss rule counted: datagrams to the port that arrived, and those it dropped. */
export interface LossCounters {
  seen: number;
  dropped: number;
}

/** The nftables table that holds a host's loss rule. */
export const LOSS_TABLE = 'muster_loss';

/** The multicast query port (docs/protocol.md §1 Query), the default target of {@link Lan.loss}. */
export const QUERY_PORT = 3980;

/** Default subnet: the benchmarking range (RFC 2544), never routed on real networks. */
export const DEFAULT_SUBNET = '198.18.0.0/24';

const MAX_IFNAME = 15;

/**
 * Runs `cmd args` and returns its stdout.
 * @throws an Error naming the command, its exit status and its stderr
 */
export function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
  } catch (err) {
    const e = err as Error & { status?: number | null; signal?: string | null; stderr?: string | Buffer };
    const stderr = String(e.stderr ?? '').trim();
    const how = e.status != null ? `exit ${e.status}` : e.signal ? `signal ${e.signal}` : e.message;
    throw new Error(`command failed: ${cmd} ${args.join(' ')} (${how})${stderr ? `: ${stderr}` : ''}`);
  }
}

/** The names of all network namespaces (`ip netns list`). */
export function listNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Deletes namespace `name`; a namespace that does not exist is not an error. */
export function deleteNamespace(name: string): void {
  try {
    run('ip', ['netns', 'delete', name]);
  } catch (err) {
    if (!/No such file|does not exist|Invalid netns name/i.test((err as Error).message)) throw err;
  }
}

/**
 * A reason when the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), for `needs()`: probes by
 * adding netem to `lo` of a throw-away namespace. False when netem works.
 */
export function missingNetem(): string | false {
  const probe = `netem-probe-${process.pid}`;
  try {
    run('ip', ['netns', 'add', probe]);
    run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    return false;
  } catch (err) {
    return `needs tc netem (kernel CONFIG_NET_SCH_NETEM): ${(err as Error).message}`;
  } finally {
    try {
      deleteNamespace(probe);
    } catch {
      // nothing to clean up
    }
  }
}

/**
 * Installs in namespace `ns` a random drop of `percent` % of incoming UDP datagrams to `port`:
 * `nft add table inet muster_loss; add chain ... { type filter hook input priority 0; }; add rule
 * ... udp dport <port> numgen random mod 100 < <percent> drop`, in one transaction, with counters.
 * An earlier rule of the namespace is replaced.
 * @throws on a bad percent or port, or when nft fails
 */
export function addLoss(ns: string, percent: number, port = QUERY_PORT): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100)
    throw new Error(`loss ${percent}: expected an integer percentage 0..100`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`loss port ${port}: expected 1..65535`);
  removeLoss(ns);
  const t = `inet ${LOSS_TABLE}`;
  run('ip', [
    'netns',
    'exec',
    ns,
    'nft',
    [
      `add table ${t}`,
      `add chain ${t} in { type filter hook input priority 0; }`,
      `add rule ${t} in udp dport ${port} counter comment "seen"`,
      `add rule ${t} in udp dport ${port} numgen random mod 100 < ${percent} counter drop comment "dropped"`,
    ].join('; '),
  ]);
}

/** Removes the loss table of namespace `ns`; none is not an error. */
export function removeLoss(ns: string): void {
  try {
    run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', LOSS_TABLE]);
  } catch (err) {
    if (!/No such file or directory/i.test((err as Error).message)) throw err;
  }
}

/** The counters of the loss rule of namespace `ns`, or null when it has none. */
export function readLoss(ns: string): LossCounters | null {
  let text: string;
  try {
    text = run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', LOSS_TABLE]);
  } catch (err) {
    if (/No such file or directory/i.test((err as Error).message)) return null;
    throw err;
  }
  type Expr = { counter?: { packets: number } };
  type Item = { rule?: { comment?: string; expr?: Expr[] } };
  const items = (JSON.parse(text) as { nftables: Item[] }).nftables;
  const packets = (comment: string): number => {
    const rule = items.find((i) => i.rule?.comment === comment)?.rule;
    return rule?.expr?.find((e) => e.counter)?.counter?.packets ?? 0;
  };
  return { seen: packets('seen'), dropped: packets('dropped') };
}

/**
 * A reason when nftables cannot drop datagrams at random (no `nft`, or a kernel without nf_tables
 * or its numgen expression), for `needs()`: probes with a loss rule in a throw-away namespace.
 * False when it works.
 */
export function missingNft(): string | false {
  const probe = `nft-probe-${process.pid}`;
  try {
    run('ip', ['netns', 'add', probe]);
    addLoss(probe, 10);
    if (readLoss(probe) === null) return 'needs nftables: the loss rule was not installed';
    return false;
  } catch (err) {
    return `needs nftables (nft, kernel nf_tables with numgen): ${(err as Error).message}`;
  } finally {
    try {
      deleteNamespace(probe);
    } catch {
      // nothing to clean up
    }
  }
}

function parseSubnet(subnet: string): { base: number; len: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const len = m ? Number(m[5]) : Number.NaN;
  if (!m || octets.some((o) => o > 255) || len < 1 || len > 30)
    throw new Error(`subnet ${JSON.stringify(subnet)}: expected a.b.c.d/len with len 1..30`);
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - len);
  return { base: addr - (addr % size), len };
}

const dotted = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/**
 * Builds a LAN: namespace `${prefix}-br` with bridge `br0` (multicast snooping off, so multicast
 * floods to every port), and per host a namespace `${prefix}-${host}` whose `eth0` is one end of a
 * veth pair, the other end (named after the host) enslaved to the bridge. Each host gets an
 * address from `subnet` and a route `224.0.0.0/4 dev eth0`; `lo` is up everywhere. Stale
 * namespaces with the same prefix (a crashed run) are deleted first. On failure, everything made
 * so far is deleted again.
 * @throws when a command fails (the message names it and its stderr), or on bad options
 */
export function createLan(opts: LanOptions): Lan {
  const { prefix, hosts } = opts;
  const { base, len } = parseSubnet(opts.subnet ?? DEFAULT_SUBNET);
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`lan prefix ${JSON.stringify(prefix)}: bad characters`);
  if (hosts.length === 0) throw new Error('lan: no hosts');
  if (new Set(hosts).size !== hosts.length) throw new Error(`lan: duplicate host names in ${hosts.join(', ')}`);
  if (hosts.length > 2 ** (32 - len) - 2) throw new Error(`lan: ${hosts.length} hosts do not fit in /${len}`);
  for (const h of hosts) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(h) || h.length > MAX_IFNAME || h === 'br0' || h === 'lo')
      throw new Error(`lan host ${JSON.stringify(h)}: must be a valid interface name (1..${MAX_IFNAME} chars)`);
  }

  const bridgeNs = `${prefix}-br`;
  const nsOf = new Map(hosts.map((h) => [h, `${prefix}-${h}`]));
  const ipOf = new Map(hosts.map((h, i) => [h, dotted(base + i + 1)]));
  const made: string[] = [];

  const known = (host: string): string => {
    const ns = nsOf.get(host);
    if (!ns) throw new Error(`lan ${prefix}: unknown host ${JSON.stringify(host)} (hosts: ${hosts.join(', ')})`);
    return host;
  };
  const destroy = () => {
    while (made.length > 0) deleteNamespace(made.pop() as string);
  };
  const addNs = (name: string) => {
    run('ip', ['netns', 'add', name]);
    made.push(name);
    run('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
  };

  for (const stale of listNamespaces()) if (stale.startsWith(`${prefix}-`)) deleteNamespace(stale);

  try {
    addNs(bridgeNs);
    run('ip', ['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0']);
    run('ip', ['-n', bridgeNs, 'link', 'set', 'dev', 'br0', 'up']);
    for (const h of hosts) {
      const ns = nsOf.get(h) as string;
      addNs(ns);
      // Both ends are made inside the namespaces: nothing ever appears in the root namespace.
      run('ip', ['-n', bridgeNs, 'link', 'add', 'name', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      run('ip', ['-n', bridgeNs, 'link', 'set', 'dev', h, 'master', 'br0']);
      run('ip', ['-n', bridgeNs, 'link', 'set', 'dev', h, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${ipOf.get(h)}/${len}`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'dev', 'eth0', 'up']);
      run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    }
  } catch (err) {
    try {
      destroy();
    } catch {
      // report the first failure, not the cleanup's
    }
    throw err;
  }

  return {
    prefix,
    hosts: [...hosts],
    bridgeNs,
    ns: (host) => nsOf.get(known(host)) as string,
    ip: (host) => ipOf.get(known(host)) as string,
    cut: (host) => void run('ip', ['-n', bridgeNs, 'link', 'set', 'dev', known(host), 'down']),
    restore: (host) => void run('ip', ['-n', bridgeNs, 'link', 'set', 'dev', known(host), 'up']),
    netem: (host, args) =>
      void run('tc', ['-n', bridgeNs, 'qdisc', 'replace', 'dev', known(host), 'root', 'netem', ...args]),
    clearNetem: (host) => {
      try {
        run('tc', ['-n', bridgeNs, 'qdisc', 'del', 'dev', known(host), 'root']);
      } catch (err) {
        // No root qdisc to delete: already clear.
        if (!/handle of zero|No such file|Invalid handle|could not find/i.test((err as Error).message)) throw err;
      }
    },
    loss: (host, percent, port) => addLoss(nsOf.get(known(host)) as string, percent, port),
    clearLoss: (host) => removeLoss(nsOf.get(known(host)) as string),
    lossCounters: (host) => readLoss(nsOf.get(known(host)) as string),
    destroy,
  };
}
