// Reading fault traces: JSON-lines files of FaultEvents, as `naplus-fault-trace record`
// and `naplus-mount --trace` write them. Lines that are not events are skipped but
// counted, so that a damaged file never loses data silently.
import fs from 'node:fs';
import readline from 'node:readline';
import { NaplusError, errnoOf } from '../errors.js';
import type { FaultEvent, FaultKind, FaultSource } from './fault-event.js';

export const KINDS: readonly FaultKind[] = ['read', 'write', 'minor'];
/** Cheapest first: a cache hit costs no copy, a segment page a local copy, a remote page the network. */
export const SOURCES: readonly FaultSource[] = ['cache', 'segment', 'remote'];

export interface TraceFile {
  file: string;
  /** In file order. */
  events: FaultEvent[];
  /** Lines that are not blank and not a fault event. */
  malformed: number;
  /** 1-based line number of the first malformed line, if any. */
  firstMalformedLine?: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The event on one trace line, or undefined if the line is not one. */
function parseEventLine(line: string): FaultEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { t, node, region, app, page, kind, source, waitUs, wireBytes } = v as Record<string, unknown>;
  if (!isAmount(t) || !isCount(node) || typeof region !== 'string' || !isCount(app) || !isCount(page)) return undefined;
  if (!KINDS.includes(kind as FaultKind) || !SOURCES.includes(source as FaultSource)) return undefined;
  if (!isAmount(waitUs) || !isCount(wireBytes)) return undefined;
  return { t, node, region, app, page, kind: kind as FaultKind, source: source as FaultSource, waitUs, wireBytes };
}

/** Reads one trace file; a missing or unreadable file is a NaplusError naming it. */
async function readTraceFile(file: string): Promise<TraceFile> {
  const result: TraceFile = { file, events: [], malformed: 0 };
  const input = fs.createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('ready', resolve);
    input.once('error', reject);
  });
  try {
    await opened;
    let lineNo = 0;
    for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
      lineNo++;
      if (line.trim() === '') continue;
      const e = parseEventLine(line);
      if (e) result.events.push(e);
      else if (result.malformed++ === 0) result.firstMalformedLine = lineNo;
    }
  } catch (err) {
    const code = errnoOf(err) ?? 'EIO';
    const why = code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new NaplusError(code, `Cannot read trace file ${file}: ${why}; record one with 'naplus-fault-trace record' or 'naplus-mount --trace <file>'`);
  }
  return result;
}

/**
 * Reads traces and merges their events in time order. Events of the same millisecond
 * keep their order within a file (a node writes them in the order it resolved them),
 * then file order. A file without a single event is an error: a wrong file, or a
 * recording during which nothing faulted.
 */
export async function readTraces(paths: string[]): Promise<{ files: TraceFile[]; events: FaultEvent[] }> {
  const files: TraceFile[] = [];
  for (const p of paths) {
    const f = await readTraceFile(p);
    if (f.events.length === 0) {
      const bad = f.malformed > 0 ? `, only ${f.malformed} malformed lines (the first at line ${f.firstMalformedLine})` : '';
      throw new NaplusError('ENODATA', `${p} holds no fault events${bad}; is it a trace written by 'naplus-fault-trace record' or 'naplus-mount --trace'?`);
    }
    files.push(f);
  }
  const events = files.flatMap((f) => f.events).sort((a, b) => a.t - b.t); // Array#sort is stable
  return { files, events };
}
