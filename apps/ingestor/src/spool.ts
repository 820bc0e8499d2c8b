/**
 * Append-only spool of enqueue units for while Redis is unreachable. One unit per line (JSON),
 * written with one write(2) each, so a killed process leaves whole lines. Drained in file order;
 * the read position is kept in `<file>.offset` (replaced atomically), so a restart resumes the
 * drain where it stopped. Re-writing a unit twice is harmless: its jobs have fixed ids.
 * Synchronous file I/O on purpose: spooling only happens while Redis is down, and a sync append
 * means the order of units in the file is the order they were cut, with no interleaving.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { EnqueueUnit } from './enqueue-unit.js';
import { SpoolError } from './spool-error.js';

export interface SpoolBatch {
  readonly units: EnqueueUnit[];
  /** File offset after the last unit of the batch; pass to commit() once written. */
  readonly nextOffset: number;
}

const READ_CHUNK_BYTES = 4 * 1024 * 1024;

export class Spool {
  private readonly fd: number;
  private readonly offsetFile: string;
  private offset: number;
  private size: number;
  /** Units appended and not yet drained (counted by pending() after a restart). */
  private depth = 0;
  /** Bytes of a torn last line cut off when the file was opened (see dropTornTail). */
  readonly tornBytesDropped: number;

  constructor(
    readonly file: string,
    private readonly bytesMax: number,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, 'a+');
    this.offsetFile = `${file}.offset`;
    this.size = fstatSync(this.fd).size;
    this.tornBytesDropped = this.dropTornTail();
    this.offset = existsSync(this.offsetFile) ? Number(readFileSync(this.offsetFile, 'utf8').trim() || '0') : 0;
    if (!Number.isSafeInteger(this.offset) || this.offset < 0 || this.offset > this.size) {
      throw new SpoolError('SPOOL_CORRUPT', `spool offset ${this.offset} in ${this.offsetFile} is outside ${file} (${this.size} bytes)`);
    }
  }

  /** True while there are units not yet drained: every new unit must then go to the spool too. */
  get active(): boolean {
    return this.offset < this.size;
  }

  get depthUnits(): number {
    return this.depth;
  }

  get sizeBytes(): number {
    return this.size;
  }

  get full(): boolean {
    return this.size >= this.bytesMax;
  }

  /** Reads every undrained unit (at start-up, to restore state and count the depth). */
  pending(): EnqueueUnit[] {
    const units: EnqueueUnit[] = [];
    let at = this.offset;
    for (;;) {
      const batch = this.read(at, Number.MAX_SAFE_INTEGER);
      if (batch.units.length === 0) break;
      units.push(...batch.units);
      at = batch.nextOffset;
    }
    this.depth = units.length;
    return units;
  }

  append(unit: EnqueueUnit): void {
    const line = Buffer.from(`${JSON.stringify(unit)}\n`, 'utf8');
    if (this.size + line.length > this.bytesMax) {
      throw new SpoolError('SPOOL_FULL', `spool ${this.file} would exceed ${this.bytesMax} bytes`);
    }
    let written = 0;
    while (written < line.length) written += writeSync(this.fd, line, written, line.length - written, this.size + written);
    this.size += line.length;
    this.depth += 1;
  }

  /** Up to `maxUnits` units from the drain position. */
  nextBatch(maxUnits: number): SpoolBatch {
    return this.read(this.offset, maxUnits);
  }

  /** Records that everything before `nextOffset` is in Redis. */
  commit(batch: SpoolBatch): void {
    this.offset = batch.nextOffset;
    this.depth = Math.max(0, this.depth - batch.units.length);
    const tmp = `${this.offsetFile}.tmp`;
    writeFileSync(tmp, String(this.offset));
    renameSync(tmp, this.offsetFile);
  }

  /**
   * Once everything is drained, empties the file (so it does not grow forever) and returns true.
   * Synchronous with the check, so no unit can be appended in between.
   */
  finishIfDrained(): boolean {
    if (this.offset < this.size) return false;
    // Offset first: a crash between the two steps then re-drains units whose jobs are already
    // in Redis (ignored by job id), instead of leaving an offset beyond the end of the file.
    const tmp = `${this.offsetFile}.tmp`;
    writeFileSync(tmp, '0');
    renameSync(tmp, this.offsetFile);
    ftruncateSync(this.fd, 0);
    fsyncSync(this.fd);
    this.size = 0;
    this.offset = 0;
    this.depth = 0;
    return true;
  }

  /**
   * Drops every undrained unit (after Redis lost the position: the replay from the rebuilt
   * position re-sends all of it). Returns how many were dropped.
   */
  discardPending(): number {
    const dropped = this.depth;
    this.commit({ units: [], nextOffset: this.size });
    this.finishIfDrained();
    return dropped;
  }

  close(): void {
    closeSync(this.fd);
  }

  private read(from: number, maxUnits: number): SpoolBatch {
    const units: EnqueueUnit[] = [];
    /** File offset where `rest` starts. */
    let restOffset = from;
    let rest = Buffer.alloc(0);
    let at = from;
    while (units.length < maxUnits) {
      const newline = rest.indexOf(0x0a);
      if (newline === -1) {
        if (at >= this.size) break;
        const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, this.size - at));
        const n = readSync(this.fd, chunk, 0, chunk.length, at);
        if (n === 0) break;
        at += n;
        rest = rest.length === 0 ? chunk.subarray(0, n) : Buffer.concat([rest, chunk.subarray(0, n)]);
        continue;
      }
      units.push(parseUnit(rest.subarray(0, newline).toString('utf8'), this.file, restOffset));
      restOffset += newline + 1;
      rest = rest.subarray(newline + 1);
    }
    return { units, nextOffset: restOffset };
  }

  /**
   * A last line without its newline can only come from a torn write (power loss): that unit was
   * never acknowledged to anyone, so it is cut off. Returns the bytes dropped.
   */
  private dropTornTail(): number {
    if (this.size === 0) return 0;
    const tail = Buffer.alloc(1);
    readSync(this.fd, tail, 0, 1, this.size - 1);
    if (tail[0] === 0x0a) return 0;
    let end = this.size - 1;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(this.fd, chunk, 0, end - start, start);
      const newline = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (newline !== -1) {
        end = start + newline + 1;
        break;
      }
      end = start;
    }
    const dropped = this.size - end;
    ftruncateSync(this.fd, end);
    this.size = end;
    return dropped;
  }
}

function parseUnit(line: string, file: string, startOffset: number): EnqueueUnit {
  try {
    const unit = JSON.parse(line) as EnqueueUnit;
    if (!Array.isArray(unit.jobs) || typeof unit.marks !== 'object' || unit.marks === null) throw new Error('not an enqueue unit');
    return unit;
  } catch (error) {
    throw new SpoolError('SPOOL_CORRUPT', `spool ${file}: line at byte ${startOffset} is not a unit: ${(error as Error).message}`);
  }
}
