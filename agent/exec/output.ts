/**
 * A step's output, bounded (docs/exec.md "Output"): each stream's tail (the head cut and counted),
 * the two streams interleaved as they came (the seed API's `message`), and a per-task ring of
 * numbered lines for live reading (`exec_status` with `since`, common/exec.ts OutputLine).
 */
import { StringDecoder } from 'node:string_decoder';
import type { OutputLine } from '../../common/exec.js';

/** Longest line kept in the ring, characters (common/exec.ts OutputLine). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Most lines one exec_status answer carries. */
export const MAX_LINES_PER_ANSWER = 1000;

/** The last `max` bytes of a byte stream, and how many bytes before them were dropped. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the head. */
  cut = 0;

  constructor(private readonly max: number) {}

  /** Appends `b`, dropping from the head past the bound. */
  push(b: Buffer): void {
    if (b.length >= this.max) {
      this.cut += this.size + b.length - this.max;
      this.chunks = [Buffer.from(b.subarray(b.length - this.max))];
      this.size = this.max;
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max) {
      const head = this.chunks[0] as Buffer;
      const over = this.size - this.max;
      if (head.length <= over) {
        this.chunks.shift();
        this.size -= head.length;
        this.cut += head.length;
      } else {
        this.chunks[0] = head.subarray(over);
        this.size -= over;
        this.cut += over;
      }
    }
  }

  /** The kept bytes as UTF-8 (a character cut at the head reads as U+FFFD). */
  text(): string {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return (this.chunks[0] ?? Buffer.alloc(0)).toString('utf8');
  }
}

/** Numbered lines of one task, the latest `capacity` kept; a reader asks for those after `since`. */
export class LineRing {
  private readonly lines: OutputLine[] = [];
  private head = 0;
  /** seq of the last line added (0 = none yet). */
  last = 0;

  constructor(private readonly capacity: number) {}

  /** Adds a line and returns its seq. */
  add(step: number, stream: 'stdout' | 'stderr', line: string): number {
    const l: OutputLine = { seq: ++this.last, step, stream, at: Date.now(), line };
    if (this.lines.length < this.capacity) this.lines.push(l);
    else {
      this.lines[this.head] = l;
      this.head = (this.head + 1) % this.capacity;
    }
    return l.seq;
  }

  /** Lines after `since` (at most `max`), and how many after `since` are no longer held. */
  after(since: number, max = MAX_LINES_PER_ANSWER): { lines: OutputLine[]; dropped: number } {
    const first = this.last - this.lines.length + 1; // seq of the oldest held line
    const from = Math.max(since + 1, first);
    const dropped = Math.max(0, first - (since + 1));
    const out: OutputLine[] = [];
    for (let seq = from; seq <= this.last && out.length < max; seq++) {
      const idx = this.lines.length < this.capacity ? seq - first : (this.head + (seq - first)) % this.capacity;
      out.push(this.lines[idx] as OutputLine);
    }
    return { lines: out, dropped };
  }
}

/** Splits one stream of a step into lines for the ring; a line longer than MAX_LINE_CHARS is cut. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private skipping = false;

  constructor(private readonly emit: (line: string) => void) {}

  /** Feeds bytes. */
  push(b: Buffer): void {
    this.feed(this.decoder.write(b));
  }

  /** Flushes the last line without a newline. */
  end(): void {
    this.feed(this.decoder.end());
    if (this.partial !== '' && !this.skipping) this.emit(this.partial);
    this.partial = '';
    this.skipping = false;
  }

  private feed(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const piece = text.slice(start, nl);
      if (!this.skipping) this.emit(stripCr(this.partial + piece).slice(0, MAX_LINE_CHARS));
      this.partial = '';
      this.skipping = false;
      start = nl + 1;
    }
    if (this.skipping) return;
    this.partial += text.slice(start);
    if (this.partial.length > MAX_LINE_CHARS) {
      this.emit(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = '';
      this.skipping = true; // the rest of this line is dropped
    }
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}
