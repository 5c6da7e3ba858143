/**
 * Reading a file a user or a queue job named: it must be a regular file. A FIFO as train_file used to
 * hang the run forever with no message (and tie up a worker slot); a device (/dev/zero, /dev/stdin)
 * would never end either. The file is opened without blocking and the opened file itself is checked
 * (fstat), so what is checked is what is read, even if the path is swapped in between; in a queue
 * job's child, so is where it lies (src/util/read_roots.ts).
 */
import fs from 'node:fs';
import { GtaError } from './errors.js';
import { checkOpenedFile } from './read_roots.js';

/** What a path that is not a regular file is, for the message. */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function refuse(file: string, st: fs.Stats): GtaError {
  return new GtaError(`${file}: is ${kindOf(st)}, not a regular file`);
}

function openError(file: string, e: unknown): GtaError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new GtaError(`${file}: no such file`);
  if (code === 'EISDIR') return new GtaError(`${file}: is a folder, not a file`);
  return new GtaError(`${file}: cannot read (${code ?? String(e)})`);
}

/** O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat could refuse it. */
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;

/** The bytes of `file`, which must be a regular file (else a one-line GtaError naming it). */
export async function readRegularFile(file: string): Promise<Buffer> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, FLAGS);
  } catch (e) {
    throw openError(file, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw refuse(file, st);
    checkOpenedFile(fh.fd, file);
    return await fh.readFile();
  } catch (e) {
    throw e instanceof GtaError ? e : openError(file, e);
  } finally {
    await fh.close();
  }
}

/** readRegularFile, synchronously. */
export function readRegularFileSync(file: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, FLAGS);
  } catch (e) {
    throw openError(file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse(file, st);
    checkOpenedFile(fd, file);
    return fs.readFileSync(fd);
  } catch (e) {
    throw e instanceof GtaError ? e : openError(file, e);
  } finally {
    fs.closeSync(fd);
  }
}
