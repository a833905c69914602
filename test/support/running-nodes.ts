/**
 * The nodes a test file runs, by port (one node per port at a time): spawned, or started and
 * waited for; stopped cleanly or killed with their whole process group, by port. `byPort` is what
 * stopAllNodes (process-group.ts) cleans up at the end.
 */
import { TestNode, type NodeOptions, type RunResult } from './node.js';
import { groupGone } from './process-group.js';

export class RunningNodes {
  readonly byPort = new Map<number, TestNode>();

  /** Spawns a node without waiting for it. */
  spawn(opts: NodeOptions): TestNode {
    if (this.byPort.has(opts.port)) throw new Error(`node ${opts.port} is already running`);
    const n = new TestNode(opts);
    this.byPort.set(opts.port, n);
    return n;
  }

  /** Starts a node and waits until it accepts connections. */
  async start(opts: NodeOptions, timeoutMs?: number): Promise<TestNode> {
    const n = this.spawn(opts);
    await n.ready(timeoutMs);
    return n;
  }

  async stop(port: number): Promise<RunResult> {
    const n = this.get(port);
    const res = await n.stop('SIGINT');
    this.byPort.delete(port);
    return res;
  }

  /** SIGKILL to the node's whole process group (spawned detached), as a container kill; waits until all of it is gone. */
  async crash(port: number): Promise<void> {
    const n = this.get(port);
    await n.killGroup('SIGKILL');
    this.byPort.delete(port);
    await groupGone(n.pid);
  }

  /** Forgets a node that has exited by itself. */
  forget(port: number): void {
    this.byPort.delete(port);
  }

  private get(port: number): TestNode {
    const n = this.byPort.get(port);
    if (!n) throw new Error(`node ${port} is not running`);
    return n;
  }
}
