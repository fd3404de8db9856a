// Validates Kubernetes manifests offline against the Kubernetes API schemas
// (kubernetes-models): every document of every file given, by its apiVersion
// and kind. Exits non-zero with the file, document and reasons on the first
// invalid one. Usage: node validate.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
  // "apps/v1" -> kubernetes-models/apps/v1/Kind; "v1" -> kubernetes-models/v1/Kind
  const module = await import(`kubernetes-models/${apiVersion}/${kind}`);
  return module[kind] ?? module.default;
}

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [index, document] of documents.entries()) {
    if (document.errors.length > 0) {
      console.error(`${file}: document ${index + 1}: ${document.errors[0].message}`);
      failures++;
      continue;
    }
    const object = document.toJS();
    if (object === null) continue;
    const name = `${file}: ${object.kind} ${object.metadata?.name ?? "?"}`;
    try {
      const Model = await modelFor(object.apiVersion, object.kind);
      new Model(object).validate();
      checked++;
    } catch (error) {
      console.error(`${name}: ${error.message}`);
      failures++;
    }
  }
}
if (checked === 0 && failures === 0) {
  console.error("validate.mjs: no manifests given");
  process.exit(2);
}
console.log(`validate.mjs: ${checked} objects valid, ${failures} invalid`);
process.exit(failures > 0 ? 1 : 0);
