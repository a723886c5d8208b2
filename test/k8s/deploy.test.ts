/**
 * deploy/: every YAML document (plain manifests, examples, DeviceClasses, and the Helm chart
 * rendered with its defaults and with each switch flipped) parsed and checked as a typed
 * Kubernetes object with client-node's serializer (test/k8s/typed.ts: an unknown field or a
 * wrong type fails), the kube-scheduler's configuration and cert-manager's objects against
 * schemas written from their Go types, the controller's config against the controller's own
 * schema; the plain manifests equal to the chart's rendering; the pieces agreeing with each
 * other and with the code (names, ports, paths, resource names); the examples doing what they say.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap, V1DaemonSet, V1Deployment, V1Job, V1MutatingWebhookConfiguration, V1Pod, V1ResourceClaimTemplate, V1Service } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { controllerConfigSchema } from '../../src/k8s/controller/config.js';
import { deviceClasses } from '../../src/k8s/dra/device-classes.js';
import { parseGpuConfig } from '../../src/k8s/dra/config.js';
import { DEVICE_CLASS, DRIVER_NAME } from '../../src/k8s/dra/names.js';
import { Extender } from '../../src/k8s/extender/extender.js';
import { DEFAULT_PREFIX } from '../../src/k8s/extender/server.js';
import { decodeDecision } from '../../src/k8s/hami/decision.js';
import { RESOURCE } from '../../src/k8s/hami/names.js';
import { parsePodGpuRequest } from '../../src/k8s/hami/pod-request.js';
import { DEFAULT_WEBHOOK_PATH } from '../../src/k8s/webhook/server.js';
import { certManagerCertificateSchema, certManagerIssuerSchema, kubeSchedulerConfigurationSchema } from './deploy-schemas.js';
import { CHART_DIR, DEFAULT_NAMESPACE, documents, manifestText, renderChart, TemplateError } from './deploy-render.js';
import { gpuNode, MemoryApi } from './extender-memory-api.js';
import { typeProblems } from './deploy-typed.js';
import { checkWire, typeOf } from './typed.js';

type Doc = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

const DEPLOY = new URL('../../deploy/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, DEPLOY), 'utf8');
const yamlFiles = (dir: string): string[] => readdirSync(new URL(dir, DEPLOY)).filter((f) => f.endsWith('.yaml')).map((f) => `${dir}${f}`);
const docsOf = (text: string): Doc[] => yaml.loadAll(text).filter((d): d is Doc => d !== null && d !== undefined);
const find = <T>(docs: readonly Doc[], kind: string, name: string): T => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!d) throw new Error(`no ${kind} ${name}`);
  return d as unknown as T;
};

/** One document checked the strictest way there is for its kind; returns what was checked. */
function checkDocument(doc: Doc, where: string): string {
  if (doc.apiVersion === 'cert-manager.io/v1') {
    const schema = doc.kind === 'Issuer' ? certManagerIssuerSchema : doc.kind === 'Certificate' ? certManagerCertificateSchema : null;
    if (!schema) throw new Error(`${where}: no schema for cert-manager ${doc.kind}`);
    schema.parse(doc);
    return `cert-manager ${doc.kind}`;
  }
  const type = typeOf(doc);
  try {
    checkWire(doc, type);
  } catch (e) {
    throw new Error(`${where}: ${doc.kind} ${doc.metadata.name}: ${(e as Error).message}`, { cause: e });
  }
  const wrong = typeProblems(doc, type);
  if (wrong.length > 0) throw new Error(`${where}: ${doc.kind} ${doc.metadata.name}: wrong types: ${wrong.join('; ')}`);
  if (doc.kind === 'ConfigMap') {
    const data = (doc as unknown as V1ConfigMap).data ?? {};
    if (data['config.yaml'] !== undefined) kubeSchedulerConfigurationSchema.parse(yaml.load(data['config.yaml']));
    if (data['controller.json'] !== undefined) controllerConfigSchema.parse(JSON.parse(data['controller.json']));
    // node.json is the node agent's (its schema is src/k8s/agent/config.ts): JSON at least.
    if (data['node.json'] !== undefined) JSON.parse(data['node.json']);
  }
  return type;
}

const rendered = (overrides: unknown = {}): Doc[] => documents(renderChart(overrides)) as Doc[];
const defaults = rendered();

describe('deploy/ YAML', () => {
  it('deploy/manifests/gpushare.yaml is the chart rendered with its default values', () => {
    const expected = `# gpushare, rendered from deploy/helm/gpushare with its default values (namespace ${DEFAULT_NAMESPACE}).\n# Do not edit: change the chart, then: npx tsx test/k8s/deploy-render.ts > deploy/manifests/gpushare.yaml\n${manifestText(renderChart())}`;
    expect(read('manifests/gpushare.yaml'), 'the chart changed: regenerate deploy/manifests/gpushare.yaml (npx tsx test/k8s/deploy-render.ts > deploy/manifests/gpushare.yaml)').toBe(expected);
    expect(docsOf(read('manifests/gpushare.yaml'))).toEqual(defaults);
  });

  it.each([...yamlFiles('manifests/'), ...yamlFiles('examples/'), ...yamlFiles('dra/')])('%s: every document is a typed Kubernetes object', (file) => {
    const docs = docsOf(read(file));
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) checkDocument(d, file);
  });

  const variants: [string, unknown][] = [
    ['defaults', {}],
    ['certManager off, own Secret and CA', { certManager: { enabled: false }, certificates: { secretName: 'my-tls', caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') } }],
    ['extender over plain HTTP', { extender: { plainHttp: true, plainHttpPort: 8181 } }],
    ['no suspend, no DRA classes, no slice policy, a runtime class', { node: { suspend: false, restrictSlicesToOwnNode: false, runtimeClassName: 'nvidia' }, dra: { deviceClasses: false } }],
    ['placement and suspend policy', { controller: { nodeSelector: { 'node-role.kubernetes.io/control-plane': '' }, tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] }, suspend: { namespaces: ['batch'], priorityClasses: ['low'] } }],
  ];
  it.each(variants)('the chart rendered with %s: every document typed', (_name, overrides) => {
    const docs = rendered(overrides);
    const kinds = docs.map((d) => checkDocument(d, 'chart'));
    expect(kinds).toContain('V1DaemonSet');
    expect(kinds).toContain('V1MutatingWebhookConfiguration');
  });

  it('the checks fail on a misspelt field or a wrong type, in every kind of document', () => {
    const deployment = structuredClone(find<Doc>(defaults, 'Deployment', 'gpushare-controller'));
    (deployment as unknown as V1Deployment).spec!.template.spec!.containers[0]!.imagePullPolicy = 'Always';
    expect(() => checkDocument(deployment, 't')).not.toThrow();
    Object.assign((deployment as unknown as V1Deployment).spec!.template.spec!.containers[0]!, { imagePullPolicyy: 'Always' });
    expect(() => checkDocument(deployment, 't')).toThrow(/Deployment gpushare-controller/);
    const ds = structuredClone(find<Doc>(defaults, 'DaemonSet', 'gpushare-node'));
    Object.assign((ds as unknown as V1DaemonSet).spec!, { minReadySeconds: 'soon' });
    expect(() => checkDocument(ds, 't')).toThrow(/\.spec\.minReadySeconds: expected a number, got string "soon"/);
    const labelled = structuredClone(find<Doc>(defaults, 'DaemonSet', 'gpushare-node'));
    (labelled as unknown as V1DaemonSet).spec!.template.spec!.nodeSelector = { 'nvidia.com/gpu.present': true as unknown as string };
    expect(() => checkDocument(labelled, 't')).toThrow(/nodeSelector\.nvidia\.com\/gpu\.present: expected a string, got boolean/);
    const cm = structuredClone(find<V1ConfigMap>(defaults, 'ConfigMap', 'gpushare-scheduler'));
    cm.data!['config.yaml'] = cm.data!['config.yaml']!.replace('nodeCacheCapable', 'nodeCacheCapabel');
    expect(() => checkDocument(cm as unknown as Doc, 't')).toThrow(/nodeCacheCapabel/);
    const weightless = structuredClone(find<V1ConfigMap>(defaults, 'ConfigMap', 'gpushare-scheduler'));
    weightless.data!['config.yaml'] = weightless.data!['config.yaml']!.replace('weight: 5', 'weight: 0');
    expect(() => checkDocument(weightless as unknown as Doc, 't')).toThrow(/positive weight/);
    const controller = structuredClone(find<V1ConfigMap>(defaults, 'ConfigMap', 'gpushare-controller'));
    controller.data!['controller.json'] = controller.data!['controller.json']!.replace('"explain"', '"explian"');
    expect(() => checkDocument(controller as unknown as Doc, 't')).toThrow(/explian/);
    const cert = structuredClone(find<Doc>(defaults, 'Certificate', 'gpushare-controller'));
    Object.assign(cert as Record<string, unknown>, { spec: { ...(cert.spec as object), dnsName: ['x'] } });
    expect(() => checkDocument(cert, 't')).toThrow(/dnsName/);
  });

  it('the chart\'s templates keep to the renderer\'s subset, and the renderer refuses the rest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpushare-chart-'));
    try {
      mkdirSync(join(dir, 'templates'));
      writeFileSync(join(dir, 'Chart.yaml'), 'name: t\nversion: 0.0.1\nappVersion: "1"\n');
      writeFileSync(join(dir, 'values.yaml'), 'a: {b: 1, list: [x]}\nflag: false\n');
      const render = (template: string): string => {
        writeFileSync(join(dir, 'templates', 't.yaml'), template);
        return renderChart({}, 'ns', dir)[0]!.text;
      };
      expect(render('x:\n  {{- if .Values.flag }}\n  no\n  {{- else }}\n  y: {{ .Values.a.b }}\n  {{- end }}\nz: {{ .Release.Namespace | quote }}\n')).toBe('x:\n  y: 1\nz: "ns"\n');
      expect(render('l:\n  {{- toYaml .Values.a.list | nindent 2 }}\n')).toBe('l:\n  - x\n');
      expect(() => render('{{ .Values.a.c }}')).toThrow(/\.Values\.a\.c is not in the values/);
      expect(() => render('{{ range .Values.a.list }}{{ end }}')).toThrow(/outside the chart's template subset/);
      expect(() => render('{{ include "x" . }}')).toThrow(TemplateError);
      expect(() => render('{{ .Values.a.b | upper }}')).toThrow(/"upper" is not a function/);
      expect(() => render('{{ required "give a" .Values.flag }}')).not.toThrow();
      expect(() => render('{{ if .Values.flag }}')).toThrow(/an if has no end/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the chart and deploy/dra ship the DeviceClasses the code builds', () => {
    const fromChart = defaults.filter((d) => d.kind === 'DeviceClass');
    expect(fromChart).toEqual(docsOf(read('dra/device-classes.yaml')));
    expect(JSON.parse(JSON.stringify(fromChart))).toEqual(JSON.parse(JSON.stringify(deviceClasses())));
  });
});

describe('the chart\'s pieces agree with each other and with the code', () => {
  const ns = DEFAULT_NAMESPACE;
  const schedulerConfig = (docs: Doc[]) => kubeSchedulerConfigurationSchema.parse(yaml.load(find<V1ConfigMap>(docs, 'ConfigMap', 'gpushare-scheduler').data!['config.yaml']!));
  const controllerConfig = (docs: Doc[]) => controllerConfigSchema.parse(JSON.parse(find<V1ConfigMap>(docs, 'ConfigMap', 'gpushare-controller').data!['controller.json']!));

  it('the scheduler calls the controller\'s Service over HTTPS at the extender\'s prefix, for HAMi\'s resources, and binds through it', () => {
    const config = schedulerConfig(defaults);
    const controller = controllerConfig(defaults);
    expect(config.profiles?.map((p) => p.schedulerName)).toEqual([controller.schedulerName]);
    const [ext] = config.extenders ?? [];
    expect(config.extenders).toHaveLength(1);
    expect(ext).toMatchObject({ urlPrefix: `https://gpushare-controller.${ns}.svc:443${DEFAULT_PREFIX}`, enableHTTPS: true, filterVerb: 'filter', prioritizeVerb: 'prioritize', bindVerb: 'bind', preemptVerb: 'preempt', nodeCacheCapable: true, ignorable: false });
    expect(controller.extender.prefix).toBe(DEFAULT_PREFIX);
    expect(ext?.tlsConfig).toEqual({ serverName: `gpushare-controller.${ns}.svc`, caFile: '/etc/gpushare/ca/ca.crt' });
    expect(ext?.managedResources).toEqual(Object.values(RESOURCE).map((name) => (name === RESOURCE.gpu ? { name } : { name, ignoredByScheduler: true })));
    expect(config.leaderElection).toEqual({ leaderElect: true, resourceNamespace: ns, resourceName: 'gpushare-scheduler' });
    const service = find<V1Service>(defaults, 'Service', 'gpushare-controller');
    expect(service.spec?.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
    // The scheduler mounts only the CA of the controller's Secret.
    const scheduler = find<V1Deployment>(defaults, 'Deployment', 'gpushare-scheduler').spec!.template.spec!;
    expect(scheduler.volumes?.find((v) => v.name === 'ca')?.secret).toEqual({ secretName: 'gpushare-controller-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
    expect(scheduler.containers[0]!.command).toContain('--config=/etc/kubernetes/gpushare-scheduler/config.yaml');
  });

  it('over plain HTTP, the scheduler, the Service and the controller name the same port', () => {
    const docs = rendered({ extender: { plainHttp: true, plainHttpPort: 8181 } });
    expect(schedulerConfig(docs).extenders?.[0]).toMatchObject({ urlPrefix: `http://gpushare-controller.${ns}.svc:8181${DEFAULT_PREFIX}`, enableHTTPS: false });
    expect(schedulerConfig(docs).extenders?.[0]?.tlsConfig).toBeUndefined();
    expect(controllerConfig(docs).extender.plainHttpPort).toBe(8181);
    expect(find<V1Service>(docs, 'Service', 'gpushare-controller').spec?.ports?.[1]).toEqual({ name: 'extender-http', port: 8181, targetPort: 'extender-http', protocol: 'TCP' });
    expect(find<V1Deployment>(docs, 'Deployment', 'gpushare-controller').spec!.template.spec!.containers[0]!.ports?.[1]).toEqual({ name: 'extender-http', containerPort: 8181, protocol: 'TCP' });
    expect(find<V1Deployment>(docs, 'Deployment', 'gpushare-scheduler').spec!.template.spec!.volumes?.map((v) => v.name)).toEqual(['config']);
  });

  it('the controller runs with its config and certificate where the config says, probed over HTTPS', () => {
    const config = controllerConfig(defaults);
    const pod = find<V1Deployment>(defaults, 'Deployment', 'gpushare-controller').spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.args).toEqual(['k8s', 'controller', '--config', '/etc/gpushare/controller.json']);
    expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/gpushare/controller.json', subPath: 'controller.json', readOnly: true });
    expect(c.volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/gpushare/tls', readOnly: true });
    expect(config.tls).toEqual({ cert: '/etc/gpushare/tls/tls.crt', key: '/etc/gpushare/tls/tls.key', reloadSeconds: 30 });
    expect(c.ports?.[0]).toEqual({ name: 'https', containerPort: config.listen.port, protocol: 'TCP' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(pod.serviceAccountName).toBe('gpushare-controller');
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const suspended = controllerConfig(rendered({ suspend: { namespaces: ['batch'], priorityClasses: ['low'] } }));
    expect(suspended.suspend).toEqual({ namespaces: ['batch'], priorityClasses: ['low'] });
  });

  it('the webhook calls the controller\'s Service at its path, for GPU pod creations outside the system namespaces, with the CA from cert-manager or the values', () => {
    const hook = find<V1MutatingWebhookConfiguration>(defaults, 'MutatingWebhookConfiguration', 'gpushare');
    expect(hook.metadata?.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${ns}/gpushare-controller` });
    const w = hook.webhooks![0]!;
    expect(w.clientConfig.service).toEqual({ name: 'gpushare-controller', namespace: ns, path: DEFAULT_WEBHOOK_PATH, port: 443 });
    expect(w).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }] });
    expect(w.namespaceSelector?.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', ns] }]);
    expect(w.matchConditions?.[0]?.expression).toContain(`startsWith('nvidia.com/')`);
    const cert = find<{ spec: { dnsNames: string[]; secretName: string; issuerRef: { name: string } } }>(defaults, 'Certificate', 'gpushare-controller');
    expect(cert.spec.dnsNames).toEqual([`gpushare-controller.${ns}.svc`, `gpushare-controller.${ns}.svc.cluster.local`]);
    expect(cert.spec.secretName).toBe('gpushare-controller-tls');
    expect(find<{ spec: { ca: { secretName: string } } }>(defaults, 'Issuer', cert.spec.issuerRef.name).spec.ca.secretName).toBe('gpushare-ca');

    const own = rendered({ certManager: { enabled: false }, certificates: { secretName: 'my-tls', caBundle: 'Q0E=' } });
    expect(own.filter((d) => d.apiVersion === 'cert-manager.io/v1')).toEqual([]);
    const ownHook = find<V1MutatingWebhookConfiguration>(own, 'MutatingWebhookConfiguration', 'gpushare');
    expect(ownHook.metadata?.annotations).toBeUndefined();
    expect(ownHook.webhooks![0]!.clientConfig.caBundle).toBe('Q0E=');
    expect(find<V1Deployment>(own, 'Deployment', 'gpushare-controller').spec!.template.spec!.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'my-tls' } });
    expect(() => renderChart({ certManager: { enabled: false } })).toThrow(/certificates\.caBundle is required when certManager\.enabled is false/);
  });

  it('the node agent: its host paths, NODE_NAME from the downward API, probes, GPU nodes only, not privileged', () => {
    const ds = find<V1DaemonSet>(defaults, 'DaemonSet', 'gpushare-node');
    const pod = ds.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.args).toEqual(['k8s', 'node', '--config', '/etc/gpushare/node.json']);
    expect(c.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    const hostPaths = Object.fromEntries((pod.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
    expect(Object.values(hostPaths).sort()).toEqual(['/var/lib/gpushare', '/var/lib/kubelet/device-plugins', `/var/lib/kubelet/plugins/${DRIVER_NAME}`, '/var/lib/kubelet/plugins_registry', '/var/run/cdi']);
    for (const [name, path] of Object.entries(hostPaths)) expect(c.volumeMounts).toContainEqual({ name, mountPath: path });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.ports).toEqual([{ name: 'health', containerPort: 8082, protocol: 'TCP' }, { name: 'metrics', containerPort: 9394, protocol: 'TCP' }]);
    expect(JSON.parse(find<V1ConfigMap>(defaults, 'ConfigMap', 'gpushare-node').data!['node.json']!)).toEqual({ layout: { layout: 'consumable' }, dra: { enabled: true }, classic: { enabled: true }, health: { listen: '0.0.0.0:8082' }, metrics: { listen: '0.0.0.0:9394' }, suspend: { enabled: true } });
    // Prometheus' pod discovery finds the agent's /metrics by the annotations on its pods.
    expect(ds.spec!.template.metadata?.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9394', 'prometheus.io/path': '/metrics' });
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(c.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['SYS_PTRACE', 'KILL'] } });
    expect(pod.hostPID).toBe(true);
    const quiet = find<V1DaemonSet>(rendered({ node: { suspend: false } }), 'DaemonSet', 'gpushare-node').spec!.template.spec!;
    expect(quiet.hostPID).toBe(false);
    expect(quiet.containers[0]!.securityContext?.capabilities).toEqual({ drop: ['ALL'] });
  });

  it('every object is in the release namespace or cluster-scoped, bar the scheduler\'s kube-system RoleBinding', () => {
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'DeviceClass', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    for (const d of defaults) {
      if (clusterScoped.has(d.kind)) expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBeUndefined();
      else if (d.kind === 'RoleBinding' && d.metadata.name === 'gpushare-scheduler-authentication-reader') expect(d.metadata.namespace).toBe('kube-system');
      else expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe(DEFAULT_NAMESPACE);
    }
    expect(read('manifests/namespace.yaml')).toContain(`name: ${DEFAULT_NAMESPACE}`);
    expect(readdirSync(join(CHART_DIR, 'templates')).every((f) => f.endsWith('.yaml'))).toBe(true);
  });
});

describe('deploy/examples do what they say', () => {
  const podsOf = (file: string): V1Pod[] =>
    docsOf(read(file))
      .filter((d) => d.kind === 'Job' || d.kind === 'Deployment')
      .map((d) => {
        const t = (d as unknown as V1Job).spec!.template;
        return { apiVersion: 'v1', kind: 'Pod', metadata: { ...t.metadata, name: d.metadata.name, namespace: d.metadata.namespace, uid: `uid-${d.metadata.name}` }, spec: t.spec! };
      });

  it('the training Job asks one GPU\'s slice the HAMi way, and the scheduler it names is the chart\'s', () => {
    const [pod] = podsOf('examples/pytorch-training-job.yaml');
    const r = parsePodGpuRequest(pod!);
    if (!r.ok || r.value === null) throw new Error(`the example does not parse: ${JSON.stringify(r)}`);
    expect(r.value.containers[0]!.slice).toMatchObject({ gpus: 1, memory: { kind: 'bytes', bytes: 20000 * 2 ** 20 } });
    expect(pod!.spec!.schedulerName).toBe('gpushare-scheduler');
  });

  it('the DRA Job claims from its template, which asks the slice class with a GpuConfig the driver accepts', () => {
    const docs = docsOf(read('examples/pytorch-training-dra.yaml'));
    const template = find<V1ResourceClaimTemplate>(docs, 'ResourceClaimTemplate', 'gpu-20g-30');
    const request = template.spec.spec.devices!.requests![0]!;
    expect(request.exactly?.deviceClassName).toBe(DEVICE_CLASS.slice);
    expect(request.exactly?.capacity?.requests).toEqual({ memory: '20Gi', cores: '30' });
    const config = template.spec.spec.devices!.config![0]!;
    expect(config.requests).toEqual([request.name]);
    expect(config.opaque?.driver).toBe(DRIVER_NAME);
    expect(parseGpuConfig(config.opaque?.parameters)).toMatchObject({ ok: true, value: { isolation: 'time-slice', computePolicy: 'hard' } });
    const job = find<V1Job>(docs, 'Job', 'pytorch-train-dra').spec!.template.spec!;
    expect(job.resourceClaims).toEqual([{ name: 'gpu', resourceClaimTemplateName: 'gpu-20g-30' }]);
    expect(job.containers[0]!.resources?.claims).toEqual([{ name: 'gpu' }]);
  });

  it('the inference Deployment\'s replicas all land on one GPU of an 80 GB H100 node, through the extender', async () => {
    const doc = find<V1Deployment>(docsOf(read('examples/inference-shared-gpu.yaml')), 'Deployment', 'llm-inference');
    const [template] = podsOf('examples/inference-shared-gpu.yaml');
    const api = new MemoryApi();
    const ext = new Extender(api);
    ext.view.observeNode(gpuNode('gpu-a', 2, { memoryMiB: 81559 }));
    const gpus = new Set<string>();
    for (let i = 0; i < doc.spec!.replicas!; i++) {
      const pod = api.add({ ...template!, metadata: { ...template!.metadata, name: `llm-${i}`, uid: `uid-llm-${i}` } });
      const filter = ext.filter({ Pod: pod, NodeNames: ['gpu-a'] } as never);
      expect(filter.NodeNames).toEqual(['gpu-a']);
      expect((await ext.bind({ PodName: `llm-${i}`, PodNamespace: 'default', PodUID: `uid-llm-${i}`, Node: 'gpu-a' })).Error).toBe('');
      await ext.observePod(await api.getPod({ namespace: 'default', name: `llm-${i}` }));
      const d = decodeDecision(api.pods.get(`default/llm-${i}`)!.metadata!.annotations!['gpushare.io/decision']!);
      if (!d.ok) throw new Error('no decision');
      for (const g of d.value.containers[0]!.gpus) gpus.add(g.uuid);
    }
    expect(gpus.size).toBe(1);
  });
});

afterAll(() => undefined);
