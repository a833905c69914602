/**
 * The Kubernetes manifests (kubernetes/) as the tests read them: the objects kustomize would
 * apply (the resources kustomization.yaml lists, and the Secret its generator makes), and the
 * two things a cluster does to them that the tests need without a cluster: the StatefulSet
 * controller's pod for an ordinal, and the kubelet's environment for a container (downward API
 * fields and $(VAR) references).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const KUBERNETES_DIR = resolve(import.meta.dirname, '..', '..', 'kubernetes');

/** A Kubernetes object, loosely typed: the tests navigate it and validate it with kubernetes-models. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

export interface Kustomization {
  resources: string[];
  secretGenerator?: { name: string; files: string[] }[];
  generatorOptions?: { disableNameSuffixHash?: boolean };
  images?: { name: string; newName?: string; newTag?: string }[];
}

/** YAML as Kubernetes reads it: YAML 1.1 (sigs.k8s.io/yaml), where 0400 is octal. */
export function parseYamlFile(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, 'utf8'), { version: '1.1' }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  });
}

export function loadKustomization(): Kustomization {
  return parseYamlFile(join(KUBERNETES_DIR, 'kustomization.yaml'))[0] as Kustomization;
}

/** The Secret a secretGenerator entry makes (its keys; the values are the user's files, not in git). */
function generatedSecret(g: { name: string; files: string[] }): K8sObject {
  const data = Object.fromEntries(g.files.map((f) => [f.includes('=') ? f.split('=')[0]! : f.split('/').pop()!, '']));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: g.name }, type: 'Opaque', data };
}

/** Every object `kubectl apply -k kubernetes/` applies, with the file it comes from. */
export function loadManifests(): { file: string; object: K8sObject }[] {
  const k = loadKustomization();
  const out = k.resources.flatMap((file) => parseYamlFile(join(KUBERNETES_DIR, file)).map((object) => ({ file, object: object as K8sObject })));
  for (const g of k.secretGenerator ?? []) out.push({ file: 'kustomization.yaml', object: generatedSecret(g) });
  return out;
}

/** The one object of a kind and name; throws if there is not exactly one. */
export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0]!;
}

/**
 * The pod the StatefulSet controller makes for `ordinal`: named <set>-<ordinal>, with the
 * template's labels and the pod-name label, host name = that name, subdomain = the governing
 * Service, and a volume per claim template bound to the claim <template>-<set>-<ordinal>.
 * `podName` and `claimName` rename them (a test's own names), leaving the host name as the
 * controller sets it.
 */
export function podFromStatefulSet(
  sts: K8sObject,
  ordinal: number,
  rename: { podName?: (name: string) => string; claimName?: (name: string) => string } = {},
): K8sObject {
  const name = `${sts.metadata.name}-${ordinal}`;
  const podName = rename.podName?.(name) ?? name;
  const template = structuredClone(sts.spec.template);
  const claims = (sts.spec.volumeClaimTemplates ?? []) as K8sObject[];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, labels: { ...template.metadata?.labels, 'statefulset.kubernetes.io/pod-name': podName } },
    spec: {
      ...template.spec,
      hostname: name,
      subdomain: sts.spec.serviceName,
      volumes: [
        ...(template.spec.volumes ?? []),
        ...claims.map((c) => {
          const claim = `${c.metadata.name}-${name}`;
          return { name: c.metadata.name, persistentVolumeClaim: { claimName: rename.claimName?.(claim) ?? claim } };
        }),
      ],
    },
  };
}

/** The container's env entries: literal values or downward API fields. */
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

/**
 * $(NAME) references in `value` expanded from `known`, as the kubelet does: $$ is a literal $,
 * a reference to a variable not (yet) defined stays as it is.
 */
export function expandReferences(value: string, known: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    name === undefined ? '$' : (known[name] ?? match),
  );
}

/**
 * A container's environment as the kubelet gives it: each entry in order, fields from `fields`
 * (fieldPath -> value, e.g. metadata.name), $(NAME) referring to the entries before it.
 */
export function containerEnv(container: { env?: EnvVar[] }, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) {
    const path = v.valueFrom?.fieldRef?.fieldPath;
    if (path !== undefined) {
      if (fields[path] === undefined) throw new Error(`env ${v.name}: no value for the field ${path}`);
      env[v.name] = fields[path]!;
    } else env[v.name] = expandReferences(v.value ?? '', env);
  }
  return env;
}

/** A container's port by name or number. */
export function containerPort(container: { ports?: { name?: string; containerPort: number }[] }, port: string | number): number | undefined {
  if (typeof port === 'number') return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * Fields the Kubernetes API does not know, by TypeScript's excess property check against the
 * kubernetes-models interfaces (generated from the same OpenAPI specification): the schemas
 * themselves allow unknown fields, which the API server refuses (kubectl's default strict field
 * validation) or drops. One message per object with such a field (the first one), else none.
 */
export function unknownFields(objects: K8sObject[]): string[] {
  const root = resolve(KUBERNETES_DIR, '..');
  const file = join(root, 'test', 'kubernetes-manifests.virtual.ts');
  const modules = [...new Set(objects.map((o) => o.apiVersion))];
  const text = [
    ...modules.map((m, i) => `import type * as m${i} from 'kubernetes-models/${m}';`),
    ...objects.map((o, i) => `export const o${i}: m${modules.indexOf(o.apiVersion)}.I${o.kind} = ${JSON.stringify(o)};`),
  ].join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists } = host;
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, text, language) : getSourceFile.call(host, name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  return ts.getPreEmitDiagnostics(ts.createProgram([file], options, host)).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const o = line >= modules.length ? objects[line - modules.length] : undefined;
    return `${o ? `${o.kind}/${o.metadata.name}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
