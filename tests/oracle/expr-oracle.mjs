// GitHub's own expression evaluator (@actions/expressions) behind the same JSONL
// protocol as `metalfarm expr --jsonl`: each stdin line {"expr", "contexts"} gets one
// stdout line {"ok": true, "value": V} or {"ok": false, "error": "..."}.
// Allowed contexts are the keys of `contexts`; extra functions are the status
// functions (as for a successful step) and hashFiles (unavailable: no workspace).
// Parse errors are worded as GitHub's conformance harness words them:
// "<message>. Located at position <column + 1> within expression: <expr>".
import { createInterface } from "node:readline";
import { Lexer, Parser, Evaluator, ExpressionError, data } from "@actions/expressions";

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
  const expr = req.expr;
  const contexts = req.contexts ?? {};
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
