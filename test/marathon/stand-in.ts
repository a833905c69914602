/**
 * A local stand-in for Marathon's v2 REST API, with what the marathon/ scripts use:
 *
 *   GET    /v2/apps                      {"apps": [...]}
 *   POST   /v2/apps                      201 with the app (and its deployment); 409 if it exists
 *   GET    /v2/apps/{id}                 {"app": {...}} with Marathon's read-only fields and nulls
 *   PUT    /v2/apps/{id}[?force=true]    a partial update (each top-level field given replaces the
 *                                        app's): 200 {version, deploymentId}; 201 if it creates the app
 *   DELETE /v2/apps/{id}[?force=true]    200 {version, deploymentId}
 *   GET    /v2/apps/{id}/tasks           {"tasks": [...]}, each with its host, state, version, health
 *   POST   /v2/apps/{id}/restart         200 {version, deploymentId}
 *   GET    /v2/deployments               the deployments in progress
 *
 * with Marathon's error shapes: 404 {message}, 409 {message, deployments: [{id}]} while a
 * deployment locks the app (unless ?force=true, which cancels it), 422 {message, details: [{path,
 * errors}]}. Every POST/PUT body is validated against Marathon's AppDefinition.json (an invalid
 * one gets a 422 and is recorded in schemaViolations()), then against rules Marathon checks and
 * the schema does not (AppValidation.scala, AppDefinition.scala): a persistent volume's
 * containerPath has no "/", its mode is RW and its size > 0; a resident app (one with a persistent
 * volume) has upgradeStrategy.maximumOverCapacity 0 and no unreachableStrategy other than
 * "disabled"; an update of a resident app changes neither its persistent volumes nor its
 * resources (cpus, mem, disk, gpus, host ports, requirePorts); MARATHON_SINGLE_INSTANCE_APP apps
 * have one instance and a 0/0 upgrade strategy; a health check's portIndex addresses a port;
 * portDefinitions only with host networking,
 * portMappings not with it; at most one Mesos health check; constraint operators and values.
 *
 * Deployments finish after a delay, on a simulated cluster of agents: a deployment first kills
 * the app's tasks of other versions on reachable agents, then launches one task per instance on
 * the agent its persistent volume pins it to (or, for a new app, the first reachable agent that
 * meets its hostname constraints). A deployment of an app whose agent is unreachable, or of an
 * app in stuckApps, never finishes. An agent made unreachable turns its tasks TASK_UNREACHABLE;
 * back, they run again (with their old version) until a deployment kills them.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ErrorObject } from 'ajv';
import { validateApp } from './schemas.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

export interface Task {
  id: string;
  appId: string;
  host: string;
  slaveId: string;
  state: string;
  version: string;
  startedAt: string;
  stagedAt: string;
  ports: number[];
  healthCheckResults: Json[];
}

interface StoredApp {
  def: Json;
  version: string;
  tasks: Task[];
  /** the agent holding its persistent volume, once it has run */
  pinnedHost?: string | undefined;
}

interface Deployment {
  id: string;
  version: string;
  appId: string;
  action: 'StartApplication' | 'RestartApplication' | 'StopApplication';
  startedAt: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
  body: Json;
  status: number;
  response: Json;
  schemaErrors: ErrorObject[];
  ruleErrors: { path: string; errors: string[] }[];
  injected: boolean;
  /** when it arrived, on the clock of events */
  at: number;
}

/** What happened to tasks, in order. */
export interface TaskEvent {
  at: number;
  kind: 'kill' | 'launch';
  appId: string;
  taskId: string;
  host: string;
  version: string;
}

export interface Injection {
  method: string;
  path: string;
  status: number;
  body: Json;
  /** how many requests it answers (default 1) */
  times?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
  ) {
    super(typeof body?.message === 'string' ? body.message : `HTTP ${status}`);
  }
}

const RUNNING_STATES = new Set(['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING']);

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function absoluteId(id: string): string {
  return '/' + id.replace(/^\/+/, '').replace(/\/+$/, '');
}

function isResident(def: Json): boolean {
  return (def?.container?.volumes ?? []).some((v: Json) => v && v.persistent);
}

function persistentVolumes(def: Json): Json[] {
  return (def?.container?.volumes ?? []).filter((v: Json) => v && v.persistent);
}

function portMappingsOf(def: Json): Json[] {
  return [...(def?.container?.portMappings ?? []), ...(def?.container?.docker?.portMappings ?? [])];
}

function hostNetworking(def: Json): boolean {
  const nets: Json[] = def?.networks ?? [];
  if (nets.length > 0) return nets.some((n) => n?.mode === 'host');
  const dockerNet = def?.container?.docker?.network;
  return dockerNet === undefined || dockerNet === 'HOST';
}

/** Marathon's path notation in 422 details: /container/volumes(0)/containerPath. */
function marathonPath(instancePath: string): string {
  return (instancePath || '/').replace(/\/(\d+)(?=\/|$)/g, '($1)');
}

export class MarathonStandIn {
  readonly hosts = new Map<string, { reachable: boolean }>();
  readonly apps = new Map<string, StoredApp>();
  deployments: Deployment[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly stuckApps = new Set<string>();
  /** apps whose tasks do not die when killed (a task that ignores its kill) */
  readonly unkillableApps = new Set<string>();
  readonly events: TaskEvent[] = [];
  readonly injections: Injection[] = [];
  killDelayMs = 30;
  deployDelayMs = 150;
  url = '';

  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private clock = Date.parse('2024-05-01T12:00:00.000Z');
  private servicePort = 10100;

  constructor(hosts: string[] = ['10.0.1.11', '10.0.1.12', '10.0.1.13']) {
    for (const h of hosts) this.hosts.set(h, { reachable: true });
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.timer = setInterval(() => this.tick(), 10);
    return this.url;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  // ---- what tests look at and set up ----

  /** Requests whose body failed AppDefinition.json. */
  schemaViolations(): RecordedRequest[] {
    return this.requests.filter((r) => r.schemaErrors.length > 0);
  }

  /** Requests refused by the rules the schema does not cover. */
  ruleViolations(): RecordedRequest[] {
    return this.requests.filter((r) => r.ruleErrors.length > 0);
  }

  /** The requests sent, other than reads, in order. */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  app(id: string): Json {
    return clone(this.apps.get(absoluteId(id))?.def);
  }

  tasks(id: string): Task[] {
    return clone(this.apps.get(absoluteId(id))?.tasks ?? []);
  }

  inject(i: Injection): void {
    this.injections.push({ times: 1, ...i });
  }

  setReachable(host: string, reachable: boolean): void {
    const h = this.hosts.get(host);
    if (!h) throw new Error(`no host ${host}`);
    h.reachable = reachable;
    for (const app of this.apps.values()) {
      for (const t of app.tasks) {
        if (t.host !== host) continue;
        if (!reachable && RUNNING_STATES.has(t.state)) t.state = 'TASK_UNREACHABLE';
        else if (reachable && t.state === 'TASK_UNREACHABLE') t.state = 'TASK_RUNNING';
      }
    }
  }

  /** An app that exists and runs (healthy) on a host, without a deployment; it must be valid. */
  seedApp(def: Json, host?: string): void {
    const errors = validateApp(def);
    if (errors.length > 0) throw new Error(`seedApp: invalid app ${JSON.stringify(errors)}`);
    const version = this.nextVersion();
    const stored: StoredApp = { def: this.normalize(def), version, tasks: [] };
    const rules = this.rules(stored.def, undefined);
    if (rules.length > 0) throw new Error(`seedApp: ${JSON.stringify(rules)}`);
    if (this.apps.has(stored.def.id)) throw new Error(`seedApp: ${stored.def.id} exists`);
    this.apps.set(stored.def.id, stored);
    const h = host ?? this.place(stored);
    if (h) this.launch(stored, h, version);
  }

  /** What Marathon would say of an app definition (POST): schema errors, then its own rules. */
  check(def: Json): { schema: ErrorObject[]; rules: { path: string; errors: string[] }[] } {
    const schema = validateApp(def);
    return { schema, rules: schema.length > 0 ? [] : this.rules(this.normalize(def), undefined) };
  }

  /** Waits until no deployment is left (or throws after timeoutMs). */
  async settle(timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.deployments.length > 0) {
      if (Date.now() > end) throw new Error(`deployments left: ${JSON.stringify(this.deployments)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      rawBody,
      body: undefined,
      status: 0,
      response: undefined,
      schemaErrors: [],
      ruleErrors: [],
      injected: false,
      at: performance.now(),
    };
    this.requests.push(rec);
    let status = 200;
    let body: Json;
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    try {
      if (rawBody !== '') {
        try {
          rec.body = JSON.parse(rawBody);
        } catch {
          throw new HttpError(400, { message: 'Invalid JSON', details: [{ path: '/', errors: ['error.expected.jsobject'] }] });
        }
      }
      const injection = this.injections.find((i) => i.method === rec.method && i.path === rec.path && (i.times ?? 1) > 0);
      if (injection) {
        injection.times = (injection.times ?? 1) - 1;
        rec.injected = true;
        throw new HttpError(injection.status, injection.body);
      }
      [status, body] = this.route(rec, url, headers);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      status = err.status;
      body = err.body;
    }
    rec.status = status;
    rec.response = body;
    res.writeHead(status, headers);
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  private route(rec: RecordedRequest, url: URL, headers: Record<string, string>): [number, Json] {
    const force = url.searchParams.get('force') === 'true';
    const { method, path } = rec;
    if (path === '/v2/deployments' && method === 'GET') return [200, this.deployments.map((d) => this.deploymentView(d))];
    if (path === '/v2/apps' || path === '/v2/apps/') {
      if (method === 'GET') return [200, { apps: [...this.apps.values()].map((a) => this.appView(a, url.searchParams.get('embed') === 'apps.tasks')) }];
      if (method === 'POST') return this.create(rec, headers);
    }
    const m = /^\/v2\/apps(\/.+?)(\/tasks|\/restart)?\/?$/.exec(path);
    if (m) {
      const id = absoluteId(m[1]!);
      if (m[2] === '/tasks' && method === 'GET') return [200, { tasks: clone(this.existing(id).tasks) }];
      if (m[2] === '/restart' && method === 'POST') return this.restart(id, force, headers);
      if (m[2] === undefined) {
        if (method === 'GET') return [200, { app: this.appView(this.existing(id), true) }];
        if (method === 'PUT') return this.put(rec, id, force, headers);
        if (method === 'DELETE') return this.remove(id, force, headers);
      }
    }
    throw new HttpError(404, { message: `stand-in: no route for ${method} ${path}` });
  }

  private existing(id: string): StoredApp {
    const app = this.apps.get(id);
    if (!app) throw new HttpError(404, { message: `App '${id}' does not exist` });
    return app;
  }

  private checkLock(id: string, force: boolean): void {
    const locking = this.deployments.filter((d) => d.appId === id);
    if (locking.length === 0) return;
    if (force) {
      this.deployments = this.deployments.filter((d) => d.appId !== id);
      return;
    }
    throw new HttpError(409, {
      message: `App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.`,
      deployments: locking.map((d) => ({ id: d.id })),
    });
  }

  private validateBody(rec: RecordedRequest): void {
    rec.schemaErrors = validateApp(rec.body);
    if (rec.schemaErrors.length > 0) {
      throw new HttpError(422, {
        message: 'Object is not valid',
        details: rec.schemaErrors.map((e) => ({ path: marathonPath(e.instancePath), errors: [`${e.message ?? 'invalid'} ${JSON.stringify(e.params)}`] })),
      });
    }
  }

  private refuse(rec: RecordedRequest, errors: { path: string; errors: string[] }[]): void {
    if (errors.length === 0) return;
    rec.ruleErrors = errors;
    throw new HttpError(422, { message: 'Object is not valid', details: errors });
  }

  private create(rec: RecordedRequest, headers: Record<string, string>): [number, Json] {
    this.validateBody(rec);
    const def = this.normalize(rec.body);
    if (this.apps.has(def.id)) throw new HttpError(409, { message: `An app with id [${def.id}] already exists.` });
    this.refuse(rec, this.rules(def, undefined));
    const version = this.nextVersion();
    const stored: StoredApp = { def, version, tasks: [] };
    this.apps.set(def.id, stored);
    const d = this.deploy(def.id, version, 'StartApplication');
    headers['Location'] = `${this.url}/v2/apps${def.id}`;
    headers['Marathon-Deployment-Id'] = d.id;
    return [201, { ...this.appView(stored, false), deployments: [{ id: d.id }] }];
  }

  private put(rec: RecordedRequest, id: string, force: boolean, headers: Record<string, string>): [number, Json] {
    this.validateBody(rec);
    const existing = this.apps.get(id);
    if (!existing) {
      const def = this.normalize({ ...rec.body, id });
      this.refuse(rec, this.rules(def, undefined));
      const version = this.nextVersion();
      this.apps.set(id, { def, version, tasks: [] });
      const d = this.deploy(id, version, 'StartApplication');
      headers['Location'] = `${this.url}/v2/apps${id}`;
      headers['Marathon-Deployment-Id'] = d.id;
      return [201, { version, deploymentId: d.id }];
    }
    this.checkLock(id, force);
    const merged = { ...clone(existing.def), ...clone(rec.body), id };
    delete merged.version;
    const def = this.normalize(merged);
    this.refuse(rec, this.rules(def, existing.def));
    const version = this.nextVersion();
    existing.def = def;
    existing.version = version;
    const d = this.deploy(id, version, 'RestartApplication');
    headers['Marathon-Deployment-Id'] = d.id;
    return [200, { version, deploymentId: d.id }];
  }

  private remove(id: string, force: boolean, headers: Record<string, string>): [number, Json] {
    this.existing(id);
    this.checkLock(id, force);
    const version = this.nextVersion();
    // Marathon removes the app at once; the deployment kills its tasks.
    this.apps.delete(id);
    const d = this.deploy(id, version, 'StopApplication');
    headers['Marathon-Deployment-Id'] = d.id;
    return [200, { version, deploymentId: d.id }];
  }

  private restart(id: string, force: boolean, headers: Record<string, string>): [number, Json] {
    const app = this.existing(id);
    this.checkLock(id, force);
    const version = this.nextVersion();
    app.version = version;
    const d = this.deploy(id, version, 'RestartApplication');
    headers['Marathon-Deployment-Id'] = d.id;
    return [200, { version, deploymentId: d.id }];
  }

  // ---- Marathon's model ----

  private nextVersion(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString();
  }

  /** Marathon's normalization: defaults filled in, as GET shows them. */
  private normalize(input: Json): Json {
    const def = clone(input);
    def.id = absoluteId(def.id);
    const resident = isResident(def);
    def.instances ??= 1;
    def.cpus ??= 1;
    def.mem ??= 128;
    def.disk ??= 0;
    def.gpus ??= 0;
    def.env ??= {};
    def.labels ??= {};
    def.constraints ??= [];
    def.healthChecks ??= [];
    def.backoffSeconds ??= 1;
    def.backoffFactor ??= 1.15;
    def.maxLaunchDelaySeconds ??= 3600;
    def.requirePorts ??= false;
    def.killSelection ??= 'YOUNGEST_FIRST';
    def.upgradeStrategy = { ...(resident ? { minimumHealthCapacity: 0.5, maximumOverCapacity: 0 } : { minimumHealthCapacity: 1, maximumOverCapacity: 1 }), ...(def.upgradeStrategy ?? {}) };
    def.unreachableStrategy ??= resident ? 'disabled' : { inactiveAfterSeconds: 0, expungeAfterSeconds: 0 };
    if (def.container) {
      def.container.type ??= 'DOCKER';
      def.container.volumes ??= [];
      for (const v of def.container.volumes) {
        if (v.persistent) {
          v.persistent.type ??= 'root';
          v.persistent.constraints ??= [];
          v.mode ??= 'RW';
        }
      }
      for (const pm of def.container.portMappings ?? []) {
        pm.protocol ??= 'tcp';
        pm.labels ??= {};
        if (!pm.servicePort) pm.servicePort = this.servicePort++;
      }
      if (def.container.docker) {
        def.container.docker.forcePullImage ??= false;
        def.container.docker.privileged ??= false;
        def.container.docker.parameters ??= [];
      }
    }
    return def;
  }

  /** The rules Marathon checks beyond the schema, on a normalized app (and the app it replaces). */
  private rules(def: Json, from: Json | undefined): { path: string; errors: string[] }[] {
    const out: { path: string; errors: string[] }[] = [];
    const fail = (path: string, error: string): void => void out.push({ path, errors: [error] });
    const volumes: Json[] = def.container?.volumes ?? [];
    volumes.forEach((v, i) => {
      if (!v.persistent) return;
      const p = `/container/volumes(${i})`;
      if (typeof v.containerPath !== 'string' || v.containerPath === '' || v.containerPath === '.' || v.containerPath === '..') fail(`${p}/containerPath`, 'must not be empty, "." or ".."');
      else if (v.containerPath.includes('/')) fail(`${p}/containerPath`, 'value must not contain "/"');
      if (v.mode !== 'RW') fail(`${p}/mode`, 'got RO, expected RW');
      if (!(v.persistent.size > 0)) fail(`${p}/persistent/size`, 'got 0, expected more than 0');
      if (v.persistent.maxSize !== undefined && v.persistent.type !== 'mount') fail(`${p}/persistent`, 'Only mount volumes can have maxSize');
    });
    const us = def.upgradeStrategy;
    if (isResident(def)) {
      if (us.maximumOverCapacity !== 0) fail('/upgradeStrategy/maximumOverCapacity', `got ${us.maximumOverCapacity}, expected 0.0`);
      if (def.unreachableStrategy !== 'disabled') fail('/unreachableStrategy', 'unreachableStrategy must be disabled for resident tasks');
    }
    if (def.labels?.MARATHON_SINGLE_INSTANCE_APP === 'true') {
      if (def.instances > 1) fail('/', 'Single instance app may only have one instance');
      if (us.minimumHealthCapacity !== 0 || us.maximumOverCapacity !== 0) fail('/upgradeStrategy', 'got {minimumHealthCapacity, maximumOverCapacity}, expected 0.0 for a single instance app');
    }
    const host = hostNetworking(def);
    if (host && portMappingsOf(def).length > 0) fail('/', 'portMappings are not allowed with host-networking');
    if (!host && (def.portDefinitions ?? []).length > 0) fail('/', 'portDefinitions are only allowed with host-networking');
    if (def.container?.docker?.network !== undefined && (def.networks ?? []).length > 0) fail('/', 'must not specify both container.docker.network and networks');
    const mesosChecks = (def.healthChecks as Json[]).filter((h) => ['COMMAND', 'MESOS_HTTP', 'MESOS_HTTPS', 'MESOS_TCP'].includes(h.protocol) || h.command);
    if (mesosChecks.length > 1) fail('/healthChecks', 'AppDefinition can contain at most one Mesos health check');
    const portCount = portMappingsOf(def).length + (def.portDefinitions ?? []).length;
    (def.healthChecks as Json[]).forEach((h, i) => {
      if (h.protocol === 'COMMAND' && !h.command?.value) fail(`/healthChecks(${i})/command`, 'a COMMAND health check needs command.value');
      if (h.protocol !== 'COMMAND' && h.port === undefined && !((h.portIndex ?? 0) < portCount)) {
        fail(`/healthChecks(${i})`, 'Health check port indices must address an element of the ports array or container port mappings.');
      }
    });
    (def.constraints as Json[]).forEach((c, i) => {
      const [, op, value] = c as [string, string, string | undefined];
      if ((op === 'LIKE' || op === 'UNLIKE') && value === undefined) fail(`/constraints(${i})`, 'A regular expression value must be provided');
      if ((op === 'LIKE' || op === 'UNLIKE') && value !== undefined) {
        try {
          new RegExp(value);
        } catch {
          fail(`/constraints(${i})`, `'${value}' is not a valid regular expression`);
        }
      }
      if (op === 'UNIQUE' && value !== undefined && value !== '') fail(`/constraints(${i})`, 'Value specified but not used');
      if (op === 'CLUSTER' && !value) fail(`/constraints(${i})`, 'Missing value');
    });
    if (from && (isResident(from) || isResident(def))) {
      const fromVolumes = persistentVolumes(from);
      const toVolumes = persistentVolumes(def);
      const same =
        fromVolumes.length === toVolumes.length &&
        fromVolumes.every((fv) => {
          const tv = toVolumes.find((v) => v.containerPath === fv.containerPath);
          return tv !== undefined && JSON.stringify(sortKeys(tv)) === JSON.stringify(sortKeys(fv));
        });
      if (!same) fail('/', 'Persistent volumes can not be changed!');
      const hostPorts = (d: Json): string =>
        JSON.stringify([...new Set([...portMappingsOf(d).map((p) => p.hostPort ?? 0), ...(d.portDefinitions ?? []).map((p: Json) => p.port)])].sort());
      if (from.cpus !== def.cpus || from.mem !== def.mem || from.disk !== def.disk || from.gpus !== def.gpus || hostPorts(from) !== hostPorts(def) || from.requirePorts !== def.requirePorts)
        fail('/', 'Resident Tasks may not change resource requirements!');
    }
    return out;
  }

  private deploy(appId: string, version: string, action: Deployment['action']): Deployment {
    const d: Deployment = { id: randomUUID(), version, appId, action, startedAt: Date.now() };
    this.deployments.push(d);
    return d;
  }

  private deploymentView(d: Deployment): Json {
    return {
      id: d.id,
      version: d.version,
      affectedApps: [d.appId],
      affectedPods: [],
      steps: [{ actions: [{ action: d.action, app: d.appId }] }],
      currentActions: [{ action: d.action, app: d.appId, readinessCheckResults: [] }],
      currentStep: 1,
      totalSteps: 1,
    };
  }

  private appView(app: StoredApp, withTasks: boolean): Json {
    const running = app.tasks.filter((t) => t.state === 'TASK_RUNNING');
    const view: Json = {
      ...clone(app.def),
      // GET shows these; an app definition sent back as is would be refused (nulls, read-only fields)
      cmd: app.def.cmd ?? null,
      args: app.def.args ?? null,
      user: app.def.user ?? null,
      version: app.version,
      versionInfo: { lastScalingAt: app.version, lastConfigChangeAt: app.version },
      tasksStaged: 0,
      tasksRunning: running.length,
      tasksHealthy: running.filter((t) => t.healthCheckResults.length > 0 && t.healthCheckResults.every((r) => r.alive)).length,
      tasksUnhealthy: running.filter((t) => t.healthCheckResults.some((r) => !r.alive)).length,
      deployments: this.deployments.filter((d) => d.appId === app.def.id).map((d) => ({ id: d.id })),
    };
    if (withTasks) view.tasks = clone(app.tasks);
    return view;
  }

  /** The agent for a new task: the pinned one, else the first reachable one its constraints allow. */
  private place(app: StoredApp): string | undefined {
    if (app.pinnedHost) return this.hosts.get(app.pinnedHost)?.reachable ? app.pinnedHost : undefined;
    for (const [host, h] of this.hosts) {
      if (!h.reachable) continue;
      const ok = (app.def.constraints as Json[]).every(([field, op, value]: [string, string, string]) => {
        if (field !== 'hostname') return true;
        const matches = new RegExp(`^(?:${value})$`).test(host);
        if (op === 'LIKE') return matches;
        if (op === 'UNLIKE') return !matches;
        if (op === 'IS') return host === value;
        return true;
      });
      if (ok) return host;
    }
    return undefined;
  }

  private launch(app: StoredApp, host: string, version: string): void {
    const now = new Date(this.clock).toISOString();
    const taskId = `${app.def.id.slice(1).replaceAll('/', '_')}.${randomUUID()}`;
    app.tasks.push({
      id: taskId,
      appId: app.def.id,
      host,
      slaveId: `agent-${host}`,
      state: 'TASK_RUNNING',
      version,
      stagedAt: now,
      startedAt: now,
      // one host port per port mapping (port definition), as Marathon's tasks list them
      ports: (portMappingsOf(app.def).length > 0 ? portMappingsOf(app.def) : (app.def.portDefinitions ?? [{}])).map(
        (pm: Json, i: number) => (pm.hostPort || pm.port || 31000 + 10 * app.tasks.length + i),
      ),
      healthCheckResults: (app.def.healthChecks as Json[]).length > 0 ? [{ alive: true, consecutiveFailures: 0, firstSuccess: now, lastSuccess: now, lastFailure: null, taskId }] : [],
    });
    if (isResident(app.def)) app.pinnedHost = host;
    this.events.push({ at: performance.now(), kind: 'launch', appId: app.def.id, taskId, host, version });
  }

  private reachable(t: Task): boolean {
    return this.hosts.get(t.host)?.reachable ?? false;
  }

  /** Moves deployments on: kill old tasks, then launch new ones and finish. */
  private tick(): void {
    const now = Date.now();
    for (const d of [...this.deployments]) {
      if (now - d.startedAt < this.killDelayMs) continue;
      const app = this.apps.get(d.appId);
      if (!app || d.action === 'StopApplication') {
        if (now - d.startedAt >= this.deployDelayMs && !this.stuckApps.has(d.appId)) this.deployments = this.deployments.filter((x) => x !== d);
        continue;
      }
      // Old tasks die where their agent can be reached.
      app.tasks = app.tasks.filter((t) => {
        if (t.version === d.version || !this.reachable(t) || this.unkillableApps.has(app.def.id)) return true;
        this.events.push({ at: performance.now(), kind: 'kill', appId: app.def.id, taskId: t.id, host: t.host, version: t.version });
        return false;
      });
      if (now - d.startedAt < this.deployDelayMs || this.stuckApps.has(d.appId)) continue;
      if (app.tasks.some((t) => t.version !== d.version)) continue; // an old task on an unreachable agent
      while (app.tasks.length < app.def.instances) {
        const host = this.place(app);
        if (!host) break;
        this.launch(app, host, d.version);
      }
      if (app.tasks.length >= app.def.instances) this.deployments = this.deployments.filter((x) => x !== d);
    }
  }
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}
