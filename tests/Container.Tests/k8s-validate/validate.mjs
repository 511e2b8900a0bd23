// Validates every object of a kustomize base against the Kubernetes OpenAPI schema of its apiVersion and kind
// (kubernetes-models: types, required fields, enums, formats). Usage: node validate.mjs <kustomization folder>
// Prints one line per object and exits 1 on the first folder with any invalid or unknown object.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

const folder = process.argv[2];
if (!folder) {
  console.error("usage: node validate.mjs <kustomization folder>");
  process.exit(2);
}

function load(file) {
  return parseAllDocuments(readFileSync(file, "utf8")).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS();
  }).filter((o) => o !== null);
}

// "apps/v1" + "Deployment" -> kubernetes-models/apps/v1/Deployment; "v1" + "Service" -> kubernetes-models/v1/Service.
async function modelFor(apiVersion, kind) {
  const path = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    const module = await import(path);
    return module[kind];
  } catch {
    return undefined;
  }
}

const [kustomization] = load(join(folder, "kustomization.yaml"));
let failures = 0;
if (kustomization?.kind !== "Kustomization" || !Array.isArray(kustomization.resources) || kustomization.resources.length === 0) {
  console.error("kustomization.yaml: not a Kustomization with resources");
  failures++;
}
for (const resource of kustomization?.resources ?? []) {
  for (const object of load(join(folder, resource))) {
    const label = `${resource}: ${object.kind} ${object.metadata?.name}`;
    const Model = await modelFor(object.apiVersion, object.kind);
    if (!Model) {
      console.error(`${label}: no schema for ${object.apiVersion} ${object.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(object).validate();
      console.log(`${label}: valid`);
    } catch (e) {
      console.error(`${label}: ${e.message}`);
      failures++;
    }
  }
}
console.log(failures === 0 ? "all objects valid" : `${failures} invalid`);
process.exit(failures === 0 ? 0 : 1);
