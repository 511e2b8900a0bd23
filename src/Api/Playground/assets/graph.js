// The graph drawn from the service's Mermaid export (POST /v1/inspect): the text is parsed back into nodes, edges
// and subgraph clusters, laid out in layers (longest path, then barycentric ordering) and drawn as SVG. Nodes show
// their op and output shape; after a gradient, each value's value and adjoint (case E6).

const SVG = 'http://www.w3.org/2000/svg';
const NODE_LINE = /^\s*(\w+)(\(\[|\[\(|\{\{|\(\(|>|\[)"(.*)"(\]\)|\)\]|\}\}|\)\)|\])\s*$/;
const EDGE_LINE = /^\s*(\w+)\s+(-->|-\.->)\|"(.*)"\|\s+(\w+)\s*$/;
const SUBGRAPH_LINE = /^\s*subgraph\s+(\w+)\["(.*)"\]\s*$/;
const KIND_BY_SHAPE = { '([': 'input', '[(': 'constant', '{{': 'control', '((': 'output', '>': 'literal', '[': 'op' };

const unescapeMermaid = s => s.replace(/#quot;/g, '"').replace(/#lt;/g, '<').replace(/#gt;/g, '>').replace(/#124;/g, '|').replace(/#amp;/g, '&');

/** Mermaid flowchart text (as GraphExport writes it) → {nodes, edges, clusters}. */
export function parseMermaid(text) {
  const nodes = [], edges = [], clusters = [{ id: 'root', label: '', parent: null }];
  const stack = ['root'];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line.trim() || /^\s*(flowchart|graph)\b/.test(line) || /^\s*direction\b/.test(line)) continue;
    let m;
    if ((m = SUBGRAPH_LINE.exec(line))) {
      clusters.push({ id: m[1], label: unescapeMermaid(m[2]), parent: stack[stack.length - 1] });
      stack.push(m[1]);
    } else if (/^\s*end\s*$/.test(line)) {
      if (stack.length > 1) stack.pop();
    } else if ((m = EDGE_LINE.exec(line))) {
      edges.push({ from: m[1], to: m[4], dashed: m[2] === '-.->', label: unescapeMermaid(m[3]) });
    } else if ((m = NODE_LINE.exec(line))) {
      const lines = m[3].split('<br/>').map(unescapeMermaid);
      nodes.push(describe(m[1], KIND_BY_SHAPE[m[2]] || 'op', lines, stack[stack.length - 1]));
    }
  }
  return { nodes, edges, clusters };
}

function describe(id, kind, lines, cluster) {
  const node = { id, kind, cluster, lines, op: null, name: null, outputs: [], type: null };
  if (kind === 'op' || kind === 'control') {
    node.op = lines[0].split(' ')[0];
    node.title = lines[0];
    node.outputs = lines.slice(1).filter(l => l.startsWith('→ ')).map(l => l.slice(2).split(':')[0].trim());
  } else if (kind === 'input') {
    node.name = lines[0];
    node.type = lines[1] || null;
  } else if (kind === 'constant') {
    node.name = lines[0];
  } else if (kind === 'output') {
    node.name = lines[0].replace(/^(output|yields) /, '');
  } else {
    node.name = lines[0];
  }
  return node;
}

const typeText = t => (t ? `${t.dtype}${t.shape ? '[' + t.shape.join(', ') + ']' : '[*]'}` : null);

function short(tensor) {
  if (!tensor) return '';
  const values = tensor.data.slice(0, 4).map(v => (typeof v === 'number' ? String(Number(v.toPrecision(5))) : String(v)));
  const text = values.join(', ') + (tensor.data.length > 4 ? ', …' : '');
  return tensor.shape.length === 0 ? text : `[${text}]`;
}

/** The text lines each node shows: its op or name, its type, and value/adjoint when a gradient gave them. */
function labelLines(node, types, annotations) {
  const rows = [];
  const top = node.cluster === 'root';
  const note = name => {
    const a = top && annotations ? annotations[name] : null;
    if (a && a.value) { rows.push({ text: 'value ' + short(a.value), cls: 'value' }); node.value = a.value; }
    if (a && a.adjoint) { rows.push({ text: 'adjoint ' + short(a.adjoint), cls: 'adjoint' }); node.adjoint = a.adjoint; }
  };
  if (node.kind === 'op' || node.kind === 'control') {
    rows.push({ text: node.title, cls: 'title' });
    for (const o of node.outputs) {
      const t = top ? typeText(types[o]) : null;
      rows.push({ text: t ? `${o}: ${t}` : `→ ${o}`, cls: 'type' });
      note(o);
    }
  } else if (node.kind === 'input') {
    rows.push({ text: node.name, cls: 'title' });
    rows.push({ text: (top ? typeText(types[node.name]) : null) || node.type || '', cls: 'type' });
    note(node.name);
  } else if (node.kind === 'output') {
    rows.push({ text: node.lines[0], cls: 'title' });
  } else {
    node.lines.forEach((l, i) => rows.push({ text: l, cls: i === 0 ? 'title' : 'type' }));
  }
  return rows;
}

const LINE_HEIGHT = 15, CHAR_WIDTH = 6.9, PAD_X = 10, PAD_Y = 7, ROW_GAP = 34, COL_GAP = 22, CLUSTER_PAD = 14, CLUSTER_TITLE = 18;

/** Lays out one cluster's own nodes in layers and its child clusters in a column beside them; sizes in .w/.h. */
function layoutCluster(cluster, graph) {
  const own = graph.nodes.filter(n => n.cluster === cluster.id);
  const ids = new Set(own.map(n => n.id));
  const inner = graph.edges.filter(e => ids.has(e.from) && ids.has(e.to) && !e.dashed);
  const preds = new Map(own.map(n => [n.id, []])), succs = new Map(own.map(n => [n.id, []]));
  for (const e of inner) { preds.get(e.to).push(e.from); succs.get(e.from).push(e.to); }

  // Longest path from the sources (Kahn's order); the export never has cycles.
  const layer = new Map(), indegree = new Map(own.map(n => [n.id, preds.get(n.id).length]));
  const queue = own.filter(n => indegree.get(n.id) === 0).map(n => n.id);
  for (const id of queue) layer.set(id, 0);
  while (queue.length) {
    const id = queue.shift();
    for (const s of succs.get(id)) {
      layer.set(s, Math.max(layer.get(s) || 0, layer.get(id) + 1));
      indegree.set(s, indegree.get(s) - 1);
      if (indegree.get(s) === 0) queue.push(s);
    }
  }
  // Literals and constants sit just above their first user rather than at the top.
  for (const n of own) {
    if ((n.kind === 'literal' || n.kind === 'constant') && succs.get(n.id).length)
      layer.set(n.id, Math.max(0, Math.min(...succs.get(n.id).map(s => layer.get(s))) - 1));
    if (!layer.has(n.id)) layer.set(n.id, 0);
  }
  const rows = [];
  for (const n of own) (rows[layer.get(n.id)] ||= []).push(n);
  const filled = rows.filter(Boolean);

  // A few sweeps of barycentric ordering cut most crossings.
  const position = new Map();
  const index = () => filled.forEach(r => r.forEach((n, i) => position.set(n.id, i)));
  index();
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    for (const row of down ? filled : [...filled].reverse()) {
      const key = n => {
        const near = (down ? preds : succs).get(n.id);
        return near.length ? near.reduce((s, id) => s + position.get(id), 0) / near.length : position.get(n.id);
      };
      row.sort((a, b) => key(a) - key(b));
      row.forEach((n, i) => position.set(n.id, i));
    }
  }

  // Rows centred on the widest; child clusters stacked to the right.
  let y = 0, width = 0;
  const rowWidths = filled.map(r => r.reduce((s, n) => s + n.w, 0) + COL_GAP * (r.length - 1));
  const contentWidth = Math.max(0, ...rowWidths);
  filled.forEach((row, r) => {
    let x = (contentWidth - rowWidths[r]) / 2;
    const h = Math.max(...row.map(n => n.h));
    for (const n of row) { n.x = x; n.y = y + (h - n.h) / 2; x += n.w + COL_GAP; }
    y += h + ROW_GAP;
  });
  const contentHeight = Math.max(0, y - ROW_GAP);
  width = contentWidth;

  const children = graph.clusters.filter(c => c.parent === cluster.id);
  let cy = 0, childWidth = 0;
  for (const child of children) {
    layoutCluster(child, graph);
    // Level with the control node that owns it (the source of the dashed edges into it), below the one before.
    const inside = new Set(graph.nodes.filter(n => n.cluster === child.id).map(n => n.id));
    const owner = own.find(n => graph.edges.some(e => e.dashed && e.from === n.id && inside.has(e.to)));
    child.x = contentWidth + (contentWidth ? COL_GAP * 2 : 0);
    child.y = Math.max(cy, owner ? owner.y : 0);
    cy = child.y + child.h + COL_GAP;
    childWidth = Math.max(childWidth, child.w);
  }
  if (children.length) width = children[0].x + childWidth;
  const height = Math.max(contentHeight, cy - (children.length ? COL_GAP : 0));
  const frame = cluster.id === 'root' ? 0 : CLUSTER_PAD;
  const title = cluster.id === 'root' ? 0 : CLUSTER_TITLE;
  cluster.w = width + 2 * frame;
  cluster.h = height + 2 * frame + title;
  cluster.members = own;
  cluster.children = children;
  cluster.offsetX = frame;
  cluster.offsetY = frame + title;
}

/** Turns positions relative to each cluster into absolute ones. */
function place(cluster, ox, oy) {
  cluster.ax = ox;
  cluster.ay = oy;
  for (const n of cluster.members) { n.x += ox + cluster.offsetX; n.y += oy + cluster.offsetY; }
  for (const c of cluster.children) place(c, ox + cluster.offsetX + c.x, oy + cluster.offsetY + c.y);
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

/** Which branch each `if` took, from its condition's value: cluster id → true (taken) / false (not taken). */
function branchesTaken(graph, annotations) {
  const taken = new Map();
  if (!annotations) return taken;
  for (const n of graph.nodes.filter(n => n.op === 'if')) {
    const condition = graph.edges.find(e => e.to === n.id && !e.dashed);
    const value = condition && annotations[condition.label] && annotations[condition.label].value;
    if (!value || value.data.length !== 1) continue;
    const truth = value.data[0] === true || value.data[0] === 1;
    // The export labels a node's subgraphs "<op> <name>: <attribute>", the name being the one in the node's title
    // ("if (choose)") or else its first output.
    const name = (/\((.*)\)$/.exec(n.title) || [])[1] || n.outputs[0];
    for (const c of graph.clusters) {
      if (c.label === `if ${name}: then`) taken.set(c.id, truth);
      else if (c.label === `if ${name}: else`) taken.set(c.id, !truth);
    }
  }
  return taken;
}

/**
 * Draws the graph into container. types: inspect's "values" ({name: {dtype, shape}}); annotations: a gradient's
 * "intermediates" ({name: {value, adjoint}}) or null. Returns the model (nodes with positions and labels).
 */
export function drawGraph(container, mermaid, types = {}, annotations = null) {
  const graph = parseMermaid(mermaid);
  for (const n of graph.nodes) {
    n.rows = labelLines(n, types, annotations);
    n.w = Math.max(36, ...n.rows.map(r => r.text.length * CHAR_WIDTH)) + 2 * PAD_X + (n.kind === 'control' ? 20 : 0);
    n.h = n.rows.length * LINE_HEIGHT + 2 * PAD_Y;
  }
  const root = graph.clusters[0];
  layoutCluster(root, graph);
  place(root, 10, 10);
  const taken = branchesTaken(graph, annotations);

  container.replaceChildren();
  const svg = el('svg', { viewBox: `0 0 ${root.w + 20} ${root.h + 20}`, width: root.w + 20, height: root.h + 20, class: 'graph-svg', role: 'img', 'aria-label': 'computation graph' }, container);
  const defs = el('defs', {}, svg);
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }, marker);

  for (const c of graph.clusters.slice(1)) {
    const cls = 'cluster' + (taken.has(c.id) ? (taken.get(c.id) ? ' taken' : ' not-taken') : '');
    const g = el('g', { class: cls, 'data-cluster': c.label }, svg);
    el('rect', { x: c.ax, y: c.ay, width: c.w, height: c.h, rx: 8 }, g);
    el('text', { x: c.ax + 8, y: c.ay + 15 }, g).textContent = c.label + (taken.has(c.id) ? (taken.get(c.id) ? ' (taken)' : ' (not taken)') : '');
  }

  const byId = new Map(graph.nodes.map(n => [n.id, n]));
  const edgeLayer = el('g', { class: 'edges' }, svg);
  for (const e of graph.edges) {
    const a = byId.get(e.from), b = byId.get(e.to);
    if (!a || !b) continue;
    let d, lx, ly;
    if (b.y >= a.y + a.h - 1) {
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y, k = (y2 - y1) / 2;
      d = `M${x1},${y1} C${x1},${y1 + k} ${x2},${y2 - k} ${x2},${y2}`;
      [lx, ly] = [(x1 + x2) / 2, (y1 + y2) / 2];
    } else {
      // Into a cluster beside its owner (or back out of one): leave and enter from the sides.
      const right = b.x >= a.x + a.w;
      const x1 = right ? a.x + a.w : a.x, y1 = a.y + a.h / 2, x2 = right ? b.x : b.x + b.w, y2 = b.y + b.h / 2, k = (x2 - x1) / 2;
      d = `M${x1},${y1} C${x1 + k},${y1} ${x2 - k},${y2} ${x2},${y2}`;
      [lx, ly] = [(x1 + x2) / 2, (y1 + y2) / 2];
    }
    el('path', { d, class: 'edge' + (e.dashed ? ' dashed' : ''), 'marker-end': 'url(#arrow)' }, edgeLayer);
    if (e.dashed && e.label) el('text', { x: lx, y: ly - 3, class: 'edge-label', 'text-anchor': 'middle' }, edgeLayer).textContent = e.label;
  }

  for (const n of graph.nodes) {
    const g = el('g', { class: `node ${n.kind}`, 'data-id': n.id, 'data-kind': n.kind, transform: `translate(${n.x},${n.y})` }, svg);
    if (n.op) g.setAttribute('data-op', n.op);
    if (n.name) g.setAttribute('data-name', n.name);
    if (n.outputs.length) g.setAttribute('data-outputs', n.outputs.join(' '));
    if (n.kind === 'control') {
      const s = 10;
      el('polygon', { points: `${s},0 ${n.w - s},0 ${n.w},${n.h / 2} ${n.w - s},${n.h} ${s},${n.h} 0,${n.h / 2}` }, g);
    } else if (n.kind !== 'literal') {
      const rx = n.kind === 'input' || n.kind === 'output' ? n.h / 2 : n.kind === 'op' ? 6 : 0;
      el('rect', { width: n.w, height: n.h, rx: Math.min(rx, n.w / 2) }, g);
    }
    n.rows.forEach((r, i) => {
      el('text', { x: n.w / 2, y: PAD_Y + (i + 1) * LINE_HEIGHT - 4, 'text-anchor': 'middle', class: r.cls }, g).textContent = r.text;
    });
  }
  return graph;
}
