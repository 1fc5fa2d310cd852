/**
 * A board's past in InfluxDB, for the dashboard's range tests and bench (docs/dashboard.md
 * "Performance"): `hours` of samples every `stepS` seconds for node `node`, written straight to
 * InfluxDB 1.x in the manager's schema (docs/telemetry.md "Schema"): cpu, memory, one GPU, one
 * interface (eth0), one mount point (/), with the field types the manager writes.
 *
 * cpu usage_percent is `(t / stepS) mod 24`: any bucket of 24 whole samples has the mean 11.5.
 */

/** What was written: the number of points and the time span (s since the epoch). */
export interface History {
  points: number;
  fromS: number;
  toS: number;
}

/**
 * Writes the history (creating database `db`), in batches of 5,000 points.
 * @param nowS end of the history, s since the epoch (rounded down to stepS)
 * @throws Error when InfluxDB refuses a write
 */
export async function writeHistory(
  url: string,
  db: string,
  node: string,
  o: { hours?: number; stepS?: number; nowS?: number } = {},
): Promise<History> {
  const stepS = o.stepS ?? 5;
  const toS = Math.floor((o.nowS ?? Date.now() / 1000) / stepS) * stepS;
  const fromS = toS - (o.hours ?? 24) * 3600;
  const create = await fetch(`${url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST' });
  if (!create.ok) throw new Error(`CREATE DATABASE: HTTP ${create.status} ${await create.text()}`);
  const [box, slot, cpu] = node.split('-');
  const tags = `node=${node},box=${box},slot=${slot},cpu=${cpu},hostname=fake-${node}`;
  let lines: string[] = [];
  let points = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    const res = await fetch(`${url}/write?db=${encodeURIComponent(db)}&precision=s`, {
      method: 'POST',
      body: lines.join('\n'),
    });
    if (!res.ok) throw new Error(`write: HTTP ${res.status} ${await res.text()}`);
    points += lines.length;
    lines = [];
  };
  for (let t = fromS; t < toS; t += stepS) {
    const k = Math.round(t / stepS);
    const wave = Math.sin(k / 360);
    const use = k % 24;
    lines.push(
      `cpu,${tags} usage_percent=${use.toFixed(1)},load_avg_1m=${(1 + wave).toFixed(3)},load_avg_5m=${(1 + wave / 2).toFixed(3)},load_avg_15m=${(1 + wave / 4).toFixed(3)},temperature=${(55 + 10 * wave).toFixed(2)},voltage=0.9,current=${(12 + wave).toFixed(3)},power=${(11 + wave).toFixed(3)} ${t}`,
      `memory,${tags} usage_percent=${(40 + 5 * wave).toFixed(2)},total=8589934592i,used=${Math.round((0.4 + 0.05 * wave) * 8589934592)}i ${t}`,
      `gpu,${tags},gpu=0,gpu_name=fake compute_usage=${(50 + 40 * wave).toFixed(2)},mem_usage=30.5,temperature=${(60 + 8 * wave).toFixed(2)},power=${(20 + 5 * wave).toFixed(2)} ${t}`,
      `network,${tags},interface=eth0 rx_bytes=${k * 50_000}i,tx_bytes=${k * 20_000}i ${t}`,
      `disk,${tags},device=/dev/sda1,mount_point=/ usage_percent=${(60 + (k % 1000) / 100).toFixed(2)} ${t}`,
    );
    if (lines.length >= 5000) await flush();
  }
  await flush();
  return { points, fromS, toS };
}
