// Interop client: Node (@grpc/grpc-js + @grpc/proto-loader, and fetch for REST) speaking the Open Inference Protocol
// and its gradient extension to the real service.
//
// Loads the project's inference/grpc_service.proto and autograd/v2/gradient.proto at run time, registers a small MLP
// (JSON graph over /v1), then runs inference, a batch of VJPs and a JVP over REST and gRPC and checks every number
// against the engine's own /v1 transforms. Given a folder of ONNX models (tests/Interop/python/onnx_models.py writes
// an MLP, a CNN and a transformer block with models.json beside them), it uploads each file and runs inference and a
// batch of VJPs on it over both transports too. Exits non-zero on any mismatch.
//
// Usage: node oip_client.mjs REST_BASE HOST:GRPC_PORT [ONNX_MODELS_DIR]   (e.g. http://127.0.0.1:8080 127.0.0.1:8081)
// Environment: AUTOGRAD_PROTOS overrides the .proto folder (default: src/Contracts/Protos of this repository).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const protos = process.env.AUTOGRAD_PROTOS || path.resolve(here, '..', '..', '..', 'src', 'Contracts', 'Protos');
const rest = process.argv[2] || process.env.AUTOGRAD_REST || 'http://127.0.0.1:8080';
const target = process.argv[3] || process.env.AUTOGRAD_GRPC || '127.0.0.1:8081';
const onnxDir = process.argv[4];
const timeoutMs = 30_000;
const model = 'node-oip-mlp';

// y = sigmoid(x @ w + b) * 2: elementwise ops, a broadcast bias and a matmul (a batch of VJPs in one backward pass).
const graph = {
  inputs: [
    { name: 'x', dtype: 'float32', shape: [2, 3] },
    { name: 'w', dtype: 'float32', shape: [3, 2] },
    { name: 'b', dtype: 'float32', shape: [2] },
  ],
  nodes: [
    { op: 'matmul', inputs: ['x', 'w'], outputs: ['xw'] },
    { op: 'add', inputs: ['xw', 'b'], outputs: ['z'] },
    { op: 'sigmoid', inputs: ['z'], outputs: ['h'] },
    { op: 'mul', inputs: ['h', 2.0], outputs: ['y'] },
  ],
  outputs: ['y'],
};
const values = { x: [0.5, -1, 2, 1.5, 0.25, -0.75], w: [0.2, -0.1, 0.4, 0.3, -0.5, 0.6], b: [0.1, -0.2] };
const shapes = { x: [2, 3], w: [3, 2], b: [2] };
const cotangents = [[1, 0, 0, 0], [0, 0, 0, 1], [0.5, -2, 3, 0.25], [1, 1, 1, 1]];

const failures = [];
function check(ok, what) {
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  if (!ok) failures.push(what);
}

function close(actual, expected, rel = 1e-5, abs = 1e-5) {
  return actual.length === expected.length &&
    actual.every((a, i) => Math.abs(a - expected[i]) <= Math.max(abs, rel * Math.abs(expected[i])));
}

async function http(method, route, body) {
  const response = await fetch(rest + route, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

const v1Inputs = () => Object.fromEntries(Object.keys(values).map(n => [n, { dtype: 'float32', shape: shapes[n], data: values[n] }]));
async function v1(transform, fields = {}) {
  const r = await http('POST', `/v1/${transform}`, { model, inputs: v1Inputs(), ...fields });
  if (r.status !== 200) throw new Error(`/v1/${transform} failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const oipInputs = () => Object.keys(values).map(n => ({ name: n, datatype: 'FP32', shape: shapes[n], data: values[n] }));
const named = (list, name) => list.find(t => t.name === name);
const seed = row => ({ y: { dtype: 'float32', shape: [2, 2], data: row } });

async function restChecks() {
  const server = await http('GET', '/v2');
  check(server.status === 200 && server.body.extensions.includes('gradient'), 'REST GET /v2 advertises gradient');
  const meta = await http('GET', `/v2/models/${model}`);
  check(meta.status === 200 && JSON.stringify(named(meta.body.inputs, 'b').shape) === '[2]', 'REST model metadata');

  const evaluated = (await v1('evaluate')).outputs.y.data;
  const infer = await http('POST', `/v2/models/${model}/infer`, { inputs: oipInputs() });
  check(infer.status === 200 && close(named(infer.body.outputs, 'y').data, evaluated), 'REST infer equals /v1 evaluate');

  const vjp = await http('POST', `/v2/models/${model}/vjp`, {
    inputs: oipInputs(), cotangents: [{ name: 'y', datatype: 'FP32', shape: [4, 2, 2], data: cotangents.flat() }],
  });
  check(vjp.status === 200 && vjp.body.parameters.batch_size === 4, 'REST vjp takes a batch of four cotangents');
  check(vjp.body.parameters.batched_backward === 'one_pass', 'REST batched vjp is one backward pass');
  for (let r = 0; r < cotangents.length; r++) {
    const g = (await v1('gradient', { seeds: seed(cotangents[r]) })).gradients;
    for (const name of Object.keys(values)) {
      const n = values[name].length;
      check(close(named(vjp.body.derivatives, name).data.slice(r * n, (r + 1) * n), g[name].data), `REST vjp row ${r} d${name} equals /v1 gradient`);
    }
  }

  const tangent = [0, 0, 1, 0, 0, 0];
  const jvp = await http('POST', `/v2/models/${model}/jvp`, { inputs: oipInputs(), tangents: [{ name: 'w', datatype: 'FP32', shape: [3, 2], data: tangent }] });
  const expected = (await v1('jvp', { tangents: { w: { dtype: 'float32', shape: [3, 2], data: tangent } } })).tangents_out.y.data;
  check(jvp.status === 200 && close(named(jvp.body.derivatives, 'y').data, expected), 'REST jvp equals /v1 jvp');

  const refused = await http('POST', `/v2/models/${model}/infer`, { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['a'] }] });
  check(refused.status === 400 && refused.body.error.includes('BYTES'), 'REST refuses BYTES with the protocol error body');
}

const loadOptions = { keepCase: true, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: true, includeDirs: [protos] };
const unary = (client, method, request) => new Promise((resolve, reject) =>
  client[method](request, { deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response))));
const rawFloats = list => Buffer.from(new Float32Array(list).buffer);
const floats = raw => Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));

// The protocol's service and the gradient extension's, from the project's .proto files loaded at run time.
function grpcClients() {
  const definition = protoLoader.loadSync([path.join('inference', 'grpc_service.proto'), path.join('autograd', 'v2', 'gradient.proto')], loadOptions);
  const loaded = grpc.loadPackageDefinition(definition);
  return {
    oip: new loaded.inference.GRPCInferenceService(target, grpc.credentials.createInsecure()),
    gradients: new loaded.autograd.v2.GradientService(target, grpc.credentials.createInsecure()),
  };
}

async function grpcChecks() {
  const { oip, gradients } = grpcClients();
  try {
    check((await unary(oip, 'ServerLive', {})).live === true, 'gRPC ServerLive');
    check((await unary(oip, 'ModelReady', { name: model })).ready === true, 'gRPC ModelReady');
    const request = () => ({
      model_name: model,
      inputs: Object.keys(values).map(n => ({ name: n, datatype: 'FP32', shape: shapes[n] })),
      raw_input_contents: Object.keys(values).map(n => rawFloats(values[n])),
    });
    const evaluated = (await v1('evaluate')).outputs.y.data;
    const infer = await unary(oip, 'ModelInfer', request());
    check(infer.outputs[0].name === 'y' && close(floats(infer.raw_output_contents[0]), evaluated), 'gRPC ModelInfer equals /v1 evaluate');

    const vjp = await unary(gradients, 'Vjp', {
      infer: request(), wrt: ['x'],
      cotangents: [{ name: 'y', datatype: 'FP32', shape: [4, 2, 2], contents: { fp32_contents: cotangents.flat() } }],
    });
    check(vjp.derivatives[0].name === 'x' && vjp.derivatives[0].shape.join() === '4,2,3', 'gRPC Vjp derivative has the batch axis');
    const got = floats(vjp.raw_derivative_contents[0]);
    for (let r = 0; r < cotangents.length; r++) {
      const g = (await v1('gradient', { wrt: ['x'], seeds: seed(cotangents[r]) })).gradients.x.data;
      check(close(got.slice(r * 6, (r + 1) * 6), g), `gRPC Vjp row ${r} equals /v1 gradient`);
    }
    try {
      await unary(oip, 'ModelInfer', { ...request(), model_name: 'node-oip-absent' });
      check(false, 'gRPC unknown model is NOT_FOUND');
    } catch (e) {
      check(e.code === grpc.status.NOT_FOUND, 'gRPC unknown model is NOT_FOUND');
    }
  } finally {
    oip.close();
    gradients.close();
  }
}

// The ONNX models: each file uploaded as application/onnx, then infer and a batch of two VJPs over REST and gRPC.
async function onnxChecks() {
  const models = JSON.parse(fs.readFileSync(path.join(onnxDir, 'models.json'), 'utf8'));
  const { oip, gradients } = grpcClients();
  try {
    for (const [kind, m] of Object.entries(models)) {
      const name = `node-onnx-${kind}`;
      const put = await fetch(`${rest}/v1/models/${name}`, {
        method: 'PUT', headers: { 'content-type': 'application/onnx' }, body: fs.readFileSync(path.join(onnxDir, m.file)),
        signal: AbortSignal.timeout(timeoutMs),
      });
      check(put.status === 200 && (await put.json()).format === 'onnx', `${kind}: the ONNX file registers`);
      const v1Model = async (transform, fields = {}) => {
        const inputs = Object.fromEntries(m.inputs.map(i => [i.name, { dtype: 'float32', shape: i.shape, data: i.data }]));
        const r = await http('POST', `/v1/${transform}`, { model: name, inputs, ...fields });
        if (r.status !== 200) throw new Error(`/v1/${transform} on ${name} failed: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      };
      const oipIn = m.inputs.map(i => ({ name: i.name, datatype: 'FP32', shape: i.shape, data: i.data }));
      const evaluated = (await v1Model('evaluate')).outputs;
      const infer = await http('POST', `/v2/models/${name}/infer`, { inputs: oipIn });
      check(infer.status === 200 && m.outputs.every(o => close(named(infer.body.outputs, o.name).data, evaluated[o.name].data)),
        `${kind}: REST infer equals /v1 evaluate`);

      const out = m.differentiate, wrt = m.wrt;
      const outShape = m.outputs.find(o => o.name === out).shape;
      const size = outShape.reduce((a, b) => a * b, 1);
      const rows = [0, 1].map(b => Array.from({ length: size }, (_, j) => (((j * 3 + b * 5) % 7) - 3) / 3));
      const vjp = await http('POST', `/v2/models/${name}/vjp`, {
        inputs: oipIn, wrt: [wrt], cotangents: [{ name: out, datatype: 'FP32', shape: [2, ...outShape], data: rows.flat() }],
      });
      check(vjp.status === 200 && vjp.body.parameters.batch_size === 2, `${kind}: REST vjp takes a batch of two`);
      const n = m.inputs.find(i => i.name === wrt).data.length;
      for (let r = 0; r < rows.length; r++) {
        const g = (await v1Model('gradient', { outputs: [out], wrt: [wrt], seeds: { [out]: { dtype: 'float32', shape: outShape, data: rows[r] } } }))
          .gradients[wrt].data;
        check(close(named(vjp.body.derivatives, wrt).data.slice(r * n, (r + 1) * n), g, 1e-4), `${kind}: REST vjp row ${r} equals /v1 gradient`);
      }

      const request = {
        model_name: name,
        inputs: m.inputs.map(i => ({ name: i.name, datatype: 'FP32', shape: i.shape })),
        raw_input_contents: m.inputs.map(i => rawFloats(i.data)),
      };
      const response = await unary(oip, 'ModelInfer', request);
      check(response.outputs.every((o, k) => close(floats(response.raw_output_contents[k]), evaluated[o.name].data)),
        `${kind}: gRPC ModelInfer equals /v1 evaluate`);
      const grad = await unary(gradients, 'Vjp', {
        infer: request, wrt: [wrt], cotangents: [{ name: out, datatype: 'FP32', shape: [2, ...outShape], contents: { fp32_contents: rows.flat() } }],
      });
      check(close(floats(grad.raw_derivative_contents[0]), named(vjp.body.derivatives, wrt).data, 1e-5), `${kind}: gRPC Vjp equals REST vjp`);
    }
  } finally {
    oip.close();
    gradients.close();
  }
}

async function main() {
  const put = await http('PUT', `/v1/models/${model}`, { graph });
  if (put.status !== 200) throw new Error(`registering the model failed: ${put.status} ${JSON.stringify(put.body)}`);
  await restChecks();
  await grpcChecks();
  if (onnxDir) await onnxChecks();
  if (failures.length > 0) {
    console.error(`${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log('all node OIP checks passed');
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
