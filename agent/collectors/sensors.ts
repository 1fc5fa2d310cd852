/**
 * CPU temperature, voltage, current and power from sysfs.
 *
 * Sources (Documentation/hwmon/sysfs-interface.rst, Documentation/driver-api/thermal):
 * - `${sysRoot}/class/hwmon/hwmonN/`: `name`, `tempX_input` (m°C) + `tempX_label`, `inX_input`
 *   (mV), `currX_input` (mA), `powerX_input` / `powerX_average` (µW), each with an optional
 *   `..._label`. On a live system hwmonN is a symlink to a directory; in recorded trees it is a
 *   plain directory: both are followed (stat, not lstat).
 * - `${sysRoot}/class/thermal/thermal_zoneN/`: `type`, `temp` (m°C).
 *
 * A reading the board does not have is null, never a made-up 0.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';

/** CPU sensor readings: temperature °C, voltage V, current A, power W; null when absent. */
export interface SensorsSample {
  /** CPU temperature, °C (2 decimals), or null. */
  temperature: number | null;
  /** CPU voltage, V (3 decimals), or null. */
  voltage: number | null;
  /** CPU current, A (3 decimals), or null. */
  current: number | null;
  /** CPU power, W (3 decimals), or null. */
  power: number | null;
}

/** One input of an hwmon chip, already in SI units (°C, V, A, W). */
export interface HwmonInput {
  /** Attribute stem, e.g. `temp1`, `in2`, `curr1`, `power1`. */
  key: string;
  /** Channel number from the attribute name. */
  index: number;
  /** `..._label` content; for curr/power without one, the same channel's `inX_label` (ina3221 style); or null. */
  label: string | null;
  value: number;
}

/** One hwmon chip: its `name` and its inputs by kind, each list sorted by channel number. */
export interface HwmonChip {
  /** Directory, e.g. `.../hwmon0`. */
  dir: string;
  name: string;
  temp: HwmonInput[];
  in: HwmonInput[];
  curr: HwmonInput[];
  power: HwmonInput[];
}

/** One thermal zone: `type` and `temp` in °C. */
export interface ThermalZone {
  type: string;
  temperature: number;
}

/** hwmon chip names that are CPU temperature sensors (besides names containing cpu/phytium). */
export const CPU_HWMON_CHIPS: readonly string[] = ['coretemp', 'k10temp', 'zenpower', 'cpu_thermal', 'scpi_sensors'];
/** Substrings of a thermal zone type that mark it as a CPU/SoC zone. */
export const CPU_THERMAL_TYPES: readonly string[] = ['cpu', 'soc', 'x86_pkg_temp', 'tsensor'];

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Numeric order of `hwmon2` < `hwmon10`. */
const byTrailingNumber = (a: string, b: string): number =>
  Number(/\d+$/.exec(a)?.[0] ?? 0) - Number(/\d+$/.exec(b)?.[0] ?? 0);

async function readTrimmed(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function readNumber(file: string): Promise<number | undefined> {
  const text = await readTrimmed(file);
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}

/** Subdirectories of `dir` named like `pattern`, symlinks followed; [] when `dir` is missing. */
async function listDirs(dir: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const matched = names.filter((n) => pattern.test(n)).sort(byTrailingNumber);
  const isDir = await Promise.all(
    matched.map(async (n) => {
      try {
        return (await stat(`${dir}/${n}`)).isDirectory();
      } catch {
        return false;
      }
    }),
  );
  return matched.filter((_, i) => isDir[i]).map((n) => `${dir}/${n}`);
}

/** Divisors from the sysfs unit to °C, V, A and W. */
const SCALE = { temp: 1000, in: 1000, curr: 1000, power: 1_000_000 } as const;
type Kind = keyof typeof SCALE;

/** One input of a chip as discovery finds it: where its value is, and its label (read once). */
interface InputLayout {
  kind: Kind;
  key: string;
  index: number;
  /** The value's file, e.g. `temp1_input`. */
  file: string;
  label: string | null;
}

/** An hwmon chip as discovery finds it: its directory, name and inputs. */
interface ChipLayout {
  dir: string;
  name: string;
  inputs: InputLayout[];
}

/** A thermal zone as discovery finds it. */
interface ZoneLayout {
  dir: string;
  type: string;
}

/**
 * Where the sensors are: the hwmon chips (name, input files, labels) and thermal zones (type)
 * under `${sysRoot}/class`. Found by {@link discoverSensors}; the values are read from it by
 * {@link readSensorValues}.
 */
export interface SensorLayout {
  chips: ChipLayout[];
  zones: ZoneLayout[];
}

/** Finds the inputs of one hwmon chip directory; undefined when it has no `name`. */
async function discoverChip(dir: string): Promise<ChipLayout | undefined> {
  const name = await readTrimmed(`${dir}/name`);
  if (name === undefined) return undefined;
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return undefined;
  }
  const fileSet = new Set(files);
  // kind + channel → attribute file; power prefers _input over _average.
  const attrs = new Map<string, { kind: Kind; index: number; file: string }>();
  for (const f of files) {
    const m = /^(temp|in|curr|power)(\d+)_(input|average)$/.exec(f);
    if (!m?.[1] || !m[2] || !m[3]) continue;
    const kind = m[1] as Kind;
    if (m[3] === 'average' && kind !== 'power') continue;
    const key = `${kind}${m[2]}`;
    if (m[3] === 'average' && fileSet.has(`${key}_input`)) continue;
    attrs.set(key, { kind, index: Number(m[2]), file: f });
  }
  // currX/powerX without a label of their own take channel X's `inX_label` (ina3221 style).
  const labelOf = async (kind: Kind, key: string, index: number): Promise<string | null> =>
    (fileSet.has(`${key}_label`) ? await readTrimmed(`${dir}/${key}_label`) : undefined) ??
    ((kind === 'curr' || kind === 'power') && fileSet.has(`in${index}_label`)
      ? await readTrimmed(`${dir}/in${index}_label`)
      : undefined) ??
    null;
  const inputs = await Promise.all(
    [...attrs.entries()].map(
      async ([key, a]): Promise<InputLayout> => ({ ...a, key, label: await labelOf(a.kind, key, a.index) }),
    ),
  );
  return { dir, name, inputs };
}

/** Discovers the hwmon chips and thermal zones under `${sysRoot}/class` (see {@link SensorLayout}). */
export async function discoverSensors(sysRoot: string): Promise<SensorLayout> {
  const [chipDirs, zoneDirs] = await Promise.all([
    listDirs(`${sysRoot}/class/hwmon`, /^hwmon\d+$/),
    listDirs(`${sysRoot}/class/thermal`, /^thermal_zone\d+$/),
  ]);
  const [chips, zones] = await Promise.all([
    Promise.all(chipDirs.map(discoverChip)),
    Promise.all(
      zoneDirs.map(async (dir): Promise<ZoneLayout | undefined> => {
        const type = await readTrimmed(`${dir}/type`);
        return type === undefined ? undefined : { dir, type };
      }),
    ),
  ]);
  return {
    chips: chips.filter((c): c is ChipLayout => c !== undefined),
    zones: zones.filter((z): z is ZoneLayout => z !== undefined),
  };
}

/** The values of one discovered chip; `lost` counts inputs whose value could not be read. */
async function readChipValues(c: ChipLayout): Promise<{ chip: HwmonChip; lost: number }> {
  const chip: HwmonChip = { dir: c.dir, name: c.name, temp: [], in: [], curr: [], power: [] };
  let lost = 0;
  await Promise.all(
    c.inputs.map(async (i) => {
      const raw = await readNumber(`${c.dir}/${i.file}`);
      if (raw === undefined) {
        lost++;
        return;
      }
      chip[i.kind].push({ key: i.key, index: i.index, label: i.label, value: raw / SCALE[i.kind] });
    }),
  );
  for (const kind of Object.keys(SCALE) as Kind[]) chip[kind].sort((x, y) => x.index - y.index);
  return { chip, lost };
}

/**
 * Reads the values of a discovered layout: the chips (in SI units) and zones (°C). `lost` is the
 * number of inputs or zones whose value could not be read (a chip or zone gone: time to
 * discover again); such a value is left out, as discovery would leave it out.
 */
export async function readSensorValues(
  layout: SensorLayout,
): Promise<{ chips: HwmonChip[]; zones: ThermalZone[]; lost: number }> {
  const [chipValues, zoneValues] = await Promise.all([
    Promise.all(layout.chips.map(readChipValues)),
    Promise.all(
      layout.zones.map(async (z) => {
        const temp = await readNumber(`${z.dir}/temp`);
        return temp === undefined ? undefined : { type: z.type, temperature: temp / 1000 };
      }),
    ),
  ]);
  const zones = zoneValues.filter((z): z is ThermalZone => z !== undefined);
  const lost = chipValues.reduce((n, c) => n + c.lost, 0) + (zoneValues.length - zones.length);
  return { chips: chipValues.map((c) => c.chip), zones, lost };
}

/**
 * Reads one hwmon chip directory (its layout, then its values).
 * @returns undefined when the directory has no `name`
 */
export async function readHwmonChip(dir: string): Promise<HwmonChip | undefined> {
  const layout = await discoverChip(dir);
  return layout === undefined ? undefined : (await readChipValues(layout)).chip;
}

/** All hwmon chips under `${sysRoot}/class/hwmon`, in hwmonN order; [] when there are none. */
export async function readHwmonChips(sysRoot: string): Promise<HwmonChip[]> {
  const dirs = await listDirs(`${sysRoot}/class/hwmon`, /^hwmon\d+$/);
  const chips = await Promise.all(dirs.map(readHwmonChip));
  return chips.filter((c): c is HwmonChip => c !== undefined);
}

/** All readable thermal zones under `${sysRoot}/class/thermal`, in zone order (°C). */
export async function readThermalZones(sysRoot: string): Promise<ThermalZone[]> {
  const dirs = await listDirs(`${sysRoot}/class/thermal`, /^thermal_zone\d+$/);
  const { zones } = await readSensorValues({
    chips: [],
    zones: (
      await Promise.all(
        dirs.map(async (dir) => {
          const type = await readTrimmed(`${dir}/type`);
          return type === undefined ? undefined : { dir, type };
        }),
      )
    ).filter((z): z is ZoneLayout => z !== undefined),
  });
  return zones;
}

const maxOf = (values: readonly number[]): number | null => (values.length ? Math.max(...values) : null);

/** Whether an hwmon chip name is a CPU temperature sensor (auto mode). */
export function isCpuHwmonChip(name: string): boolean {
  const n = name.toLowerCase();
  return CPU_HWMON_CHIPS.includes(n) || n.includes('cpu') || n.includes('phytium');
}

/**
 * The CPU temperature, °C (unrounded), or null.
 * - `sensor` set: `chip/label` (an hwmon chip name and a temp label, or `chip/tempN`), else a
 *   thermal zone type, else a bare hwmon chip name (max of its temps); exactly that sensor or null.
 * - `sensor` empty (auto): the max temp of CPU hwmon chips (see {@link isCpuHwmonChip}), else the
 *   max of thermal zones whose type contains one of {@link CPU_THERMAL_TYPES}, else null.
 */
export function pickTemperature(
  chips: readonly HwmonChip[],
  zones: readonly ThermalZone[],
  sensor: string,
): number | null {
  if (sensor) {
    const slash = sensor.indexOf('/');
    if (slash > 0) {
      const chipName = sensor.slice(0, slash);
      const label = sensor.slice(slash + 1);
      for (const c of chips) {
        if (c.name !== chipName) continue;
        const t = c.temp.find((i) => i.label === label) ?? c.temp.find((i) => i.key === label);
        if (t) return t.value;
      }
    }
    const zone = zones.find((z) => z.type === sensor);
    if (zone) return zone.temperature;
    return maxOf(chips.filter((c) => c.name === sensor).flatMap((c) => c.temp.map((i) => i.value)));
  }
  const fromHwmon = maxOf(chips.filter((c) => isCpuHwmonChip(c.name)).flatMap((c) => c.temp.map((i) => i.value)));
  if (fromHwmon !== null) return fromHwmon;
  return maxOf(
    zones.filter((z) => CPU_THERMAL_TYPES.some((t) => z.type.toLowerCase().includes(t))).map((z) => z.temperature),
  );
}

/**
 * The input of one kind that measures the CPU: among all chips named `chipName` (in hwmonN
 * order), the first input whose label contains `cpu` or `core` (case-insensitive), else the
 * first input. null when `chipName` is empty or no such chip/input exists.
 */
export function pickPowerInput(
  chips: readonly HwmonChip[],
  chipName: string,
  kind: 'in' | 'curr' | 'power',
): number | null {
  if (!chipName) return null;
  const inputs = chips.filter((c) => c.name === chipName).flatMap((c) => c[kind]);
  const labelled = inputs.find((i) => /cpu|core/i.test(i.label ?? ''));
  return (labelled ?? inputs[0])?.value ?? null;
}

/**
 * How often the sensors' sysfs layout (which hwmon chips and thermal zones exist, their input
 * files and labels) is discovered again, ms. In between each sample reads only the values; a value
 * that cannot be read (a chip or zone gone) makes the next sample discover again at once.
 */
export const SENSOR_REDISCOVER_MS = 60_000;

/**
 * The `sensors` collector (every `collect.interval_ms`): reads hwmon and thermal zones under
 * `${ctx.sysRoot}/class` each sample, from a layout discovered at most every
 * {@link SENSOR_REDISCOVER_MS} (a sensor that appears is seen within that time; one that goes away
 * at the next sample). Temperature per `ctx.config.cpu_temperature_sensor`
 * (see {@link pickTemperature}); voltage/current/power only from the hwmon chip named by
 * `ctx.config.cpu_power_chip`, else null. A configured sensor or chip that is not found is
 * logged once (warn) and reads null. Never throws: missing sysfs gives all nulls.
 */
export function createSensorsCollector(ctx: CollectorContext, now: () => number = Date.now): Collector<SensorsSample> {
  const warned = new Set<string>();
  const warnOnce = (key: string, msg: string): void => {
    if (warned.has(key)) return;
    warned.add(key);
    ctx.log.warn({ sensor: key }, msg);
  };
  let layout: SensorLayout | undefined;
  let discoveredAt = 0;
  return {
    name: 'sensors',
    initial: { temperature: null, voltage: null, current: null, power: null },
    async collect(_signal: AbortSignal): Promise<SensorsSample> {
      if (layout === undefined || now() - discoveredAt >= SENSOR_REDISCOVER_MS) {
        layout = await discoverSensors(ctx.sysRoot);
        discoveredAt = now();
      }
      const { chips, zones, lost } = await readSensorValues(layout);
      if (lost > 0) layout = undefined; // something went away: discover again next time
      const { cpu_temperature_sensor: sensor, cpu_power_chip: powerChip } = ctx.config;
      const temperature = pickTemperature(chips, zones, sensor);
      if (sensor && temperature === null) {
        warnOnce(sensor, 'collect.cpu_temperature_sensor not found; temperature is null');
      }
      if (powerChip && !chips.some((c) => c.name === powerChip)) {
        warnOnce(powerChip, 'collect.cpu_power_chip not found; voltage, current and power are null');
      }
      const voltage = pickPowerInput(chips, powerChip, 'in');
      const current = pickPowerInput(chips, powerChip, 'curr');
      const power = pickPowerInput(chips, powerChip, 'power');
      return {
        temperature: temperature === null ? null : round(temperature, 2),
        voltage: voltage === null ? null : round(voltage, 3),
        current: current === null ? null : round(current, 3),
        power: power === null ? null : round(power, 3),
      };
    },
  };
}

/** Registration of `sensors`: `resource.cpu.temperature`, `voltage`, `current`, `power` (docs/protocol.md "resource.cpu"). */
export const sensorsCollector = defineCollector<SensorsSample>({
  name: 'sensors',
  interval: 'interval_ms',
  create: createSensorsCollector,
  resource(s, data) {
    Object.assign(data.resource.cpu, s);
  },
});
