// GitHub's own cron validation (`isValidCron` of @actions/workflow-parser, the check
// behind "Invalid cron expression" on `on.schedule[].cron`).
// stdin: a JSON array of cron strings; stdout: a JSON array of booleans, same order.
import { isValidCron } from "@actions/workflow-parser/model/converter/cron";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", chunk => (input += chunk));
process.stdin.on("end", () => {
  const crons = JSON.parse(input);
  process.stdout.write(JSON.stringify(crons.map(c => isValidCron(c))));
});
