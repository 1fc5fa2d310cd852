/**
 * Image formats of screen captures (docs/files.md "Screen"): a small PNG encoder (8-bit RGB,
 * zlib from node:zlib, CRC from zlib.crc32) and decoders of what the capture tools print: X11
 * window dumps (`xwd`, {@link decodeXwd}) and binary PPM (`fbcat`, {@link decodePpm}). Pure
 * JavaScript, so a board needs no image tool beyond the one that reads its display.
 */
// node:zlib on the first capture, not at the agent's start (docs/operations.md "Agent footprint").
const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');

/** An 8-bit RGB image: `width * height * 3` bytes, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Buffer;
}

/** Thrown for a dump that cannot be decoded; the message says what is wrong. */
export class ImageError extends Error {}

/** The 8-byte PNG signature. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  const { crc32 } = zlib();
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes an RGB image as PNG (filter None on every row, deflate level 3: a 1080p capture in tens of ms). */
export function encodePng(img: RgbImage): Buffer {
  const { width, height, rgb } = img;
  if (rgb.length !== width * height * 3) throw new ImageError(`${rgb.length} bytes for ${width}x${height} RGB`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) rgb.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib().deflateSync(raw, { level: 3 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Largest image side accepted from a dump, pixels. */
const MAX_SIDE = 16384;

/**
 * Decodes an X11 window dump (XWD file version 7, as `xwd -root` writes it): ZPixmap with 8, 16,
 * 24 or 32 bits per pixel, TrueColor/DirectColor through the colour masks, PseudoColor/StaticColor
 * /GrayScale through the colour map.
 * @throws ImageError for a dump that is truncated, of another version or format
 */
export function decodeXwd(buf: Buffer): RgbImage {
  if (buf.length < 100) throw new ImageError('xwd dump shorter than its header');
  const f = (i: number) => buf.readUInt32BE(i * 4);
  const headerSize = f(0);
  if (f(1) !== 7) throw new ImageError(`xwd file version ${f(1)}, expected 7`);
  if (f(2) !== 2) throw new ImageError(`xwd pixmap format ${f(2)}, expected ZPixmap (2)`);
  const width = f(4);
  const height = f(5);
  const byteOrder = f(7); // 0 = LSBFirst, 1 = MSBFirst
  const bpp = f(11);
  const bpl = f(12);
  const visual = f(13);
  const masks = [f(14), f(15), f(16)];
  const ncolors = f(19);
  if (width === 0 || height === 0 || width > MAX_SIDE || height > MAX_SIDE)
    throw new ImageError(`xwd size ${width}x${height} out of range`);
  if (![8, 16, 24, 32].includes(bpp)) throw new ImageError(`xwd with ${bpp} bits per pixel is not supported`);
  if (bpl < (width * bpp) / 8) throw new ImageError('xwd bytes per line smaller than a row');
  const cmapAt = headerSize;
  const dataAt = cmapAt + ncolors * 12;
  if (headerSize < 100 || ncolors > 65536 || buf.length < dataAt + bpl * height)
    throw new ImageError('xwd dump truncated');
  const bytes = bpp / 8;
  const readPixel =
    byteOrder === 1
      ? (o: number) => {
          let v = 0;
          for (let k = 0; k < bytes; k++) v = v * 256 + (buf[o + k] as number);
          return v;
        }
      : (o: number) => {
          let v = 0;
          for (let k = bytes - 1; k >= 0; k--) v = v * 256 + (buf[o + k] as number);
          return v;
        };
  const rgb = Buffer.alloc(width * height * 3);
  const trueColor = visual === 4 || visual === 5;
  if (trueColor && bpp === 32 && byteOrder === 0 && masks[0] === 0xff0000 && masks[1] === 0xff00 && masks[2] === 0xff) {
    // The common case (24-bit depth, little-endian): bytes B G R x.
    for (let y = 0; y < height; y++) {
      const row = dataAt + y * bpl;
      let o = y * width * 3;
      for (let x = 0; x < width; x++, o += 3) {
        const i = row + x * 4;
        rgb[o] = buf[i + 2] as number;
        rgb[o + 1] = buf[i + 1] as number;
        rgb[o + 2] = buf[i] as number;
      }
    }
  } else if (trueColor) {
    const shifts = masks.map((m) => (m === 0 ? 0 : Math.log2(m & -m)));
    const maxes = masks.map((m, i) => (m === 0 ? 1 : m / 2 ** (shifts[i] as number)));
    for (let y = 0; y < height; y++) {
      const row = dataAt + y * bpl;
      for (let x = 0; x < width; x++) {
        const v = readPixel(row + x * bytes);
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) {
          const m = masks[c] as number;
          const comp = Math.floor((v & m) >>> 0) / 2 ** (shifts[c] as number);
          rgb[o + c] = Math.round((comp * 255) / (maxes[c] as number));
        }
      }
    }
  } else {
    const cmap = new Map<number, [number, number, number]>();
    for (let i = 0; i < ncolors; i++) {
      const o = cmapAt + i * 12;
      cmap.set(buf.readUInt32BE(o), [buf[o + 4] as number, buf[o + 6] as number, buf[o + 8] as number]);
    }
    for (let y = 0; y < height; y++) {
      const row = dataAt + y * bpl;
      for (let x = 0; x < width; x++) {
        const c = cmap.get(readPixel(row + x * bytes)) ?? [0, 0, 0];
        rgb.set(c, (y * width + x) * 3);
      }
    }
  }
  return { width, height, rgb };
}

/**
 * Decodes a binary PPM (P6, maxval ≤ 255), as `fbcat` prints the frame buffer.
 * @throws ImageError for anything else or a truncated image
 */
export function decodePpm(buf: Buffer): RgbImage {
  const head = buf.subarray(0, 64).toString('latin1');
  const m = /^P6\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(head);
  if (!m) throw new ImageError('not a binary PPM (P6)');
  const [width, height, maxval] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (width === 0 || height === 0 || width > MAX_SIDE || height > MAX_SIDE)
    throw new ImageError(`ppm size ${width}x${height} out of range`);
  if (maxval > 255) throw new ImageError('16-bit PPM is not supported');
  const start = m[0].length;
  const len = width * height * 3;
  if (buf.length < start + len) throw new ImageError('ppm truncated');
  const rgb = Buffer.from(buf.subarray(start, start + len));
  if (maxval !== 255) for (let i = 0; i < rgb.length; i++) rgb[i] = Math.round(((rgb[i] as number) * 255) / maxval);
  return { width, height, rgb };
}
