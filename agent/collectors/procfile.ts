/**
 * Reads a procfs pseudo-file (`/proc/stat`, `/proc/meminfo`, `/proc/loadavg`, `/proc/net/dev`)
 * with three system calls into one buffer reused by every collector: open, read, close. The
 * kernel generates these files from memory, so the read never waits on a disk and takes
 * microseconds; fs/promises' readFile would cost a FileHandle, an fstat and four thread-pool
 * round trips per file and tick (docs/operations.md "Agent footprint"). sysfs files of slow
 * drivers (hwmon over I2C) are not read this way: the sensors collector keeps async reads.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';

/** Largest file read (bytes): /proc/net/dev of ~1,000 interfaces; longer files throw. */
export const PROC_FILE_MAX_BYTES = 1024 * 1024;

let buf = Buffer.allocUnsafe(64 * 1024);

/**
 * The whole content of `file` as UTF-8.
 * @throws the fs error (ENOENT, EACCES, ...) as fs.readFile would, or Error when the file is
 *   longer than {@link PROC_FILE_MAX_BYTES}
 */
export function readProcFile(file: string): string {
  // O_NONBLOCK: a FIFO or device put where a procfs file was expected fails (EAGAIN) or reads
  // empty instead of blocking the event loop; regular and procfs files ignore the flag.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (buf.length >= PROC_FILE_MAX_BYTES) throw new Error(`${file} is longer than ${PROC_FILE_MAX_BYTES} bytes`);
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, PROC_FILE_MAX_BYTES));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return buf.toString('utf8', 0, len);
  } finally {
    closeSync(fd);
  }
}
