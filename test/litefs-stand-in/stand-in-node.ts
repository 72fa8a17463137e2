import type { NodeEventStream } from './event-stream';
import type { NodeFiles } from './node-files';

/** What a test needs to run an application process as one node. */
export interface StandInNode {
  readonly name: string;
  /** The node's "mount": the database, `<db>-pos`, `.primary`. */
  readonly mountDir: string;
  readonly databasePath: string;
  readonly posPath: string;
  readonly primaryPath: string;
  /** The node's `GET /events` NDJSON stream. */
  readonly eventsUrl: string;
  /** Environment for a process of this node: preloads the agent, which refuses writes on a replica. */
  readonly env: Readonly<Record<string, string>>;
}

/** @internal The controller's view of one node. */
export interface NodeState {
  node: StandInNode;
  files: NodeFiles;
  events: NodeEventStream;
  /** False while the node is cut off from the primary (`LiteFsStandIn.disconnect`). */
  connected: boolean;
}
