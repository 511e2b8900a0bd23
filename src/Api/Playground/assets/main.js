// The playground's wiring: chapter cases, running transforms, results as numbers, the plot and the graph. Every
// number shown comes from the service; the page only formats it. The latest state is on window.playground (the
// browser tests read the plotted values there rather than from pixels).
import { post, ops, numbers, setApiKey, ServiceError } from './api.js';
import { Editor } from './editor.js';
import { drawPlot } from './plot.js';
import { drawGraph, parseMermaid } from './graph.js';
import { CASES } from './cases.js';

const $ = id => document.getElementById(id);
const state = (window.playground = { plot: null, graph: null, result: null, error: null, inspect: null, completed: 0 });
const editor = new Editor({ source: $('source'), highlight: $('highlight'), gutter: $('gutter'), root: $('editor') });

// ---- busy/idle and errors -------------------------------------------------------------------------------------

async function task(work) {
  document.body.dataset.state = 'busy';
  $('run').disabled = $('plot').disabled = true;
  try {
    await work();
  } catch (e) {
    showError(e);
  } finally {
    $('run').disabled = $('plot').disabled = false;
    document.body.dataset.state = 'idle';
    document.body.dataset.completed = String(++state.completed);
  }
}

function clearError() {
  state.error = null;
  $('error').hidden = true;
  $('error').textContent = '';
  editor.showError(null);
}

function showError(e) {
  const box = $('error');
  box.replaceChildren();
  // The service's syntax errors name their line themselves; say it only where the message does not.
  const where = e.line && !/\bline \d+/.test(e.message) ? `Line ${e.line}${e.column ? `, column ${e.column}` : ''}: ` : '';
  const head = document.createElement('strong');
  head.textContent = e instanceof ServiceError ? `${e.code} (${e.status})` : 'error';
  const text = document.createElement('span');
  text.className = 'detail';
  text.textContent = ' ' + where + e.message;
  box.append(head, text);
  box.hidden = false;
  if (e.line) box.dataset.line = String(e.line);
  else delete box.dataset.line;
  state.error = { code: e.code || null, line: e.line || null, column: e.column || null, message: e.message };
  editor.showError(e.line ? e : null);
}

/** A client-side mistake (bad JSON in a field) shown like the service's errors. */
class InputError extends Error {
  constructor(message) { super(message); this.code = 'invalid_input'; }
}

function parseJsonField(id, label, fallback) {
  const text = $(id).value.trim();
  if (!text) return fallback;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${label} is not valid JSON: ${e.message}`);
  }
}

// ---- requests -------------------------------------------------------------------------------------------------

/** The editor's text as the request's source: a JSON graph when it starts with '{', else a program. */
function source() {
  const text = editor.text;
  if (text.trimStart().startsWith('{')) {
    try {
      return { graph: JSON.parse(text) };
    } catch (e) {
      throw new InputError(`the graph is not valid JSON: ${e.message}`);
    }
  }
  return { program: text };
}

/** A tensor of ones shaped like a JSON input (a number, nested lists or {dtype, shape, data}). */
function onesLike(value) {
  if (typeof value === 'number' || typeof value === 'string') return 1;
  if (Array.isArray(value)) return value.map(onesLike);
  if (value && typeof value === 'object' && Array.isArray(value.data)) return { ...value, data: value.data.map(() => 1) };
  return 1;
}

function wrtList() {
  const names = $('wrt').value.split(',').map(s => s.trim()).filter(Boolean);
  return names.length ? names : undefined;
}

async function run() {
  clearError();
  // Numbers and a graph from an earlier program must not stand next to this one's error.
  $('results').replaceChildren();
  $('graph-view').replaceChildren();
  state.result = null;
  state.graph = null;
  const transform = $('transform').value;
  const src = source();
  const inputs = parseJsonField('inputs', 'Inputs', {});
  const extra = parseJsonField('extra', 'More request fields', {});
  const inspect = await post('inspect', { ...src, inputs });
  state.inspect = inspect;
  state.graph = drawGraph($('graph-view'), inspect.mermaid, inspect.values);

  const body = { ...src, inputs };
  const wrt = wrtList();
  if (wrt && transform !== 'evaluate' && transform !== 'jvp') body.wrt = wrt;
  if (transform === 'gradient' && !('intermediates' in extra)) body.intermediates = Object.keys(inspect.values);
  if (transform === 'jvp' && !('tangents' in extra)) body.tangents = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, onesLike(v)]));
  Object.assign(body, extra);

  const result = await post(transform, body);
  state.result = result;
  showResults(transform, result);
  if (transform === 'gradient') {
    const notes = { ...(result.intermediates || {}) };
    for (const [name, value] of Object.entries(result.outputs || {})) notes[name] = { ...(notes[name] || {}), value };
    for (const [name, adjoint] of Object.entries(result.gradients || {})) notes[name] = { ...(notes[name] || {}), adjoint };
    state.graph = drawGraph($('graph-view'), inspect.mermaid, inspect.values, notes);
  }
}

// ---- results as numbers ---------------------------------------------------------------------------------------

// Full precision: the numbers shown are the service's, digit for digit (NaN and infinities arrive as strings).
const fmt = v => String(v);

function tensorCell(tensor) {
  const cell = document.createElement('td');
  cell.className = 'tensor';
  const data = tensor.data;
  if (tensor.shape.length === 2 && data.length <= 400) {
    const [rows, cols] = tensor.shape;
    cell.textContent = Array.from({ length: rows }, (_, r) => '[' + data.slice(r * cols, (r + 1) * cols).map(fmt).join(', ') + ']').join('\n');
  } else {
    const shown = data.slice(0, 64).map(fmt).join(', ') + (data.length > 64 ? `, … (${data.length} values)` : '');
    cell.textContent = tensor.shape.length === 0 ? shown : `[${shown}]`;
  }
  return cell;
}

function table(title, entries) {
  const section = document.createElement('div');
  section.className = 'result-section';
  section.dataset.section = title;
  const h = document.createElement('h3');
  h.textContent = title;
  const t = document.createElement('table');
  for (const [name, tensor] of entries) {
    const tr = t.insertRow();
    tr.dataset.name = name;
    const n = tr.insertCell();
    n.className = 'name';
    n.textContent = name;
    const type = tr.insertCell();
    type.className = 'type';
    type.textContent = `${tensor.dtype}[${tensor.shape.join(', ')}]`;
    tr.appendChild(tensorCell(tensor));
  }
  section.append(h, t);
  return section;
}

function showResults(transform, r) {
  const out = $('results');
  out.replaceChildren();
  const add = (title, map) => { if (map && Object.keys(map).length) out.appendChild(table(title, Object.entries(map))); };
  add('outputs', r.outputs);
  add('gradients', r.gradients);
  add('tangents_out', r.tangents_out);
  add('hvp', r.hvp);
  for (const key of ['jacobians', 'hessians']) {
    if (!r[key]) continue;
    const flat = [];
    for (const [o, byInput] of Object.entries(r[key])) for (const [i, t] of Object.entries(byInput)) flat.push([`∂${o}/∂${i}`, t]);
    out.appendChild(table(key, flat));
  }
  if (r.intermediates && Object.keys(r.intermediates).length) {
    const rows = [];
    for (const [name, va] of Object.entries(r.intermediates)) { rows.push([`${name} value`, va.value]); rows.push([`${name} adjoint`, va.adjoint]); }
    out.appendChild(table('intermediates', rows));
  }
  const stats = document.createElement('p');
  stats.className = 'stats';
  const s = r.stats || {};
  stats.textContent = `${transform}${r.mode_used ? ` (mode ${r.mode_used})` : ''}: forward ${s.forward_ms} ms, backward ${s.backward_ms} ms, peak ${s.peak_bytes} bytes, ${s.nodes_executed} nodes`;
  out.appendChild(stats);
}

// ---- the plot: f, f' and f'' over a grid, one request each -----------------------------------------------------

/** "-2π", "2pi", "3.5", "π/2" → a number. */
export function parseBound(text) {
  const t = text.trim().replace(/pi/gi, 'π');
  const m = /^([+-]?)(\d*\.?\d*)\s*\*?\s*(π?)\s*(?:\/\s*(\d+\.?\d*))?$/.exec(t);
  if (!m || (!m[2] && !m[3])) throw new InputError(`'${text}' is not a number (write e.g. -2π, 3.5 or π/2)`);
  const value = (m[2] ? Number(m[2]) : 1) * (m[3] ? Math.PI : 1) / (m[4] ? Number(m[4]) : 1);
  return m[1] === '-' ? -value : value;
}

/** The graph's top-level inputs and outputs, read from inspect's Mermaid export. */
function signature(mermaid) {
  const g = parseMermaid(mermaid);
  const top = g.nodes.filter(n => n.cluster === 'root');
  return { inputs: top.filter(n => n.kind === 'input').map(n => n.name), outputs: top.filter(n => n.kind === 'output').map(n => n.name) };
}

/** "a, b" → "a"; "sum(x, axes=[0]), y" → "sum(x, axes=[0])": the first item at bracket depth zero. */
function firstOfTuple(text) {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) return text.slice(0, i).trim();
  }
  return text.trim();
}

/** The same source with one more output: the sum of `output`, so a Hessian-vector product gives f'' elementwise. */
function withSum(src, output) {
  const name = ['plot_sum', 'plot_sum_', 'plot_sum__'].find(n => !JSON.stringify(src).includes(n)) + '_total';
  if (src.program !== undefined) {
    // A function's last statement must stay its return: the sum goes just before it, and the function returns it.
    const returns = [...src.program.matchAll(/^([ \t]+)return\s+([^\n#]+?)\s*(#.*)?$/gm)];
    if (/^\s*def\s/m.test(src.program) && returns.length) {
      const last = returns[returns.length - 1];
      const first = firstOfTuple(last[2]);
      const replaced = `${last[1]}${name} = sum(${first})\n${last[1]}return ${name}`;
      const program = src.program.slice(0, last.index) + replaced + src.program.slice(last.index + last[0].length);
      return { source: { program }, name };
    }
    return { source: { program: `${src.program}\n${name} = sum(${output})` }, name };
  }
  const graph = { ...src.graph, nodes: [...src.graph.nodes, { op: 'sum', inputs: [output], outputs: [name] }], outputs: [name] };
  return { source: { graph }, name };
}

async function plot() {
  clearError();
  const src = source();
  const from = parseBound($('plot-from').value), to = parseBound($('plot-to').value);
  const count = Math.round(Number($('plot-points').value));
  if (!(count >= 2 && count <= 5000)) throw new InputError('points must be between 2 and 5000');
  if (!(to > from)) throw new InputError("the plot's range must go from a smaller number to a larger one");

  // Only the signature is needed here; the graph panel keeps what the last run drew (with its values).
  const inspect = await post('inspect', { ...src });
  const sig = signature(inspect.mermaid);
  if (sig.inputs.length !== 1) throw new InputError(`plotting needs a program with one input; this one has ${sig.inputs.length} (${sig.inputs.join(', ')})`);
  const x = sig.inputs[0];
  const given = parseJsonField('inputs', 'Inputs', {})[x];
  const dtype = given && typeof given === 'object' && !Array.isArray(given) && given.dtype === 'float64' ? 'float64' : 'float32';
  const round = dtype === 'float32' ? Math.fround : v => v;
  // The grid as the service will see it, so each plotted x is exactly the input its values belong to.
  const xs = Array.from({ length: count }, (_, i) => round(from + ((to - from) * i) / (count - 1)));
  const grid = { [x]: { dtype, shape: [count], data: xs } };

  // f and f' in one request: the gradient of sum(f) is f'(x_i) at each point for an elementwise f.
  const gradient = await post('gradient', { ...src, inputs: grid, wrt: [x] });
  const [outName, out] = Object.entries(gradient.outputs)[0];
  if (out.shape.length !== 1 || out.shape[0] !== count)
    throw new InputError(`plotting needs f to give one value per point (shape [${count}]); '${outName}' has shape [${out.shape.join(', ')}]`);
  const series = [{ name: 'f', values: numbers(out), cssClass: 'f' }, { name: "f′", values: numbers(gradient.gradients[x]), cssClass: 'df' }];

  if ($('plot-second').checked) {
    // f'': a Hessian-vector product of sum(f) with ones, again elementwise.
    const { source: summed } = withSum(src, outName);
    const ones = { [x]: { dtype, shape: [count], data: xs.map(() => 1) } };
    const hessian = await post('hessian', { ...summed, inputs: grid, wrt: [x], vector: ones });
    series.push({ name: "f″", values: numbers(hessian.hvp[x]), cssClass: 'd2f' });
  }
  state.plot = { input: x, output: outName, dtype, x: xs, f: series[0].values, df: series[1].values, d2f: series[2] ? series[2].values : null };
  drawPlot($('plot-view'), $('plot-readout'), xs, series);
}

// ---- cases --------------------------------------------------------------------------------------------------

function loadCase(id) {
  const c = CASES.find(k => k.id === id);
  if (!c) return;
  $('case').value = c.id;
  editor.text = c.graph ? JSON.stringify(c.graph, null, 2) : c.program;
  $('inputs').value = JSON.stringify(c.inputs);
  $('extra').value = c.extra ? JSON.stringify(c.extra) : '';
  $('wrt').value = c.wrt || '';
  $('transform').value = c.transform;
  $('case-note').textContent = c.note;
  clearError();
  $('results').replaceChildren();
  $('plot-view').replaceChildren();
  $('plot-readout').textContent = '';
  state.plot = null;
  state.result = null;
  if (location.hash !== '#' + c.id) history.replaceState(null, '', '#' + c.id);
  // A plotting case also runs its transform, so its numbers show next to the plot.
  return task(async () => { await run(); if (c.plot) await plot(); });
}

/** The page's state as a link: #program=…&inputs=…&transform=… (a graph goes as program text starting with '{'). */
function linkToHere() {
  const params = new URLSearchParams({ program: editor.text, inputs: $('inputs').value, transform: $('transform').value });
  if ($('wrt').value.trim()) params.set('wrt', $('wrt').value.trim());
  if ($('extra').value.trim()) params.set('extra', $('extra').value.trim());
  return '#' + params.toString();
}

/** Loads a link made by linkToHere and runs it; false when the fragment is not one. */
async function loadLink(fragment) {
  const params = new URLSearchParams(fragment);
  if (!params.has('program')) return false;
  editor.text = params.get('program');
  $('inputs').value = params.get('inputs') || '{}';
  $('extra').value = params.get('extra') || '';
  $('wrt').value = params.get('wrt') || '';
  const transform = params.get('transform');
  if ([...$('transform').options].some(o => o.value === transform)) $('transform').value = transform;
  $('case').value = '';
  $('case-note').textContent = '';
  await task(run);
  return true;
}

async function start() {
  for (const c of CASES) {
    const option = document.createElement('option');
    option.value = c.id;
    option.textContent = c.title;
    $('case').appendChild(option);
  }
  $('case').addEventListener('change', () => loadCase($('case').value));
  $('link').addEventListener('click', () => history.replaceState(null, '', linkToHere()));
  $('run').addEventListener('click', () => task(run));
  $('plot').addEventListener('click', () => task(plot));
  $('api-key').addEventListener('change', () => setApiKey($('api-key').value));
  document.addEventListener('keydown', e => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); task(run); }
  });
  // Known op names (and aliases) let the editor flag a call of an op that does not exist before it is sent.
  try {
    const catalog = await ops();
    editor.setKnownOps(catalog.ops.flatMap(o => [o.name, ...(o.aliases || [])]));
  } catch {
    // Without the catalog every call is highlighted as an op; the service still names unknown ones.
  }
  const wanted = location.hash.slice(1);
  if (!(await loadLink(wanted))) await loadCase(CASES.some(c => c.id === wanted) ? wanted : 'E4');
}

start();
