/**
 * Reading a password and a yes/no from the operator's terminal (the password without echo, as `sudo`
 * and `ssh` do), or the whole of stdin for scripts (`--password-stdin`, the `docker login` habit).
 */
import { CorralError } from '../util/errors.js';

/** Everything on stdin, without one trailing newline (what `echo pw |` and a here-string add). */
export async function readAllStdin(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * One line typed on the terminal. With `echo` off the terminal is put in raw mode, so the characters are
 * not shown; backspace edits, Enter ends, Ctrl-C and Ctrl-D abandon.
 */
export function readLine(
  stdin: NodeJS.ReadStream,
  write: (text: string) => void,
  question: string,
  echo: boolean,
): Promise<string> {
  if (!stdin.isTTY) {
    return Promise.reject(
      new CorralError('USAGE', 'stdin is not a terminal: use --password-stdin (and --yes or --fingerprint)'),
    );
  }
  write(question);
  return new Promise((resolve, reject) => {
    let line = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err: Error | undefined): void => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(undefined);
        if (ch === '\u0003' || ch === '\u0004') return done(new CorralError('USAGE', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') {
          if (line.length) {
            line = line.slice(0, -1);
            if (echo) write('\b \b');
          }
          continue;
        }
        line += ch;
        if (echo) write(ch);
      }
    };
    stdin.on('data', onData);
  });
}
