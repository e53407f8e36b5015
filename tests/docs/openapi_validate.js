// tests/docs/openapi_validate.js — validates docs/openapi.yaml with the
// modules installed under tests/js/node_modules:
//  1. @apidevtools/swagger-parser: the OpenAPI 3.1 JSON schema, and every
//     $ref resolves;
//  2. every Schema Object is a valid JSON Schema 2020-12 schema (ajv's
//     meta-schema check: the OpenAPI 3.1 schema leaves schemas unchecked);
//  3. the project's own rules: each {param} of a path is declared as a
//     required path parameter, operationIds are unique, every 4xx/5xx
//     response's JSON body is the shared Error schema (HEAD: no body), and
//     every response declares the X-Request-Id header.
// Usage: node openapi_validate.js JS_DIR FILE   (exit 0 valid, 1 invalid)
'use strict';
const path = require('path');
const { createRequire } = require('module');

const [jsDir, file] = process.argv.slice(2);
if (!jsDir || !file) {
  console.error('usage: node openapi_validate.js JS_DIR FILE');
  process.exit(2);
}
const requireJs = createRequire(path.join(path.resolve(jsDir), 'package.json'));
const SwaggerParser = requireJs('@apidevtools/swagger-parser');
const Ajv2020 = requireJs('ajv/dist/2020').default;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const ERROR_REF = '#/components/schemas/Error';

// Follows a local "#/a/b" reference inside doc.
function deref(doc, obj) {
  let seen = 0;
  while (obj && typeof obj.$ref === 'string' && obj.$ref.startsWith('#/') && seen++ < 16) {
    obj = obj.$ref.slice(2).split('/').reduce((o, k) => (o == null ? o : o[k.replace(/~1/g, '/').replace(/~0/g, '~')]), doc);
  }
  return obj;
}

// Every Schema Object of the document, with where it sits.
function collectSchemas(doc) {
  const out = [];
  const fromContent = (content, where) => {
    for (const [type, media] of Object.entries(content || {})) {
      if (media && media.schema) out.push([`${where} ${type}`, media.schema]);
    }
  };
  const fromParams = (params, where) => {
    for (const p of params || []) {
      const q = deref(doc, p);
      if (q && q.schema) out.push([`${where} parameter ${q.name}`, q.schema]);
    }
  };
  const fromHeaders = (headers, where) => {
    for (const [name, h] of Object.entries(headers || {})) {
      const r = deref(doc, h);
      if (r && r.schema) out.push([`${where} header ${name}`, r.schema]);
    }
  };
  const c = doc.components || {};
  for (const [name, s] of Object.entries(c.schemas || {})) out.push([`components.schemas.${name}`, s]);
  fromParams(Object.values(c.parameters || {}), 'components');
  fromHeaders(c.headers, 'components');
  for (const [name, r] of Object.entries(c.responses || {})) {
    fromContent(r.content, `components.responses.${name}`);
  }
  for (const [name, b] of Object.entries(c.requestBodies || {})) {
    fromContent(b.content, `components.requestBodies.${name}`);
  }
  for (const [p, item] of Object.entries(doc.paths || {})) {
    fromParams(item.parameters, p);
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const where = `${m.toUpperCase()} ${p}`;
      fromParams(op.parameters, where);
      if (op.requestBody && op.requestBody.content) fromContent(op.requestBody.content, `${where} body`);
      for (const [status, r] of Object.entries(op.responses || {})) {
        if (r.$ref) continue; /* checked under components */
        fromContent(r.content, `${where} ${status}`);
        fromHeaders(r.headers, `${where} ${status}`);
      }
    }
  }
  return out;
}

function checkSchemas(doc, problems) {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  for (const [where, schema] of collectSchemas(doc)) {
    // Local $refs are checked by the parser; the meta-schema sees them as strings.
    if (!ajv.validateSchema(schema)) {
      problems.push(`${where}: not a valid JSON Schema: ${ajv.errorsText(ajv.errors)}`);
    }
  }
}

function checkOperations(doc, problems) {
  const ids = new Map();
  for (const [p, item] of Object.entries(doc.paths || {})) {
    const want = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const where = `${m.toUpperCase()} ${p}`;
      if (op.operationId) {
        if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
        ids.set(op.operationId, where);
      }
      const params = [...(item.parameters || []), ...(op.parameters || [])].map((x) => deref(doc, x));
      for (const name of want) {
        const decl = params.find((x) => x && x.in === 'path' && x.name === name);
        if (!decl) problems.push(`${where}: path parameter {${name}} is not declared`);
        else if (decl.required !== true) problems.push(`${where}: path parameter {${name}} is not required: true`);
      }
      for (const x of params) {
        if (x && x.in === 'path' && !want.includes(x.name)) problems.push(`${where}: declares path parameter ${x.name} that the path does not have`);
      }
      for (const [status, raw] of Object.entries(op.responses || {})) {
        const r = deref(doc, raw);
        const at = `${where} ${status}`;
        if (!r) {
          problems.push(`${at}: unresolvable response`);
          continue;
        }
        if (!r.headers || !r.headers['X-Request-Id']) problems.push(`${at}: no X-Request-Id header`);
        if (!/^[45]/.test(status)) continue;
        if (m === 'head') {
          if (r.content) problems.push(`${at}: a HEAD answer has no body`);
          continue;
        }
        const json = r.content && r.content['application/json'];
        if (!json || !json.schema || json.schema.$ref !== ERROR_REF) {
          problems.push(`${at}: the error body is not ${ERROR_REF}`);
        }
        if (r.content && Object.keys(r.content).length !== 1) problems.push(`${at}: error responses are JSON only`);
      }
    }
  }
}

(async () => {
  let raw;
  try {
    raw = await SwaggerParser.parse(file);
    await SwaggerParser.validate(file);
  } catch (err) {
    console.error(`${file}: not a valid OpenAPI document:\n${err.message}`);
    process.exit(1);
  }
  const problems = [];
  if (typeof raw.openapi !== 'string' || !raw.openapi.startsWith('3.1.')) {
    problems.push(`openapi is ${JSON.stringify(raw.openapi)}, expected 3.1.x`);
  }
  checkSchemas(raw, problems);
  checkOperations(raw, problems);
  if (problems.length > 0) {
    console.error(`${file}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  let ops = 0;
  for (const item of Object.values(raw.paths)) ops += METHODS.filter((m) => item[m]).length;
  console.log(`${file}: valid OpenAPI ${raw.openapi}, ${Object.keys(raw.paths).length} paths, ${ops} operations`);
})();
