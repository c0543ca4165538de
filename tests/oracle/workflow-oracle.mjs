// GitHub's own workflow parser (@actions/workflow-parser) as an oracle for the loader
// tests: parse + convert, as GitHub does before running a workflow.
// Arguments: files or directories (their .yml/.yaml files), or none to read JSON
// lines {"name": ..., "content": ...} from stdin, one workflow each.
// Prints one JSON line per file: {file, valid, errors: [{line, col, message}]}, where
// line/col are null for errors GitHub reports without a position.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } from "@actions/workflow-parser";

function* files(path) {
  if (!statSync(path).isDirectory()) {
    yield path;
    return;
  }
  for (const name of readdirSync(path).sort()) {
    const child = join(path, name);
    // Not recursive, as `metalfarm check DIR`.
    if (/\.ya?ml$/.test(name) && statSync(child).isFile()) yield child;
  }
}

// "name (Line: L, Col: C): text" -> {line, col, message}
function splitMessage(name, message) {
  const prefix = `${name} (Line: `;
  if (message.startsWith(prefix)) {
    const m = /^\(Line: (\d+), Col: (\d+)\): ([\s\S]*)$/.exec(message.slice(name.length + 1));
    if (m) return { line: Number(m[1]), col: Number(m[2]), message: m[3] };
  }
  if (message.startsWith(`${name}: `)) message = message.slice(name.length + 2);
  // YAML syntax errors carry their position only in the text.
  const at = /at line (\d+), column (\d+)/.exec(message);
  if (at) return { line: Number(at[1]), col: Number(at[2]), message };
  return { line: null, col: null, message };
}

async function check(name, content) {
  const parsed = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  if (parsed.value !== undefined) {
    await convertWorkflowTemplate(parsed.context, parsed.value);
  }
  const errors = parsed.context.errors.getErrors().map(e => splitMessage(name, e.message));
  return { file: name, valid: errors.length === 0, errors };
}

const args = process.argv.slice(2);
if (args.length === 0) {
  const out = [];
  for (const line of readFileSync(0, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const { name, content } = JSON.parse(line);
    out.push(JSON.stringify(await check(name, content)));
  }
  console.log(out.join("\n"));
} else {
  const out = [];
  for (const arg of args) {
    for (const path of files(arg)) {
      out.push(JSON.stringify(await check(path, readFileSync(path, "utf8"))));
    }
  }
  console.log(out.join("\n"));
}
