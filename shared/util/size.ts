const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses a byte size: "1048576", "512k", "64M", "1GiB" (binary units, case-insensitive). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a size (use e.g. 65536, 512k, 64M, 1G)`);
  return Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()]);
}

/** Parses a positive whole count ("10000"). */
export function parseCount(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a whole number above 0 (got "${text}")`);
  return n;
}
