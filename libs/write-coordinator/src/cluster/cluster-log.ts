/** Where the cluster reports what needs a human (the coordinator passes its own log). */
export interface ClusterLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}
