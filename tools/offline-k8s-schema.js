// Preloaded (node --require) by tools/cdk8s-import.
//
// `cdk8s import k8s@X.Y.Z` downloads the Kubernetes schema from GitHub. This
// answers that download from the copy kubernetes-validate ships (pinned in
// requirements.txt), so the import works offline and gives the same bytes on
// every machine. It also keeps only the kinds this app emits and the types they
// reference: the full API makes a binding that takes several times longer to
// import, and importing it is most of what `cdk8s synth` waits for.
'use strict';

const fs = require('fs');
const path = require('path');
// A file path: the package's `exports` map hides lib/util from require('cdk8s-cli/...').
const util = require(path.join(__dirname, '..', 'node_modules', 'cdk8s-cli', 'lib', 'util.js'));

// [group, version, kind]. Emitting another kind: add it here, then `make imports`.
const KINDS = [
  ['', 'v1', 'ConfigMap'],
  ['', 'v1', 'Namespace'],
  ['', 'v1', 'PersistentVolumeClaim'],
  ['', 'v1', 'Service'],
  ['', 'v1', 'ServiceAccount'],
  ['apps', 'v1', 'Deployment'],
  ['apps', 'v1', 'StatefulSet'],
  ['batch', 'v1', 'CronJob'],
  ['batch', 'v1', 'Job'],
  ['networking.k8s.io', 'v1', 'NetworkPolicy'],
  ['policy', 'v1', 'PodDisruptionBudget'],
  ['rbac.authorization.k8s.io', 'v1', 'Role'],
  ['rbac.authorization.k8s.io', 'v1', 'RoleBinding'],
];

const SCHEMA_URL = /\/kubernetes-schemas\/v(\d+\.\d+\.\d+)\/_definitions\.json$/;

// kubernetes-validate writes JSON Schema 2020-12 with nullable types
// (["string", "null"]); cdk8s-cli reads the draft-4 `definitions` form with
// plain types. Left nullable, the generated ObjectMeta no longer fits cdk8s's
// ApiObjectProps and jsii compilation fails. Only a string `$ref` is a
// reference: JSONSchemaProps has a property named "$ref" whose value is a schema.
function toCdk8sDialect(node) {
  if (Array.isArray(node)) return node.map(toCdk8sDialect);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema' || key === '$id') continue;
    if (key === '$ref' && typeof value === 'string') {
      out[key] = value.replace('#/$defs/', '#/definitions/');
    } else if (key === 'type' && Array.isArray(value)) {
      const types = value.filter((t) => t !== 'null');
      out[key] = types.length === 1 ? types[0] : types;
    } else {
      out[key] = toCdk8sDialect(value);
    }
  }
  return out;
}

function isWanted(definition) {
  return (definition['x-kubernetes-group-version-kind'] || []).some((gvk) =>
    KINDS.some(([group, version, kind]) => gvk.group === group && gvk.version === version && gvk.kind === kind));
}

function referencedNames(node, found) {
  if (Array.isArray(node)) {
    node.forEach((item) => referencedNames(item, found));
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value.split('/').pop());
      else referencedNames(value, found);
    }
  }
  return found;
}

function trimmedSchema(version) {
  const dir = process.env.K8S_SCHEMA_DIR;
  if (!dir) throw new Error('K8S_SCHEMA_DIR is not set: run the import through tools/cdk8s-import');
  const file = path.join(dir, `v${version}-local`, '_definitions.json');
  const all = toCdk8sDialect(JSON.parse(fs.readFileSync(file, 'utf-8')).$defs);
  const roots = Object.keys(all).filter((name) => isWanted(all[name]));
  if (roots.length !== KINDS.length) {
    throw new Error(`${file} has ${roots.length} of the ${KINDS.length} kinds listed in ${__filename}`);
  }
  const kept = {};
  const todo = [...roots];
  while (todo.length > 0) {
    const name = todo.pop();
    if (name in kept) continue;
    kept[name] = all[name];
    referencedNames(all[name], todo);
  }
  const definitions = {};
  for (const name of Object.keys(kept).sort()) definitions[name] = kept[name];
  return JSON.stringify({ definitions });
}

const download = util.download;
util.download = async (url) => {
  const match = SCHEMA_URL.exec(url);
  return match ? trimmedSchema(match[1]) : download(url);
};
