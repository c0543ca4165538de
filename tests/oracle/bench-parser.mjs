// GitHub's own workflow parser over every .yml/.yaml file in the given directories:
// parse + convert, as GitHub does before running a workflow. Prints one summary line.
// Used by benches/realworld.rs as the whole-process reference for metalfarm.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } from "@actions/workflow-parser";

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.ya?ml$/.test(name)) yield path;
  }
}

let valid = 0;
let invalid = 0;
for (const dir of process.argv.slice(2)) {
  for (const path of files(dir)) {
    const content = readFileSync(path, "utf8");
    const parsed = parseWorkflow({ name: path, content }, new NoOperationTraceWriter());
    let errors = parsed.context.errors.getErrors().length;
    if (parsed.value !== undefined) {
      const template = await convertWorkflowTemplate(parsed.context, parsed.value);
      errors += (template.errors ?? []).length;
    }
    if (errors === 0) valid++;
    else invalid++;
  }
}
console.log(`valid ${valid} invalid ${invalid}`);
