// GitHub's own expression evaluator (@actions/expressions) behind the same JSONL
// protocol as `metalfarm expr --jsonl`: each stdin line {"expr", "contexts"} gets one
// stdout line {"ok": true, "value": V} or {"ok": false, "error": "..."}.
// Allowed contexts are the keys of `contexts`; extra functions are the status
// functions (as for a successful step) and hashFiles (unavailable: no workspace).
// Parse errors are worded as GitHub's conformance harness words them:
// "<message>. Located at position <column + 1> within expression: <expr>".
//
// A line {"template": "...", "contexts": {...}} is a string with ${{ }} parts instead:
// GitHub's workflow parser reads it as a workflow's `run-name` (contexts github, inputs,
// vars) into a literal or an expression (`format(...)` for mixed text), which is then
// evaluated as above; its errors are answered with the parser's message.
import { createInterface } from "node:readline";
import { Lexer, Parser, Evaluator, ExpressionError, data } from "@actions/expressions";
import { parseWorkflow, NoOperationTraceWriter } from "@actions/workflow-parser";

const fixed = value => ({ call: () => new data.BooleanData(value) });
const extraFunctions = [
  { name: "success", minArgs: 0, maxArgs: 0, ...fixed(true) },
  { name: "failure", minArgs: 0, maxArgs: 0, ...fixed(false) },
  { name: "always", minArgs: 0, maxArgs: 0, ...fixed(true) },
  { name: "cancelled", minArgs: 0, maxArgs: 0, ...fixed(false) },
  {
    name: "hashFiles",
    minArgs: 1,
    maxArgs: 255,
    call: () => {
      throw new Error("hashFiles is not available here: no workspace");
    }
  }
];
const implementations = new Map(extraFunctions.map(f => [f.name.toLowerCase(), f]));

function answer(line) {
  let req, revived;
  try {
    req = JSON.parse(line);
    // The contexts are revived straight from the line's JSON, so what JSON.parse
    // makes of it (e.g. 1e400 is Infinity) reaches the evaluator unchanged.
    revived = JSON.parse(line, data.reviver);
  } catch {
    return { ok: false, error: "invalid input line (not a JSON object)" };
  }
  const contexts = req.contexts ?? {};
  let expr = req.expr;
  if (req.template !== undefined) {
    const content = `on: push\nrun-name: ${JSON.stringify(req.template)}\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n`;
    const parsed = parseWorkflow({ name: "w.yml", content }, new NoOperationTraceWriter());
    const errors = parsed.context.errors.getErrors();
    if (errors.length > 0) {
      return { ok: false, error: errors[0].rawMessage };
    }
    let token;
    for (let i = 0; i < parsed.value.count; i++) {
      const pair = parsed.value.get(i);
      if (pair.key.value === "run-name") token = pair.value;
    }
    if (token.expression === undefined) {
      return { ok: true, value: token.value };
    }
    expr = token.expression;
  }
  try {
    const tokens = new Lexer(expr).lex().tokens;
    const ast = new Parser(tokens, Object.keys(contexts), extraFunctions).parse();
    const ctx = revived.get("contexts") ?? new data.Dictionary();
    const value = ast === undefined ? new data.Null() : new Evaluator(ast, ctx, implementations).evaluate();
    return { ok: true, value: JSON.parse(JSON.stringify(value, data.replacer)) };
  } catch (e) {
    if (e instanceof ExpressionError && e.pos !== undefined) {
      return { ok: false, error: `${e.message}. Located at position ${e.pos.column + 1} within expression: ${expr}` };
    }
    return { ok: false, error: String(e.message) };
  }
}

const out = [];
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === "") continue;
  out.push(JSON.stringify(answer(line)));
}
process.stdout.write(out.length ? out.join("\n") + "\n" : "");
