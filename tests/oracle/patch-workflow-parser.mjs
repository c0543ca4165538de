// @actions/workflow-parser imports its JSON schemas without an import attribute,
// which node refuses (ERR_IMPORT_ASSERTION_TYPE_MISSING). Add the attribute in the
// form this node understands: `with` from node 18.20/20.10 on, `assert` before
// (Debian 12's own nodejs is 18.19). Idempotent: running it twice changes nothing.
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const [major, minor] = process.versions.node.split(".").map(Number);
const keyword = major > 20 || (major === 20 && minor >= 10) || (major === 18 && minor >= 20) ? "with" : "assert";

const dist = new URL("./node_modules/@actions/workflow-parser/dist/", import.meta.url);
for (const file of ["workflows/workflow-schema.js", "actions/action-schema.js"]) {
  const url = new URL(file, dist);
  if (!existsSync(url)) continue;
  const text = readFileSync(url, "utf8");
  const patched = text.replace(
    /(from\s+"[^"]+\.json")(\s+(?:with|assert)\s*\{\s*type:\s*"json"\s*\})?\s*;/g,
    `$1 ${keyword} { type: "json" };`,
  );
  if (patched !== text) writeFileSync(url, patched);
}
