// Checks KQL query texts with Microsoft's Kusto language service (@kusto/language-service-next, the
// Kusto.Language parser and binder compiled to JavaScript) against Resource Graph's table schemas.
// stdin: {"name": "query text", ...}; stdout: {"name": [{"severity", "code", "message", "start"}], ...}.
// Used by tests/unit/test_inventory_kql.py; needs `make node`.
"use strict";
const path = require("path");
const root = path.join(__dirname, "..", "..", "node_modules", "@kusto", "language-service-next");
require(path.join(root, "bridge.min.js"));
require(path.join(root, "Kusto.Language.Bridge.min.js"));

const K = global.Kusto.Language;
const S = K.Symbols;

// ARG's standard columns (learn.microsoft.com/azure/governance/resource-graph/concepts/query-language and
// reference/supported-tables-resources): the same for resources, computeresources and resourcecontainers.
const STRING = ["id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId", "managedBy"];
const DYNAMIC = ["sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation"];
const TABLES = ["resources", "computeresources", "resourcecontainers"];

function column(name, type) {
  // Built as symbols, not from a "(name:type, ...)" schema string: `kind` is a KQL keyword there.
  return new S.ColumnSymbol.ctor(name, type, null, null, null, null);
}

function globals() {
  const columns = () => [
    ...STRING.map((name) => column(name, S.ScalarTypes.String)),
    ...DYNAMIC.map((name) => column(name, S.ScalarTypes.Dynamic)),
  ];
  const tables = TABLES.map((name) => new S.TableSymbol.$ctor4(name, columns()));
  const database = new S.DatabaseSymbol.ctor("resourcegraph", tables);
  const cluster = new S.ClusterSymbol.ctor("resourcegraph", [database]);
  return K.GlobalState.Default.WithCluster(cluster).WithDatabase(database);
}

function diagnose(text, state) {
  const code = K.KustoCode.ParseAndAnalyze(text, state);
  const found = [];
  const items = code.GetDiagnostics().GetEnumerator();
  while (items.moveNext()) {
    const d = items.Current;
    found.push({ severity: String(d.Severity), code: d.Code, message: d.Message, start: d.Start });
  }
  return found;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const queries = JSON.parse(input);
  const state = globals();
  const out = {};
  for (const [name, text] of Object.entries(queries)) out[name] = diagnose(text, state);
  process.stdout.write(JSON.stringify(out));
});
