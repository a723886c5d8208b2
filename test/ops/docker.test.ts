/**
 * deploy/docker/Dockerfile checked statically (no image can be built here: no network): parsed
 * into instructions, then the final stage's base, what it copies out of the package (each path
 * shipped by package.json's `files` and present in this build), the default command, the user,
 * and the image name and tag agreeing with package.json, the Helm chart and the plain manifests.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { V1DaemonSet, V1Deployment } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS } from '../../src/k8s/agent/config.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, the keyword upper-cased. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line === '' || line.startsWith('#')) continue; // empty lines and comments inside a continued instruction
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s+([\s\S]*)$/.exec(whole);
    if (!m) throw new Error(`not an instruction: ${whole}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  if (pending !== '') throw new Error('the file ends inside a continued line');
  return out;
}

/** Whether `npm pack` ships `rel`, by package.json's `files` (paths, `!` exclusions with * and **). */
function packageShips(files: readonly string[], rel: string): boolean {
  const glob = (pattern: string): RegExp =>
    new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(?:.*/)?').replace(/\*/g, '[^/]*')}(?:/.*)?$`);
  const included = files.some((f) => !f.startsWith('!') && glob(f).test(rel));
  return included && !files.some((f) => f.startsWith('!') && glob(f.slice(1)).test(rel));
}

const text = read('deploy/docker/Dockerfile');
const instructions = parseDockerfile(text);
const pkg = JSON.parse(read('package.json')) as { name: string; version: string; files: string[]; bin: Record<string, string> };
/** The build stages, each from its FROM (global ARGs before the first FROM belong to none). */
const stages: Instruction[][] = [];
for (const i of instructions) {
  if (i.op === 'FROM') stages.push([i]);
  else stages.at(-1)?.push(i);
}
const final = stages.at(-1)!;
const argDefault = (name: string): string => {
  const a = instructions.find((i) => i.op === 'ARG' && i.args.startsWith(`${name}=`));
  if (!a) throw new Error(`no ARG ${name}=default`);
  return a.args.slice(name.length + 1);
};
const expand = (s: string): string => s.replace(/\$\{(\w+)\}/g, (_, name: string) => argDefault(name));
const jsonForm = (op: string): string[] => {
  const i = final.filter((x) => x.op === op).at(-1);
  if (!i) throw new Error(`no ${op} in the final stage`);
  return JSON.parse(i.args) as string[];
};
/** Where the build stage installs the package tarball (npm install into /opt/gpushare). */
const INSTALLED = '/opt/gpushare/node_modules/gpushare/';

describe('the Dockerfile parser', () => {
  it('joins continued lines, drops comments, and refuses a dangling continuation', () => {
    expect(parseDockerfile('# c\nfrom a AS b\nRUN x \\\n # inner\n && y\n')).toEqual([
      { op: 'FROM', args: 'a AS b' },
      { op: 'RUN', args: 'x && y' },
    ]);
    expect(() => parseDockerfile('RUN x \\\n')).toThrow(/continued/);
  });
  it('reads package.json files patterns as npm does for these cases', () => {
    const files = ['bin', 'dist', '!dist/**/*.map', 'build/native/libgpushare.so'];
    expect(packageShips(files, 'dist/cli/main.js')).toBe(true);
    expect(packageShips(files, 'dist/cli/main.js.map')).toBe(false);
    expect(packageShips(files, 'build/native/libgpushare.so')).toBe(true);
    expect(packageShips(files, 'build/native/fake/libcuda.so.1')).toBe(false);
    expect(packageShips(files, 'binary')).toBe(false);
  });
});

describe('deploy/docker/Dockerfile', () => {
  it('runs on Node 20 slim, the version package.json requires', () => {
    expect(expand(final[0]!.args)).toBe('node:20-bookworm-slim');
    expect(stages.length).toBe(2); // build, then run: no compiler in the image
  });

  it('copies out of the installed package only files the package ships and this build has', () => {
    const copied = [...text.matchAll(new RegExp(`${INSTALLED.replace(/\//g, '\\/')}(\\S+)`, 'g'))].map((m) => m[1]!);
    expect(copied.sort()).toEqual(['bin/gpushare.js', 'build/native/libgpushare.so']);
    for (const rel of copied) {
      expect(packageShips(pkg.files, rel), `${rel} is not in package.json's files`).toBe(true);
      expect(existsSync(new URL(rel, ROOT)), `${rel} is not built`).toBe(true);
    }
    expect(pkg.bin['gpushare']).toBe('bin/gpushare.js');
    // The tarball npm pack names from the package's name and version.
    expect(text).toContain(`/pkg/${pkg.name}-*.tgz`);
  });

  it('puts libgpushare where the node agent installs it from', () => {
    const copy = final.find((i) => i.op === 'COPY' && i.args.includes('libgpushare.so'));
    expect(copy?.args.split(/\s+/).at(-1)).toBe(AGENT_DEFAULTS.library);
  });

  it('runs `gpushare k8s node` by default; the controller passes its own arguments to the same entrypoint', () => {
    expect([...jsonForm('ENTRYPOINT'), ...jsonForm('CMD')]).toEqual(['gpushare', 'k8s', 'node']);
    expect(final.some((i) => i.op === 'RUN' && i.args.includes('/usr/local/bin/gpushare'))).toBe(true);
  });

  it('runs as a non-root user, the controller\'s; the node agent\'s pod asks for root', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBe('65532:65532');
    const manifests = yaml.loadAll(read('deploy/manifests/gpushare.yaml')) as Array<{ kind?: string }>;
    const controller = manifests.find((d) => d.kind === 'Deployment') as V1Deployment;
    const node = manifests.find((d) => d.kind === 'DaemonSet') as V1DaemonSet;
    const podUser = controller.spec!.template.spec!.securityContext!;
    expect(`${podUser.runAsUser}:${podUser.runAsGroup}`).toBe(user);
    expect(node.spec!.template.spec!.containers[0]!.securityContext!.runAsUser).toBe(0);
  });

  it('is the image the chart and the manifests name, tagged with the package version', () => {
    const values = yaml.load(read('deploy/helm/gpushare/values.yaml')) as { image: { repository: string; tag: string } };
    const chart = yaml.load(read('deploy/helm/gpushare/Chart.yaml')) as { appVersion: string };
    const image = `${values.image.repository}:${values.image.tag}`;
    expect(values.image.tag).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
    expect(argDefault('VERSION')).toBe(pkg.version);
    expect(text).toContain(`docker build -f deploy/docker/Dockerfile -t ${image} .`);
    const named = [...read('deploy/manifests/gpushare.yaml').matchAll(/image: "?([^"\s]+)"?/g)].map((m) => m[1]!);
    const ours = named.filter((n) => n.startsWith(`${values.image.repository}:`));
    expect(ours.length).toBe(2); // the controller and the node agent
    expect(new Set(ours)).toEqual(new Set([image]));
  });

  it('keeps build outputs and dependencies out of the build context', () => {
    const ignored = read('deploy/docker/Dockerfile.dockerignore')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'build', 'dist']));
  });
});
