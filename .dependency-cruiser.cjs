// Dependency direction between contexts (ARCHITECTURE.md, CONVENTIONS.md §1–2), checked by `npm test`:
// each context may import only the contexts listed for it, only through their index.ts door, and
// nothing may import in a cycle. container/ (the model server that runs inside instances) shares
// nothing with the server side but the contract.
const ALLOWED = {
  config: [],
  errors: [],
  telemetry: [],
  store: ['errors'],
  control: ['store', 'errors'],
  fleet: ['errors', 'telemetry'],
  artifacts: ['errors', 'telemetry'],
  multimodel: ['fleet', 'artifacts', 'errors', 'telemetry'],
  router: ['fleet', 'multimodel', 'errors', 'telemetry'],
  deploy: ['control', 'fleet', 'artifacts', 'errors', 'telemetry'],
  wire: ['control', 'router', 'errors', 'telemetry'],
  app: ['config', 'store', 'control', 'deploy', 'fleet', 'artifacts', 'multimodel', 'router', 'wire', 'errors', 'telemetry'],
  cli: ['app', 'config', 'telemetry'],
  container: [],
};
const contexts = Object.keys(ALLOWED);

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'one-door',
      comment: 'Another context is reached only through its index.ts.',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/([^/]+)/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    ...contexts.map((ctx) => ({
      name: `layering-${ctx}`,
      comment: `${ctx}/ may depend on: ${ALLOWED[ctx].join(', ') || 'no other context'}.`,
      severity: 'error',
      from: { path: `^src/${ctx}/` },
      to: { path: '^src/([^/]+)/', pathNot: [`^src/(${[ctx, ...ALLOWED[ctx]].join('|')})/`] },
    })),
    {
      name: 'no-unknown-context',
      comment: 'Every folder under src/ is a context listed in .dependency-cruiser.cjs.',
      severity: 'error',
      from: { path: `^src/(?!(${contexts.join('|')})/)` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '\\.test\\.ts$' },
  },
};
