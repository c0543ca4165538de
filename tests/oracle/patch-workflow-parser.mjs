// @actions/workflow-parser imports its JSON schemas without an import attribute,
// which node 20 refuses (ERR_IMPORT_ASSERTION_TYPE_MISSING). Add the attribute.
// Idempotent: running it twice changes nothing.
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const dist = new URL("./node_modules/@actions/workflow-parser/dist/", import.meta.url);
for (const file of ["workflows/workflow-schema.js", "actions/action-schema.js"]) {
  const url = new URL(file, dist);
  if (!existsSync(url)) continue;
  const text = readFileSync(url, "utf8");
  const patched = text.replace(/(from\s+"[^"]+\.json")\s*;/g, '$1 with { type: "json" };');
  if (patched !== text) writeFileSync(url, patched);
}
