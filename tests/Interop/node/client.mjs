// Interop client: Node (@grpc/grpc-js + @grpc/proto-loader) against the real AutogradService over gRPC.
//
// Loads the project's own .proto files at run time, runs the chapter's C1 statelessly, C5 as a session with the loop
// and the branch in this script's own code, and one error check. Exits non-zero on any mismatch.
//
// Usage: node client.mjs [HOST:GRPC_PORT]   (default: $AUTOGRAD_GRPC or 127.0.0.1:8081)
// Environment: AUTOGRAD_PROTOS overrides the .proto folder (default: src/Contracts/Protos of this repository).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const protos = process.env.AUTOGRAD_PROTOS || path.resolve(here, '..', '..', '..', 'src', 'Contracts', 'Protos');
const target = process.argv[2] || process.env.AUTOGRAD_GRPC || '127.0.0.1:8081';
const timeoutMs = 30_000;

// google.rpc.Status and ErrorInfo, wire-compatible subsets, to read the rich error detail in the
// grpc-status-details-bin trailer. A service is the way proto-loader hands out a message's deserializer.
const rpcStatusProto = `
syntax = "proto3";
package interop.rpc;
message AnyValue { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated AnyValue details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message Empty {}
service Decoder { rpc ReadStatus(Empty) returns (Status); rpc ReadErrorInfo(Empty) returns (ErrorInfo); }
`;

const failures = [];
function check(ok, what) {
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  if (!ok) failures.push(what);
}

function close(actual, expected, rel = 1e-5, abs = 1e-4) {
  return actual.length === expected.length &&
    actual.every((a, i) => Math.abs(a - expected[i]) <= Math.max(abs, rel * Math.abs(expected[i])));
}

const loadOptions = { keepCase: true, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: true };

function load() {
  const dir = path.join(protos, 'autograd', 'v1');
  const files = fs.readdirSync(dir).filter(f => f.endsWith('.proto')).map(f => path.join('autograd', 'v1', f));
  if (files.length === 0) throw new Error(`no .proto files under ${dir}`);
  const api = grpc.loadPackageDefinition(protoLoader.loadSync(files, { ...loadOptions, includeDirs: [protos] })).autograd.v1;

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autograd-node-'));
  try {
    fs.writeFileSync(path.join(tmp, 'interop_rpc_status.proto'), rpcStatusProto);
    const decoder = protoLoader.loadSync('interop_rpc_status.proto', { ...loadOptions, includeDirs: [tmp] })['interop.rpc.Decoder'];
    return { api, readStatus: decoder.ReadStatus.responseDeserialize, readErrorInfo: decoder.ReadErrorInfo.responseDeserialize };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A protobuf Tensor's elements as numbers, whichever data field the server chose. */
function values(t) {
  if (t.raw && t.raw.length > 0) {
    const width = { DTYPE_FLOAT32: 4, DTYPE_FLOAT64: 8, DTYPE_INT64: 8 }[t.dtype];
    const out = [];
    for (let i = 0; i < t.raw.length; i += width) {
      out.push(t.dtype === 'DTYPE_FLOAT32' ? t.raw.readFloatLE(i) : t.dtype === 'DTYPE_FLOAT64' ? t.raw.readDoubleLE(i) : Number(t.raw.readBigInt64LE(i)));
    }
    return out;
  }
  for (const field of [t.float_data, t.double_data, t.int64_data, t.bool_data]) {
    if (field && field.length > 0) return field.map(Number);
  }
  return [];
}

const scalar32 = v => ({ dtype: 'DTYPE_FLOAT32', shape: [], float_data: [v] });
const deadline = () => ({ deadline: Date.now() + timeoutMs });
const unary = (client, method, request) => new Promise((resolve, reject) =>
  client[method](request, deadline(), (err, reply) => (err ? reject(err) : resolve(reply))));

/** One Sessions.Run stream, driven command by command: send one, wait for its reply, decide. */
function openSession(sessions) {
  const call = sessions.Run(deadline());
  const waiting = [];
  const early = [];
  let failure = null;
  call.on('data', reply => (waiting.length ? waiting.shift().resolve(reply) : early.push(reply)));
  call.on('error', err => { failure = err; while (waiting.length) waiting.shift().reject(err); });
  call.on('end', () => { failure ??= new Error('the server ended the session'); while (waiting.length) waiting.shift().reject(failure); });
  let index = 0;
  const send = async command => {
    const reply = await new Promise((resolve, reject) => {
      if (early.length) return resolve(early.shift());
      if (failure) return reject(failure);
      waiting.push({ resolve, reject });
      call.write(command);
    });
    if (Number(reply.command_index) !== index) throw new Error(`reply ${reply.command_index} answers command ${index}`);
    index++;
    if (reply.error) throw new Error(`command ${JSON.stringify(command)} failed: ${reply.error.code}: ${reply.error.detail}`);
    return reply;
  };
  const end = () => new Promise(resolve => {
    if (failure) return resolve();
    call.on('end', resolve);
    call.on('error', resolve);
    call.end();
  });
  return { send, end };
}

async function c5(sessions, a) {
  const { send, end } = openSession(sessions);
  const apply = (op, inputs, output) => send({ apply: { op, inputs, output } });
  const fetch = async name => values((await send({ fetch: { name } })).value)[0];
  try {
    const opened = await send({ open: { gradient_mode: 'GRADIENT_MODE_ACCUMULATE' } });
    if (!opened.session_id) throw new Error('open replies with a session id');
    await send({ variable: { name: 'a', value: scalar32(a), requires_grad: true } });
    await send({ constant: { name: 'two', value: scalar32(2) } });
    await send({ constant: { name: 'hundred', value: scalar32(100) } });
    await apply('mul', ['two', 'a'], 'b');
    let steps = 0;
    for (;;) {
      await apply('norm', ['b'], 'n');
      if ((await fetch('n')) >= 1000) break;
      await apply('mul', ['two', 'b'], 'b');
      steps++;
    }
    await apply('sum', ['b'], 's');
    if ((await fetch('s')) > 0) await apply('identity', ['b'], 'c');
    else await apply('mul', ['hundred', 'b'], 'c');
    const c = await fetch('c');
    await send({ backward: { output: 'c' } });
    const grad = values((await send({ grad: { name: 'a' } })).value)[0];
    return { c, grad, steps };
  } finally {
    await end();
  }
}

async function main() {
  const { api, readStatus, readErrorInfo } = load();
  const credentials = grpc.credentials.createInsecure();
  const options = { 'grpc.enable_http_proxy': 0 }; // the server is local: never route through an http_proxy
  const autodiff = new api.Autodiff(target, credentials, options);
  const sessions = new api.Sessions(target, credentials, options);
  try {
    await new Promise((resolve, reject) => autodiff.waitForReady(Date.now() + timeoutMs, e => (e ? reject(e) : resolve())));

    // C1, stateless: y = 2 * dot(x, x) at x = arange(4), x sent as raw little-endian float32 bytes.
    const raw = Buffer.alloc(16);
    [0, 1, 2, 3].forEach((v, i) => raw.writeFloatLE(v, i * 4));
    const reply = await unary(autodiff, 'Gradient', {
      computation: { program: 't = dot(x, x)\ny = 2 * t' },
      inputs: { x: { dtype: 'DTYPE_FLOAT32', shape: [4], raw } },
      wrt: ['x'],
    });
    const y = values(reply.outputs.y);
    const gx = values(reply.gradients.x);
    check(close(y, [28]), `C1 y = 28 (got ${y})`);
    check(reply.outputs.y.shape.length === 0, 'C1 y is a scalar');
    check(close(gx, [0, 4, 8, 12]), `C1 dy/dx = [0,4,8,12] (got ${gx})`);
    check(reply.gradients.x.dtype === 'DTYPE_FLOAT32' && reply.gradients.x.shape.join() === '4', 'C1 grad is float32[4]');

    // C5 as a session: the while and the if run here, reading norm(b) and sum(b) back to decide.
    for (const [a, wantC, wantGrad] of [[0.5, 1024, 2048], [-0.3, -122880.0078, 409600], [1.7, 1740.8, 1024]]) {
      const { c, grad, steps } = await c5(sessions, a);
      check(close([c], [wantC]), `C5 a=${a}: c = ${wantC} (got ${c})`);
      check(close([grad], [wantGrad]), `C5 a=${a}: dc/da = ${wantGrad} (got ${grad}, after ${steps} doublings)`);
    }

    // An error: an unknown op is INVALID_ARGUMENT with reason invalid_graph (ErrorInfo) and the autograd-code trailer.
    try {
      await unary(autodiff, 'Evaluate', { computation: { program: 'y = frobnicate(x)' }, inputs: { x: scalar32(1) } });
      check(false, 'unknown op is refused');
    } catch (e) {
      if (e.code === undefined) throw e;
      check(e.code === grpc.status.INVALID_ARGUMENT, `unknown op: INVALID_ARGUMENT (got ${e.code})`);
      const code = e.metadata?.get('autograd-code')?.[0];
      check(code === 'invalid_graph', `unknown op: trailer autograd-code = invalid_graph (got ${code})`);
      const details = e.metadata?.get('grpc-status-details-bin')?.[0];
      const reasons = details
        ? readStatus(details).details.filter(d => d.type_url.endsWith('/google.rpc.ErrorInfo')).map(d => readErrorInfo(d.value).reason)
        : [];
      check(reasons.join() === 'invalid_graph', `unknown op: ErrorInfo reason = invalid_graph (got ${reasons})`);
      check((e.details || '').includes('frobnicate'), `unknown op: the detail names the op (got ${JSON.stringify(e.details)})`);
    }
  } finally {
    autodiff.close();
    sessions.close();
  }
  if (failures.length) {
    console.error(`${failures.length} check(s) failed`);
    process.exitCode = 1;
  } else {
    console.log('all node interop checks passed');
  }
}

main().catch(e => {
  console.error('FAIL', e);
  process.exitCode = 1;
});
