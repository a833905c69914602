/**
 * The nodes a test file runs, by port (one node per port at a time): started and waited for,
 * stopped cleanly by port. `byPort` is what stopAllNodes (process-group.ts) cleans up at the end.
 */
import { TestNode, type NodeOptions, type RunResult } from './node.js';

export class RunningNodes {
  readonly byPort = new Map<number, TestNode>();

  /** Starts a node and waits until it accepts connections. */
  async start(opts: NodeOptions): Promise<TestNode> {
    if (this.byPort.has(opts.port)) throw new Error(`node ${opts.port} is already running`);
    const n = new TestNode(opts);
    this.byPort.set(opts.port, n);
    await n.ready();
    return n;
  }

  async stop(port: number): Promise<RunResult> {
    const n = this.byPort.get(port);
    if (!n) throw new Error(`node ${port} is not running`);
    const res = await n.stop('SIGINT');
    this.byPort.delete(port);
    return res;
  }
}
