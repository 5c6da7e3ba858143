/**
 * A run's metrics as a TensorBoard event file (`tb/events.out.tfevents.<unix time>.<host>.gta`), so that
 * `tensorboard --logdir runs` draws the curves and W&B's TensorBoard sync imports them.
 *
 * The file is TFRecord: each record is its length (uint64 LE), the masked CRC32C of those 8 bytes, the
 * data, and the masked CRC32C of the data. Each record's data is an `Event` proto (tensorflow's
 * core/util/event.proto): first one with `file_version: "brain.Event:2"`, then one per metrics line
 * with its step and a `Summary` of `simple_value` scalars.
 *
 * Packages: protobufjs encodes the protos from the inline schema below (its reflection API, no codegen
 * step). CRC32C comes from @aws-crypto/crc32c: pure JavaScript (nothing compiled or downloaded at
 * install, so it works on every platform Node does), maintained by AWS for the SDK's S3 checksums;
 * speed does not matter for a few records a second. (@node-rs/crc32 ships prebuilt binaries only,
 * without a JS fallback for other platforms; fast-crc32c and sse4_crc32 compile a native addon at
 * install.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { crc32c } from '@aws-crypto/crc32c';

/** The fields of event.proto and summary.proto that gta writes, with TensorFlow's field numbers. */
export const EVENT_PROTO = `
syntax = "proto3";
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 6;
  }
}
message SessionLog {
  enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  SessionStatus status = 1;
}
message Summary {
  message Value {
    string tag = 1;
    oneof value { float simple_value = 2; }
  }
  repeated Value value = 1;
}
`;

const Event = protobuf.parse(EVENT_PROTO, { keepCase: true }).root.lookupType('Event');

/** TFRecord's CRC mask: rotate right by 15 bits and add a constant. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord frame around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

function eventRecord(event: Record<string, unknown>): Buffer {
  return tfRecord(Event.encode(Event.fromObject(event)).finish());
}

/** Keys of a metrics line that are not metrics: the step is the event's own, time_s its wall time. */
const NOT_SCALARS = new Set(['step', 'split', 'time_s']);

/**
 * The scalars of one metrics.jsonl line: every finite number, tagged with its key (`train/loss_sft`,
 * `reward/total/mean`); on an eval line (split dev or test) prefixed by the split (`dev/eval/accuracy`),
 * so the two splits' curves stay apart. `epoch` is kept on train lines only (it would repeat at every
 * eval's step); strings and other values are left out.
 */
export function scalarsOf(record: Record<string, unknown>): { tag: string; value: number }[] {
  const split = typeof record.split === 'string' ? record.split : 'train';
  const out: { tag: string; value: number }[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (NOT_SCALARS.has(k) || typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (k === 'epoch' && split !== 'train') continue;
    out.push({ tag: split === 'train' ? k : `${split}/${k}`, value: v });
  }
  return out;
}

/** Appends events to one event file. */
export class EventWriter {
  private constructor(readonly file: string) {}

  /**
   * Starts a new event file in `dir`. Its name sorts after every event file there (TensorBoard reads
   * a folder's files in name order), so the Unix time in it is raised past the newest one if need be.
   * With `restartAt`, the file begins with a SessionLog START at that step: a TensorBoard that already
   * read the older files drops their points from that step on (see RunDir.resumeAt).
   */
  static create(dir: string, opts: { restartAt?: number; records?: Record<string, unknown>[]; wallTime?: (r: Record<string, unknown>) => number } = {}): EventWriter {
    fs.mkdirSync(dir, { recursive: true });
    const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
    let t = Math.floor(Date.now() / 1000);
    for (const f of fs.readdirSync(dir)) {
      const m = /^events\.out\.tfevents\.(\d+)\./.exec(f);
      if (m) t = Math.max(t, Number(m[1]) + 1);
    }
    const file = path.join(dir, `events.out.tfevents.${t}.${host}.gta`);
    const now = Date.now() / 1000;
    const parts = [eventRecord({ wall_time: now, file_version: 'brain.Event:2' })];
    if (opts.restartAt !== undefined) parts.push(eventRecord({ wall_time: now, step: opts.restartAt, session_log: { status: 'START' } }));
    for (const r of opts.records ?? []) {
      const e = summaryEvent(r, opts.wallTime?.(r) ?? now);
      if (e) parts.push(e);
    }
    // Written whole under a name TensorBoard ignores, then renamed: a reader never sees half of it.
    const tmp = path.join(dir, `.tmp-${process.pid}-${path.basename(file)}`);
    try {
      fs.writeFileSync(tmp, Buffer.concat(parts));
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return new EventWriter(file);
  }

  /** Appends the scalars of one metrics line as one event (one write call). */
  append(record: Record<string, unknown>): void {
    const e = summaryEvent(record, Date.now() / 1000);
    if (e) fs.appendFileSync(this.file, e);
  }
}

function summaryEvent(record: Record<string, unknown>, wallTime: number): Buffer | undefined {
  const scalars = scalarsOf(record);
  const step = Number(record.step);
  if (scalars.length === 0 || !Number.isSafeInteger(step)) return undefined;
  return eventRecord({ wall_time: wallTime, step, summary: { value: scalars.map((s) => ({ tag: s.tag, simple_value: s.value })) } });
}

/**
 * The events of an event file, decoded; reading stops at a record cut short or failing its checksums
 * (a run killed mid-write). Used to keep the wall times of the points a resume rewrites.
 */
export function readEvents(file: string): { wall_time: number; step: number; tags: string[] }[] {
  const buf = fs.readFileSync(file);
  const out: { wall_time: number; step: number; tags: string[] }[] = [];
  for (let at = 0; at + 12 <= buf.length; ) {
    const len = Number(buf.readBigUInt64LE(at));
    if (buf.readUInt32LE(at + 8) !== maskedCrc32c(buf.subarray(at, at + 8)) || at + 16 + len > buf.length) break;
    const data = buf.subarray(at + 12, at + 12 + len);
    if (buf.readUInt32LE(at + 12 + len) !== maskedCrc32c(data)) break;
    const e = Event.toObject(Event.decode(data), { longs: Number, defaults: true }) as { wall_time: number; step: number; summary?: { value: { tag: string }[] } };
    out.push({ wall_time: e.wall_time, step: e.step, tags: e.summary?.value.map((v) => v.tag) ?? [] });
    at += 16 + len;
  }
  return out;
}

/**
 * Rewrites a folder's event files as one new file holding exactly `records` (the metrics lines a
 * resume keeps), each at the wall time its point had in the old files (else `fallbackTime`), after a
 * SessionLog START at step 0 so that a TensorBoard already showing the old files drops what it read
 * and takes these. The old files are then removed: every reader (TensorBoard, W&B's sync) sees each
 * step once. Returns the writer of the new file.
 */
export function rewriteEvents(dir: string, records: Record<string, unknown>[], fallbackTime: (r: Record<string, unknown>) => number): EventWriter {
  const old = eventFiles(dir);
  const wallTimes = new Map<string, number>();
  for (const f of old) {
    for (const e of readEvents(f)) if (e.tags.length) wallTimes.set(`${e.step}\u0000${e.tags.join('\u0000')}`, e.wall_time);
  }
  const keyOf = (r: Record<string, unknown>) => `${Number(r.step)}\u0000${scalarsOf(r).map((s) => s.tag).join('\u0000')}`;
  const writer = EventWriter.create(dir, { restartAt: 0, records, wallTime: (r) => wallTimes.get(keyOf(r)) ?? fallbackTime(r) });
  for (const f of old) fs.rmSync(f, { force: true });
  return writer;
}

/** The event files of a folder in the order TensorBoard reads them. */
export function eventFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.includes('tfevents') && !f.startsWith('.'))
    .sort()
    .map((f) => path.join(dir, f));
}
