// One workload app process (app.ts) as the controller sees it: started on a node with
// its configuration, its events parsed line by line, commands written to its stdin, and
// how it ended. The controller's view of what it is doing lives in workload.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AppConfig, AppEvent, Command } from './protocol.js';

const APP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'app.js');

export class AppProcess {
  private readonly child: ChildProcess;
  private stderr = '';
  /** Set when the controller ended the process itself (not a sign the app was told). */
  endedByController: string | undefined;

  constructor(config: AppConfig, onEvent: (e: AppEvent) => void, onExit: (code: number | null, signal: NodeJS.Signals | null) => void) {
    this.child = spawn(process.execPath, [APP, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.on('error', () => undefined); // it died: its exit says how
    this.child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-2000)));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: AppEvent;
      try {
        event = JSON.parse(line) as AppEvent;
      } catch {
        this.stderr += `\n(stdout) ${line}`;
        return;
      }
      onEvent(event);
    });
    // 'close' comes after the last stdout line: every event is in before the exit.
    this.child.on('close', (code, signal) => onExit(code, signal));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What the app wrote on stderr last (for reports). */
  get lastStderr(): string {
    return this.stderr.trim().split('\n').slice(-3).join(' | ');
  }

  send(c: Command): void {
    if (this.child.stdin!.writable) this.child.stdin!.write(`${JSON.stringify(c)}\n`);
  }

  /** SIGKILLs the app on the controller's behalf, saying why. */
  kill(why: string): void {
    this.endedByController ??= why;
    this.child.kill('SIGKILL');
  }
}
