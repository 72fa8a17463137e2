import { setTimeout as sleep } from 'node:timers/promises';
import { HttpConnectionDrain } from './http-connection-drain';

/**
 * Where an application is in its shutdown: `serving` (not shutting down), `readiness-delay`
 * (health reports 503, every request is still served), `draining` (no new connections, the
 * coordinators finish their writes) or `stopped`.
 */
export type ShutdownPhase = 'serving' | 'readiness-delay' | 'draining' | 'stopped';

/** @internal Where the sequence writes its one line per phase. */
export interface ShutdownLog {
  log(message: string): void;
  warn(message: string): void;
}

/** @internal What one coordinator contributes; the sequence takes the largest of each. */
export interface ShutdownSettings {
  readinessDelayMs: number;
  graceMs: number;
  /** The app's HTTP server, when the coordinator may manage its shutdown. */
  http?: HttpConnectionDrain;
}

/**
 * @internal The shutdown of one application, shared by all its coordinators, run once:
 *
 * 1. readiness: the phase turns `readiness-delay` (health reports 503), responses carry
 *    `Connection: close`, and the app keeps serving for `readinessDelayMs`, on SIGTERM only;
 * 2. draining: the HTTP server stops accepting connections and closes its idle keep-alive ones;
 *    the coordinators then drain (each bounded by its `shutdownGraceMs`);
 * 3. connections still open `graceMs` after that (the end of the grace) are destroyed, so Nest's
 *    own `server.close()` cannot wait for ever on a keep-alive client or a stalled request;
 * 4. {@link finished} when Nest calls the shutdown hooks, just before the process may exit.
 */
export class ShutdownSequence {
  private current: ShutdownPhase = 'serving';
  private readonly settings: Required<Omit<ShutdownSettings, 'http'>> = { readinessDelayMs: 0, graceMs: 0 };
  private http: HttpConnectionDrain | undefined;
  private started: Promise<void> | undefined;
  private signalledAt = 0;
  private trigger = 'app.close()';

  constructor(private readonly logger: ShutdownLog) {}

  /** The phase now; health reads it. */
  get phase(): ShutdownPhase {
    return this.current;
  }

  /** Adds one coordinator's settings (the largest delay and grace win). */
  configure(settings: ShutdownSettings): void {
    this.settings.readinessDelayMs = Math.max(this.settings.readinessDelayMs, settings.readinessDelayMs);
    this.settings.graceMs = Math.max(this.settings.graceMs, settings.graceMs);
    this.http ??= settings.http;
  }

  /**
   * Runs phases 1 and 2 once (every coordinator awaits the same run) and resolves when the
   * coordinators may start draining.
   */
  beforeDrain(signal: string | undefined): Promise<void> {
    return (this.started ??= this.run(signal));
  }

  /** Phase 4: one line with the time since the signal; the process exits next. */
  finished(): void {
    if (this.current === 'stopped' || this.current === 'serving') return;
    this.current = 'stopped';
    this.logger.log(`shutdown complete ${this.elapsed()} ms after ${this.trigger}; the process may exit`);
  }

  private async run(signal: string | undefined): Promise<void> {
    this.signalledAt = performance.now();
    this.trigger = signal ?? 'app.close()';
    this.current = 'readiness-delay';
    const delay = signal === 'SIGTERM' ? this.settings.readinessDelayMs : 0;
    this.http?.announceClose();
    if (delay > 0) {
      this.logger.log(
        `${this.trigger}: readiness reports 503 for ${delay} ms (readinessDelayMs) while the app keeps serving; ` +
          `responses carry Connection: close`,
      );
      await sleep(delay);
    }
    this.current = 'draining';
    const { graceMs } = this.settings;
    if (!this.http) {
      this.logger.log(`${this.trigger}: draining writes (shutdownGraceMs ${graceMs})`);
      return;
    }
    const http = this.http;
    const { idleClosed, busy } = http.stopAccepting();
    this.logger.log(
      `${this.trigger}: HTTP server stopped accepting connections, closed ${idleClosed} idle keep-alive ` +
        `connection(s), ${busy} busy; draining writes (shutdownGraceMs ${graceMs})`,
    );
    const deadline = setTimeout(() => {
      const open = http.closeAll();
      if (open > 0) {
        this.logger.warn(
          `closed ${open} HTTP connection(s) still open ${this.elapsed()} ms after ${this.trigger} ` +
            `(end of shutdownGraceMs ${graceMs})`,
        );
      }
    }, graceMs);
    deadline.unref();
    void http.whenClosed().then(() => {
      clearTimeout(deadline);
      this.logger.log(`HTTP server closed: its last connection ended ${this.elapsed()} ms after ${this.trigger}`);
    });
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.signalledAt);
  }
}
